"""Pixel masks: the missing pixels of inpainting."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError
from .base import Degradation, _as_tensor

class Mask(Degradation):
    """Pixel mask: 1 where a pixel is observed, 0 where it is missing.

    ``mask`` has shape ``(H, W)``, ``(1, 1, H, W)``, ``(N, 1, H, W)`` or
    ``(N, C, H, W)``; nonzero values count as observed. Missing pixels are
    set to 0 by :meth:`forward`.
    """

    def __init__(self, mask: Any) -> None:
        m = _as_tensor(mask, "mask")
        if m.dtype == torch.bool:
            m = m.float()
        if m.ndim == 2:
            m = m[None, None]
        if m.ndim != 4:
            raise InputError(f"mask must have shape (H, W) or (N, C, H, W), got {tuple(m.shape)}")
        if not torch.isfinite(m).all():
            raise InputError("mask contains NaN or Inf values")
        self.mask = (m != 0).to(torch.float32)

    @classmethod
    def lower_half(cls, height: int, width: int) -> "Mask":
        """The course's inpainting mask: the lower half of every image missing."""
        m = torch.ones(height, width)
        m[height // 2 :, :] = 0
        return cls(m)

    @classmethod
    def random(cls, height: int, width: int, missing: float, seed: int = 0) -> "Mask":
        """Each pixel missing with probability ``missing``, drawn from ``seed``."""
        if not 0 <= missing < 1:
            raise InputError(f"the missing fraction must be in [0, 1), got {missing}")
        gen = torch.Generator().manual_seed(int(seed))
        return cls((torch.rand(height, width, generator=gen) >= missing).float())

    @property
    def tasks(self) -> frozenset[str]:
        return frozenset({"inpaint"})

    def describe(self) -> dict:
        return {"type": "Mask", "shape": list(self.mask.shape), "observed": float(self.mask.mean())}

    def to(self, device):
        return Mask(self.mask.to(device))

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        m = self.mask
        ok = m.shape[-2:] == x.shape[-2:] and m.shape[0] in (1, x.shape[0]) and m.shape[1] in (1, x.shape[1])
        if not ok:
            raise InputError(
                f"mask of shape {tuple(m.shape)} does not fit image batch of shape {tuple(x.shape)}: "
                "it must have the image's height and width"
            )
        return m.to(device=x.device, dtype=x.dtype)

    def forward(self, x):
        return x * self._fit(x)

    def adjoint(self, y):
        return y * self._fit(y)

    def _prox(self, y, z, rho, iterations, tol):
        # A = A^T = A^T A = diag(mask): the normal equations are element-wise.
        m = self._fit(z)
        return (m * y + rho * z) / (m + rho)


__all__ = ["Mask"]
