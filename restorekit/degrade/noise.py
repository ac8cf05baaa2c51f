"""White Gaussian noise: the ``n`` of ``y = A x + n``; its operator ``A`` is the identity."""

from __future__ import annotations

import math

import torch

from ..errors import InputError
from .base import Degradation, _identity_prox

class Noise(Degradation):
    """Additive white Gaussian noise with standard deviation ``sigma`` ([0, 1] scale)."""

    def __init__(self, sigma: float) -> None:
        try:
            value = float(sigma)
        except (TypeError, ValueError):
            raise InputError(f"noise sigma must be a number, got {sigma!r}") from None
        if not math.isfinite(value) or value < 0:
            raise InputError(
                f"noise sigma must be a finite number >= 0 on the [0, 1] scale, got {sigma!r} "
                "(sigma 25 on the 0-255 scale is 25/255 = 0.098)"
            )
        self._sigma = value

    @property
    def sigma(self) -> float:
        return self._sigma

    @property
    def tasks(self) -> frozenset[str]:
        return frozenset({"denoise"}) if self._sigma > 0 else frozenset()

    def describe(self) -> dict:
        return {"type": "Noise", "sigma": self._sigma}

    def noise(self, shape, like, generator):
        if self._sigma == 0:
            return None
        n = torch.randn(tuple(shape), generator=generator, dtype=torch.float32)
        return (n * self._sigma).to(device=like.device, dtype=like.dtype)

    def _prox(self, y, z, rho, iterations, tol):
        return _identity_prox(y, z, rho)


__all__ = ["Noise"]
