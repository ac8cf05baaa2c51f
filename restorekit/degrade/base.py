"""The :class:`Degradation` base class: the operator ``A``, its adjoint, noise and the data step.

Every degradation is a linear operator ``A`` with its adjoint and a Gaussian
noise model, and gives the proximal step of its data term,
:meth:`Degradation.prox`, that plug-and-play solvers alternate with a
denoiser. The base class is the identity without noise; its ``prox`` solves
the normal equations by conjugate gradients, which is right for any linear
``forward`` / ``adjoint`` pair, and subclasses replace it with a closed form
where one exists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..checks import check_batch
from ..errors import InputError, ParameterError
from .solvers import CG_ITERATIONS, CG_TOL, conjugate_gradient

BOUNDARIES = ("circular", "reflect")


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    try:
        return torch.as_tensor(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be a numeric array, got {type(value).__name__}: {exc}") from None


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
    if generator is not None:
        return generator
    if seed is None:
        return None
    return torch.Generator().manual_seed(int(seed))


class Degradation:
    """Base class: the identity operator without noise.

    Subclasses override :meth:`forward`, :meth:`adjoint` and, for noise,
    :meth:`noise`. The attributes ``kernel``, ``sigma`` and ``mask`` let a
    restorer ask what it is facing: non-blind methods (Wiener) use them,
    blind ones ignore them.
    """

    kernel: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    boundary: str = "circular"

    @property
    def sigma(self) -> float:
        """Standard deviation of the additive Gaussian noise, on the [0, 1] scale."""
        return 0.0

    @property
    def tasks(self) -> frozenset[str]:
        """The restoration tasks this degradation calls for."""
        return frozenset()

    @property
    def blur(self) -> "Degradation | None":
        """The blur operator inside this degradation (a :class:`~restorekit.degrade.Blur`), if any."""
        return None

    @property
    def scale(self) -> int:
        """The downsampling factor: 1, or ``s`` when a :class:`Downsample` of ``s`` is inside.

        ``forward`` maps an ``H x W`` image to ``H / s x W / s``; a restorer
        given the measurement returns an image ``s`` times larger.
        """
        return 1

    def parts(self) -> tuple["Degradation", ...]:
        return (self,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the noise-free operator ``A``."""
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the adjoint ``A^T``."""
        return y

    def noise(self, shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor | None:
        """Draw the additive noise (``None`` when there is none)."""
        return None

    def prox(
        self,
        y: torch.Tensor,
        z: torch.Tensor,
        rho: float | torch.Tensor,
        *,
        iterations: int = CG_ITERATIONS,
        tol: float = CG_TOL,
    ) -> torch.Tensor:
        """The data step ``argmin_x ||y - A x||^2 + rho ||x - z||^2``.

        The minimiser solves ``(A^T A + rho I) x = A^T y + rho z``. Closed
        forms: the identity and noise (``(y + rho z) / (1 + rho)``), a mask
        (element-wise), a circular blur (one FFT division), a circular
        :class:`Downsample` with or without circular blurs before it (the
        FFT formula of Zhao et al. 2016). Everything else (a reflect
        boundary, a mask after a blur, any other composition) is solved by
        :func:`conjugate_gradient`, started from ``z``.

        Parameters
        ----------
        y : torch.Tensor
            The measurement, ``(N, C, H / s, W / s)`` with ``s`` = :attr:`scale`.
        z : torch.Tensor
            The point the step is pulled towards, ``(N, C, H, W)`` (the
            restored-image space).
        rho : float or torch.Tensor
            The weight of ``||x - z||^2``, > 0: a number, or one per sample as
            a tensor of shape ``()``, ``(N,)`` or ``(N, 1, 1, 1)``.
        iterations, tol : int, float
            Conjugate-gradient limits, used only where there is no closed form.

        Returns
        -------
        torch.Tensor
            ``x``, shaped and typed like ``z``.

        Examples
        --------
        >>> import torch
        >>> from restorekit.degrade import Identity
        >>> Identity().prox(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), 1.0).flatten().tolist()
        [0.5, 0.5, 0.5, 0.5]
        """
        weight = _check_prox_inputs(self, y, z, rho)
        return self._prox(y.to(z.dtype), z, weight, iterations, tol)

    def _prox(self, y: torch.Tensor, z: torch.Tensor, rho: torch.Tensor, iterations: int, tol: float) -> torch.Tensor:
        """The data step for checked inputs (``rho`` shaped ``(N or 1, 1, 1, 1)``); by CG unless overridden."""
        return self._prox_cg(y, z, rho, iterations, tol)

    def _prox_cg(self, y: torch.Tensor, z: torch.Tensor, rho: torch.Tensor, iterations: int, tol: float) -> torch.Tensor:
        rhs = self.adjoint(y) + rho * z
        return conjugate_gradient(lambda v: self.adjoint(self.forward(v)) + rho * v, rhs, x0=z,
                                  iterations=iterations, tol=tol)

    def apply(
        self, x: torch.Tensor, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Degrade ``x``: ``A x`` plus noise drawn from ``seed`` (or ``generator``).

        The noise is drawn on the CPU so a seed gives the same values on
        every device. Values are not clipped: noisy images leave [0, 1].
        """
        check_batch(x, "degradation")
        gen = _generator(seed, generator)
        y = self.forward(x)
        n = self.noise(y.shape, y, gen)
        return y if n is None else y + n

    def to(self, device: torch.device | str) -> "Degradation":
        return self

    def describe(self) -> dict:
        return {"type": type(self).__name__}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.describe().items() if k != "type")
        return f"{type(self).__name__}({fields})"


