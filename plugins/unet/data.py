"""How the UNet deblurrers' training inputs are made: blur, noise and (optionally) Wiener.

:class:`DeblurInputs` is a ``make_input(clean, generator)`` for
:class:`restorekit.training.DegradedPairs`. Each input is made from a clean
crop the way the benchmark makes its inputs: a circular blur by the course
kernel (:class:`restorekit.degrade.Blur`), then white Gaussian noise whose
sigma is drawn uniformly from ``sigma_range`` for each crop ([0, 1] scale).
For the Wiener variant the input is then the Wiener estimate
``conj(H) Y / (|H|^2 + 1/snr)`` of that noisy blurred crop, the first step of
the ``wiener+unet`` pipeline. Inputs are clipped to [0, 1], as the
restorers clip what they are given.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from restorekit.degrade import Blur


def data_root() -> Path:
    """The benchmark data folder: ``$RESTOREKIT_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("RESTOREKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def course_kernel() -> torch.Tensor:
    """The course's 7x7 MNIST-digit kernel, shipped with restorekit (float64, sums to 1)."""
    from restorekit.kernels import load_kernel

    return torch.as_tensor(load_kernel("course"), dtype=torch.float64)


class DeblurInputs:
    """Make a network input from a clean sample: blur, noise, optionally Wiener, clip to [0, 1].

    Parameters
    ----------
    kernel : torch.Tensor
        The blur kernel (the course kernel for the shipped models).
    sigma_range : (float, float)
        Noise sigma drawn uniformly per sample in this range ([0, 1] scale);
        ``(s, s)`` fixes it.
    wiener_snr : float, optional
        When given, the input is the Wiener estimate with ``reg = 1 / snr``.

    Examples
    --------
    >>> import torch
    >>> make = DeblurInputs(torch.ones(3, 3) / 9, (0.0, 0.02), wiener_snr=100.0)
    >>> make(torch.rand(3, 32, 32), torch.Generator().manual_seed(0)).shape
    torch.Size([3, 32, 32])
    """

    def __init__(self, kernel: torch.Tensor, sigma_range: tuple[float, float], wiener_snr: float | None = None) -> None:
        self.blur = Blur(kernel)
        self.sigma_range = (float(sigma_range[0]), float(sigma_range[1]))
        self.wiener_snr = wiener_snr

    def __call__(self, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Degrade one clean ``(C, H, W)`` sample (or a batch ``(N, C, H, W)``, one sigma per image)."""
        batch = clean if clean.ndim == 4 else clean[None]
        lo, hi = self.sigma_range
        sigmas = lo + (hi - lo) * torch.rand(batch.shape[0], 1, 1, 1, generator=gen, dtype=batch.dtype)
        y = self.blur.forward(batch) + sigmas * torch.randn(batch.shape, generator=gen, dtype=batch.dtype)
        if self.wiener_snr is not None:
            y = self.blur.regularized_inverse(y, 1.0 / self.wiener_snr)
        y = y.clamp(0.0, 1.0)
        return y if clean.ndim == 4 else y[0]

    def describe(self) -> dict:
        out = {"blur": "course kernel, circular", "noise_sigma_range": list(self.sigma_range)}
        if self.wiener_snr is not None:
            out["wiener_snr"] = self.wiener_snr
        return out
