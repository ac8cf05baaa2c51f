"""White Gaussian noise: the ``n`` of ``y = A x + n``; its operator ``A`` is the identity."""

from __future__ import annotations

import torch

from ..checks import check_sigma
from ..errors import InputError
from .base import Degradation, _identity_prox

class Noise(Degradation):
    """Additive white Gaussian noise with standard deviation ``sigma`` ([0, 1] scale: 0 to 1).

    A sigma above 1 is refused with its [0, 1] value (``Noise(25)`` means 25/255 = 0.098).
    """

    def __init__(self, sigma: float) -> None:
        if isinstance(sigma, bool):
            raise InputError(f"noise sigma must be a number, got {sigma!r}")
        self._sigma = check_sigma(sigma, "noise sigma")  # above 1: the 0-255 scale, refused with the /255 value

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
