"""Compositions of degradations: ``Compose(Blur(k), Downsample(2), Noise(0.01))``."""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from ..errors import InputError
from .base import Degradation, Identity, _identity_prox
from .blur import Blur
from .downsample import Downsample, spectral_prox
from .fft import psf2otf_full
from .mask import Mask
from .noise import Noise

class Compose(Degradation):
    """Degradations applied in order, e.g. ``Compose(Blur(k), Noise(0.01))``.

    The noise of every part is added at the end (``y = A x + n`` with ``A``
    the product of the linear parts); independent noises add in variance.
    So noise must come last: ``Compose(Noise(0.1), Blur(k))`` (noise, then a
    blur of the noisy image) is refused with the order to write instead,
    rather than silently run as ``Compose(Blur(k), Noise(0.1))``.
    :attr:`scale` is the product of the parts' scales. :meth:`prox` is in
    closed form when the linear parts are one operator with a closed form,
    or circular blurs followed by at most one circular :class:`Downsample`
    (their transfer functions multiply); otherwise it runs conjugate
    gradients on the whole chain.
    """

    def __init__(self, *parts: Degradation | Iterable[Degradation]) -> None:
        flat: list[Degradation] = []
        for p in parts:
            items = list(p) if not isinstance(p, Degradation) else [p]
            for item in items:
                if not isinstance(item, Degradation):
                    raise InputError(f"Compose takes Degradation objects, got {type(item).__name__}")
                flat.extend(item.parts())
        self._parts = tuple(flat)
        _check_noise_last(self._parts, self._linear_parts())

    def parts(self) -> tuple[Degradation, ...]:
        return self._parts

    def _first(self, kind: type) -> Any:
        return next((p for p in self._parts if isinstance(p, kind)), None)

    @property
    def kernel(self):  # type: ignore[override]
        """The first blur's kernel, else the first downsampling's anti-aliasing kernel, else None."""
        b = self._first(Blur) or self._first(Downsample)
        return None if b is None else b.kernel

    @property
    def scale(self) -> int:
        return math.prod(p.scale for p in self._parts)

    @property
    def boundary(self):  # type: ignore[override]
        """The first blur's (or downsampling's) border model; ``"circular"`` without either."""
        b = self._first(Blur) or self._first(Downsample)
        return "circular" if b is None else b.boundary

    @property
    def mask(self):  # type: ignore[override]
        m = self._first(Mask)
        return None if m is None else m.mask

    @property
    def blur(self):
        return self._first(Blur)

    @property
    def sigma(self) -> float:
        return math.sqrt(sum(p.sigma**2 for p in self._parts))

    def sigma_map(self, image):
        """The per-pixel noise standard deviation for the observation ``image`` when a part's noise varies
        with the signal (:class:`~restorekit.degrade.PoissonGaussian`), else None (one :attr:`sigma`)."""
        from .noise import noise_map

        return noise_map(self, image)

    @property
    def tasks(self) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for p in self._parts:
            out |= p.tasks
        return out

    def forward(self, x):
        for p in self._parts:
            x = p.forward(x)
        return x

    def adjoint(self, y):
        for p in reversed(self._parts):
            y = p.adjoint(y)
        return y

    def _linear_parts(self) -> list[Degradation]:
        """The parts whose operator is not the identity (noise and identities act only through ``sigma``)."""
        return [p for p in self._parts if type(p) not in (Degradation, Identity) and not isinstance(p, Noise)]

    def _prox(self, y, z, rho, iterations, tol):
        linear = self._linear_parts()
        if not linear:
            return _identity_prox(y, z, rho)
        if len(linear) == 1:
            return linear[0]._prox(y, z, rho, iterations, tol)
        *blurs, last = linear
        spectral = all(isinstance(p, Blur) and p.boundary == "circular" for p in blurs) and (
            isinstance(last, (Blur, Downsample)) and last.boundary == "circular")
        if not spectral:
            return self._prox_cg(y, z, rho, iterations, tol)
        for p in linear:
            p.check_high(z) if isinstance(p, Downsample) else p._check_size(z)
        real = torch.float64 if z.dtype == torch.float64 else torch.float32
        otf = None
        for p in linear:
            part = psf2otf_full(p.kernel.to(device=z.device, dtype=real), z.shape[-2:])
            otf = part if otf is None else otf * part
        return spectral_prox(otf, y, z, rho, last.scale)

    def noise(self, shape, like, generator):
        total = None
        for p in self._parts:
            n = p.noise(shape, like, generator)
            if n is not None:
                total = n if total is None else total + n
        return total

    def to(self, device):
        return Compose(*(p.to(device) for p in self._parts))

    def describe(self) -> dict:
        return {"type": "Compose", "parts": [p.describe() for p in self._parts], "sigma": self.sigma}


def _check_noise_last(parts: tuple[Degradation, ...], linear: list[Degradation]) -> None:
    """Refuse a part with an operator after a noisy part (the model adds all noise after every operator)."""
    has_operator = [any(p is q for q in linear) for p in parts]
    noisy = next((i for i, p in enumerate(parts) if p.sigma > 0 and not has_operator[i]), None)
    later = None if noisy is None else next((p for p, op in zip(parts[noisy + 1:], has_operator[noisy + 1:]) if op), None)
    if later is None:
        return

    def names(items) -> str:
        return ", ".join(f"{type(p).__name__}(...)" for p in items)

    kept = [p for p, op in zip(parts, has_operator) if op] + [p for p, op in zip(parts, has_operator) if not op]
    raise InputError(
        f"Compose({names(parts)}) adds noise before {type(later).__name__}: restorekit's model is y = A x + n "
        f"(all noise is added after every operator), so this order cannot be kept; put the noise last: "
        f"Compose({names(kept)})"
    )


__all__ = ["Compose"]
