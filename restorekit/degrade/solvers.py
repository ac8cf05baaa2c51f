"""Conjugate gradients for the data steps that have no closed form.

:func:`conjugate_gradient` solves ``M x = b`` for a symmetric positive
definite ``M`` given only as a function, one independent system per batch
sample: every inner product is taken over a sample's own ``C, H, W``, so a
batch with a different ``rho`` per image converges image by image, and an
image that has converged stops moving while the others go on.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import ParameterError

#: Default iteration cap of :func:`conjugate_gradient`.
CG_ITERATIONS = 100
#: Default relative tolerance of :func:`conjugate_gradient`: stop when ``||b - M x|| <= tol ||b||`` per sample.
CG_TOL = 1e-6


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample inner product, shaped ``(N, 1, ..., 1)`` to broadcast against ``a``."""
    dims = tuple(range(1, a.ndim))
    return (a * b).sum(dim=dims, keepdim=True) if dims else a * b


def conjugate_gradient(
    apply: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    iterations: int = CG_ITERATIONS,
    tol: float = CG_TOL,
) -> torch.Tensor:
    """Solve ``apply(x) = b`` by conjugate gradients, one system per batch sample.

    Parameters
    ----------
    apply : callable
        ``x -> M x`` for a symmetric positive definite linear ``M`` that acts
        on each sample separately (as ``A^T A + rho I`` does).
    b : torch.Tensor
        Right-hand side, shape ``(N, ...)``.
    x0 : torch.Tensor, optional
        Starting point (default zeros); a good guess (the prox's ``z``) saves
        iterations.
    iterations : int
        Most iterations (each one call of ``apply``).
    tol : float
        Relative tolerance: a sample stops when ``||b - M x|| <= tol * ||b||``.
        The loop ends when every sample has stopped or after ``iterations``.

    Returns
    -------
    torch.Tensor
        ``x``, the shape and dtype of ``b``.

    Examples
    --------
    >>> import torch
    >>> from restorekit.degrade import conjugate_gradient
    >>> d = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)[None]
    >>> x = conjugate_gradient(lambda v: d * v, torch.ones(1, 3, dtype=torch.float64))
    >>> x.tolist()
    [[1.0, 0.5, 0.25]]
    """
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise ParameterError(f"conjugate_gradient needs iterations >= 1, got {iterations!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ParameterError(f"conjugate_gradient needs tol >= 0, got {tol!r}")
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    p = r.clone()
    rr = _dot(r, r)
    threshold = (tol * tol) * _dot(b, b)
    tiny = torch.finfo(b.dtype).tiny if b.dtype.is_floating_point else 0.0
    for _ in range(iterations):
        active = rr > threshold
        if not bool(active.any()):
            break
        mp = apply(p)
        pmp = _dot(p, mp)
        # Converged samples (or a vanishing curvature) take no step, so nothing divides by zero.
        alpha = torch.where(active & (pmp > tiny), rr / pmp.clamp_min(tiny), torch.zeros_like(rr))
        x = x + alpha * p
        r = r - alpha * mp
        rr_new = _dot(r, r)
        beta = torch.where(active, rr_new / rr.clamp_min(tiny), torch.zeros_like(rr))
        p = r + beta * p
        rr = torch.where(active, rr_new, rr)
    return x


__all__ = ["CG_ITERATIONS", "CG_TOL", "conjugate_gradient"]
