"""White Gaussian noise: the ``n`` of ``y = A x + n``; its operator ``A`` is the identity."""

from __future__ import annotations

from typing import Any

import torch

from ..checks import check_sigma
from ..errors import InputError
from .base import Degradation, _identity_prox


class Noise(Degradation):
    """Additive white Gaussian noise with standard deviation ``sigma`` ([0, 1] scale: 0 to 1).

    ``sigma`` is a number (every image and pixel), or a tensor: one level per
    image of the batch, shape ``(N,)``, or a per-pixel map, shape
    ``(N, 1 or C, H, W)`` (so one training batch holds several levels, see
    :class:`~restorekit.degrade.DegradationSampler`). With a tensor,
    :attr:`sigma` is the largest level and :meth:`sigma_map` gives the levels
    as a map; with a number :meth:`sigma_map` is None.

    A sigma above 1 is refused with its [0, 1] value (``Noise(25)`` means 25/255 = 0.098).

    Examples
    --------
    >>> import torch
    >>> n = Noise(torch.tensor([0.0, 0.1]))
    >>> round(n.sigma, 6), n.sigma_map(torch.zeros(2, 3, 4, 4)).shape
    (0.1, torch.Size([2, 1, 4, 4]))
    >>> y = n.apply(torch.zeros(2, 3, 4, 4), seed=0)
    >>> bool((y[0] == 0).all()), bool((y[1] != 0).any())
    (True, True)
    """

    def __init__(self, sigma: Any) -> None:
        if isinstance(sigma, bool):
            raise InputError(f"noise sigma must be a number, got {sigma!r}")
        self._levels: torch.Tensor | None = None
        if isinstance(sigma, torch.Tensor) and sigma.ndim > 0:
            levels = sigma.detach().to("cpu", torch.float64)
            if levels.ndim not in (1, 4) or levels.numel() == 0:
                raise InputError(f"noise sigma as a tensor must be one level per image (N,) or a map (N, 1 or C, "
                                 f"H, W), got shape {tuple(sigma.shape)}")
            if not bool(torch.isfinite(levels).all()) or bool((levels < 0).any()):
                raise InputError("noise sigmas must be finite numbers >= 0 on the [0, 1] scale")
            top = float(levels.max())
            check_sigma(top, "noise sigma")  # above 1: the 0-255 scale, refused with the /255 value
            self._levels = levels
            self._sigma = top
        else:
            self._sigma = check_sigma(float(sigma) if isinstance(sigma, torch.Tensor) else sigma, "noise sigma")

    @property
    def sigma(self) -> float:
        """The noise level; with one level per image or a map, the largest."""
        return self._sigma

    @property
    def levels(self) -> torch.Tensor | None:
        """The per-image levels ``(N,)`` or the map ``(N, 1 or C, H, W)`` given; None for one number."""
        return self._levels

    def sigma_map(self, image: torch.Tensor) -> torch.Tensor | None:
        """The standard deviation per pixel of ``image``'s batch as ``(N, 1 or C, H, W)``; None for one number."""
        if self._levels is None:
            return None
        levels = self._levels.to(device=image.device, dtype=image.dtype)
        if levels.ndim == 1:
            levels = levels.reshape(-1, 1, 1, 1)
        return levels.expand(image.shape[0], levels.shape[1], image.shape[-2], image.shape[-1])

    @property
    def tasks(self) -> frozenset[str]:
        return frozenset({"denoise"}) if self._sigma > 0 else frozenset()

    def describe(self) -> dict:
        if self._levels is None:
            return {"type": "Noise", "sigma": self._sigma}
        kind = "per_image" if self._levels.ndim == 1 else "map"
        return {"type": "Noise", "sigma": self._sigma, "levels": kind}

    def noise(self, shape, like, generator):
        if self._sigma == 0:
            return None
        n = torch.randn(tuple(shape), generator=generator, dtype=torch.float32)
        if self._levels is None:
            return (n * self._sigma).to(device=like.device, dtype=like.dtype)
        levels = self._levels.reshape(-1, 1, 1, 1) if self._levels.ndim == 1 else self._levels
        if levels.shape[0] != shape[0] or (levels.ndim == 4 and levels.shape[-2:] != tuple(shape[-2:])
                                           and levels.shape[-2:] != (1, 1)):
            raise InputError(f"the noise levels (shape {tuple(self._levels.shape)}) do not fit a batch of shape "
                             f"{tuple(shape)}: give one level per image or a map of the image's height and width")
        return (n * levels).to(device=like.device, dtype=like.dtype)

    def _prox(self, y, z, rho, iterations, tol):
        return _identity_prox(y, z, rho)



def noise_map(degradation: Any, y: torch.Tensor) -> torch.Tensor | None:
    """The per-pixel noise standard deviation of ``degradation`` for the observation ``y``, or None.

    None when no part has a map (the noise is one ``sigma`` everywhere); otherwise the
    parts' maps (Poisson-Gaussian, or a :class:`Noise` given per-pixel levels) and the other
    parts' sigmas added in variance.
    """
    parts = degradation.parts() if hasattr(degradation, "parts") else (degradation,)
    maps, rest = [], 0.0
    for p in parts:
        found = p.sigma_map(y) if isinstance(p, Noise) else None  # Noise: None for one number
        if found is None:
            rest += float(p.sigma) ** 2
        else:
            maps.append(found)
    if not maps:
        return None
    return (sum(m.pow(2) for m in maps) + rest).sqrt()


__all__ = ["Noise", "noise_map"]