class Identity(Degradation):
    """No damage: what a blind restorer gets when nothing is known."""

    def _prox(self, y, z, rho, iterations, tol):
        return _identity_prox(y, z, rho)


def _identity_prox(y: torch.Tensor, z: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """``argmin_x ||y - x||^2 + rho ||x - z||^2 = (y + rho z) / (1 + rho)``."""
    return (y + rho * z) / (1 + rho)


def _check_prox_inputs(op: Degradation, y: Any, z: Any, rho: Any) -> torch.Tensor:
    """Validate the arguments of :meth:`Degradation.prox`; ``rho`` comes back shaped ``(N or 1, 1, 1, 1)``."""
    for name, t in (("y", y), ("z", z)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4 or not t.dtype.is_floating_point:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise InputError(f"prox: {name} must be a float tensor (N, C, H, W), got {got}")
    s = op.scale
    expected = (z.shape[0], z.shape[1], z.shape[2] // s, z.shape[3] // s)
    if tuple(y.shape) != expected or z.shape[2] % s or z.shape[3] % s:
        raise InputError(
            f"prox: the measurement y {tuple(y.shape)} does not match z {tuple(z.shape)} for {op!r}: "
            f"y must be A z's shape {expected}" + (f" (z's height and width multiples of {s})" if s > 1 else "")
        )
    n = z.shape[0]
    if isinstance(rho, torch.Tensor):
        if not (rho.ndim <= 1 or (rho.ndim == 4 and rho.shape[1:] == (1, 1, 1))) or rho.numel() not in (1, n):
            raise ParameterError(
                f"prox: rho must be a number or one value per sample, shape (), ({n},) or ({n}, 1, 1, 1); "
                f"got shape {tuple(rho.shape)}"
            )
        weight = rho.detach().to(device=z.device, dtype=z.dtype).reshape(-1, 1, 1, 1)
    else:
        try:
            value = float(rho)
        except (TypeError, ValueError):
            raise ParameterError(f"prox: rho must be a positive number or tensor, got {rho!r}") from None
        weight = torch.full((1, 1, 1, 1), value, device=z.device, dtype=z.dtype)
    if not bool(torch.isfinite(weight).all()) or not bool((weight > 0).all()):
        raise ParameterError(f"prox: rho must be finite and > 0 (the weight of ||x - z||^2), got {rho!r}")
    return weight



__all__ = ["BOUNDARIES", "Degradation", "Identity"]
