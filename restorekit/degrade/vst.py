"""The variance-stabilising path for Poisson-Gaussian noise: any Gaussian denoiser serves.

The generalized Anscombe transform (GAT) of ``y = gain * Poisson(x / gain) + N(0, sigma^2)``,

    f(y) = (2 / gain) * sqrt(max(gain * y + 3/8 gain^2 + sigma^2, 0)),

makes the noise approximately Gaussian with unit variance (Starck, Murtagh and Bijaoui,
"Image Processing and Data Analysis", 1998). The denoised transform is mapped back by the
*exact unbiased inverse* of Makitalo and Foi ("Optimal inversion of the generalized
Anscombe transformation for Poisson-Gaussian noise", IEEE TIP 22(1), 2013), in its
closed-form approximation (Makitalo and Foi, "A closed-form approximation of the exact
unbiased inverse of the Anscombe variance-stabilizing transformation", IEEE TIP 20(9),
2011, with the GAT's ``- sigma^2`` term of the 2013 paper): for ``D`` the denoised
transform in photon units,

    I(D) = D^2/4 + sqrt(3/2)/4 D^-1 - 11/8 D^-2 + 5/8 sqrt(3/2) D^-3 - 1/8 - (sigma/gain)^2,

clamped at 0, times ``gain``. The algebraic inverse ``(D/2)^2 - 3/8 - ...`` is biased
at low counts (it inverts the transform of the mean, not the mean of the transform);
this one is not.

:func:`vst_denoise` runs the whole path with any Gaussian denoiser: transform, rescale
to [0, 1] (the noise then has one standard deviation, ``1 / (f(1) - f(0))``), denoise at
that sigma, scale back and invert. ``Restorer.__call__`` takes this path by itself for a
denoiser that reads one noise level but no noise map (the classical ones: tv, wavelet,
nlmeans, bm3d) when the degradation is Poisson-Gaussian noise alone; see :func:`route`.
Measured on four 160x160 CBSD68 crops at pg:0.01,0.01 against the same denoiser given the
RMS sigma: nlmeans +1.0 dB, tv +0.3 dB, wavelet +0.2 dB.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from .poisson import PoissonGaussian

_ROOT = math.sqrt(1.5)
#: Below this transformed value (photon units) the closed-form inverse turns back up; it is held there
#: (where it is negative, so the result is 0).
INVERSE_FLOOR = 0.838


def anscombe(y: torch.Tensor, gain: float, sigma: float) -> torch.Tensor:
    """The generalized Anscombe transform of ``y`` (unit-variance noise, photon units).

    Examples
    --------
    >>> import torch
    >>> from restorekit.degrade import PoissonGaussian
    >>> x = torch.full((1, 1, 128, 128), 0.3)
    >>> y = PoissonGaussian(0.01, 0.02).apply(x, seed=0)
    >>> round(float(anscombe(y, 0.01, 0.02).std()), 1)
    1.0
    """
    gain = float(gain)
    if gain <= 0:
        return y / float(sigma) if sigma > 0 else y.clone()
    inside = gain * y + 0.375 * gain**2 + float(sigma) ** 2
    return (2.0 / gain) * inside.clamp_min(0).sqrt()


def inverse_anscombe(d: torch.Tensor, gain: float, sigma: float) -> torch.Tensor:
    """The closed-form approximation of the exact unbiased inverse of :func:`anscombe` (Makitalo and Foi).

    Examples
    --------
    >>> import torch
    >>> x = torch.full((1, 1, 256, 256), 0.05)        # 5 photons a pixel at gain 0.01
    >>> y = PoissonGaussian(0.01, 0.0).apply(x, seed=0)
    >>> d = anscombe(y, 0.01, 0.0).mean()             # the ideal denoiser's output: E f(y)
    >>> round(float(inverse_anscombe(d, 0.01, 0.0)), 3)
    0.05
    """
    gain = float(gain)
    if gain <= 0:
        return d * float(sigma) if sigma > 0 else d.clone()
    s = float(sigma) / gain
    d = d.clamp_min(INVERSE_FLOOR)
    value = (d.pow(2) / 4 + _ROOT / 4 / d - 11 / 8 / d.pow(2) + 5 / 8 * _ROOT / d.pow(3) - 1 / 8 - s**2)
    return gain * value.clamp_min(0)


def vst_denoise(denoise: Callable[[torch.Tensor, float], torch.Tensor], y: torch.Tensor, gain: float,
                sigma: float) -> torch.Tensor:
    """Denoise Poisson-Gaussian ``y`` with a Gaussian denoiser through the generalized Anscombe transform.

    Parameters
    ----------
    denoise : callable
        ``denoise(z, s)``: a Gaussian denoiser of an image ``z`` on the [0, 1] scale with noise sigma ``s``.
    y : torch.Tensor
        The noisy image (N, C, H, W).
    gain, sigma : float
        The Poisson-Gaussian parameters (see :class:`~restorekit.degrade.PoissonGaussian`).

    Returns
    -------
    torch.Tensor
        The estimate of the clean image, shaped like ``y``.

    Examples
    --------
    >>> import torch
    >>> from restorekit.degrade import PoissonGaussian
    >>> x = torch.full((1, 1, 64, 64), 0.2)
    >>> y = PoissonGaussian(0.02, 0.01).apply(x, seed=0)
    >>> flat = lambda z, s: z.mean().expand_as(z)      # an ideal denoiser of a flat image
    >>> round(float(vst_denoise(flat, y, 0.02, 0.01).mean()), 3)
    0.2
    """
    lo = float(anscombe(torch.zeros(()), gain, sigma))
    hi = float(anscombe(torch.ones(()), gain, sigma))
    span = hi - lo
    z = (anscombe(y, gain, sigma) - lo) / span
    out = denoise(z, 1.0 / span)
    return inverse_anscombe(out * span + lo, gain, sigma).to(y.dtype)


def route(restorer: Any, degradation: Any) -> PoissonGaussian | None:
    """The Poisson-Gaussian noise ``restorer`` should meet through the VST, or None to call it as it is.

    The VST path applies when the degradation is a :class:`PoissonGaussian` alone
    (signal-dependent noise, no operator) and the restorer is a denoiser that
    reads one noise level (``uses_noise_level``) but not a per-pixel map
    (``reads_noise_map`` false: tv, wavelet, nlmeans, bm3d), so it could not
    otherwise adapt to noise that varies with brightness. Blind denoisers
    (``dncnn``) are called as they are: they adapt by themselves, and the
    transform cost ``dncnn`` 0.15 dB on CBSD68 crops (measured).
    """
    from .base import Degradation, Identity
    from .noise import Noise

    parts = degradation.parts() if isinstance(degradation, Degradation) else ()
    found = [p for p in parts if isinstance(p, PoissonGaussian)]
    if len(found) != 1 or found[0].gain <= 0:
        return None
    if any(not isinstance(p, Noise) and type(p) not in (Degradation, Identity) for p in parts):
        return None  # an operator: the VST does not commute with it
    if not getattr(restorer, "uses_noise_level", False) or getattr(restorer, "reads_noise_map", False) or (
            "denoise" not in set(getattr(restorer, "tasks", ()))):
        return None
    read = math.sqrt(sum((p.read_sigma if isinstance(p, PoissonGaussian) else p.sigma) ** 2
                         for p in parts if isinstance(p, Noise)))
    return PoissonGaussian(found[0].gain, read)


__all__ = ["INVERSE_FLOOR", "anscombe", "inverse_anscombe", "route", "vst_denoise"]
