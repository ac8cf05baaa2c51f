"""Poisson-Gaussian noise: photon (shot) noise plus read noise, the noise of a camera sensor.

``PoissonGaussian(gain, sigma)`` draws ``y = gain * Poisson(A x / gain) + N(0, sigma^2)``
(Foi, Trimeche, Katkovnik and Egiazarian, "Practical Poissonian-Gaussian noise modeling
and fitting for single-image raw-data", IEEE TIP 2008): the noise has mean zero and the
per-pixel variance ``gain * A x + sigma^2``, so it grows with brightness. ``gain`` is the
[0, 1]-scale size of one photon (0.01: a white pixel collects 100 photons), ``sigma`` the
standard deviation of the signal-independent read noise. Like :class:`~restorekit.degrade.Noise`
the values are not clipped and the draw is seeded through the same generator.

What restorers read:

* ``degradation.sigma_map(y)``: the per-pixel standard deviation
  ``sqrt(gain * x + sigma^2)`` with the unknown ``x`` replaced by a smoothed observation
  (a 5x5 mean of ``y``, clamped at 0). Denoisers that read a noise map (ffdnet, drunet: the
  :class:`~restorekit.learned_denoiser.NoiseLevelDenoiser` base) use it directly.
* ``degradation.sigma``: one number for restorers that read a scalar (wiener's
  regularisation, the classical denoisers, pnp's schedule): the RMS of that map,
  ``sqrt(gain * m + sigma^2)`` with ``m`` the mean intensity. A model not yet bound to an
  image assumes ``m = level`` (0.5, mid-grey); :meth:`PoissonGaussian.observe` binds it to an
  observation (``Restorer.__call__`` does that for every restorer), so a restorer sees the RMS
  noise of the very image it restores.
* Denoisers that read one noise level but no map (tv, wavelet, nlmeans, bm3d) go through
  the variance-stabilising path of :mod:`restorekit.degrade.vst` (generalized Anscombe
  transform, Gaussian denoising at one sigma, exact unbiased inverse).
* ``pnp`` weights its data step by the inverse of the map.

:func:`parse_noise` reads a noise spec, ``0.05`` (Gaussian) or ``pg:GAIN,SIGMA``, for the
command line (``degrade --noise``, ``restore --sigma``, ``bench --noise``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..checks import check_sigma
from ..errors import InputError
from .noise import Noise, noise_map  # noqa: F401 - noise_map is re-exported here

#: The mean intensity an unbound model assumes for :attr:`PoissonGaussian.sigma` (mid-grey).
DEFAULT_LEVEL = 0.5
#: Side of the box filter that smooths the observation into the map's intensity estimate.
SMOOTHING = 5


def _check_gain(gain: Any) -> float:
    if isinstance(gain, bool):
        raise InputError(f"Poisson-Gaussian gain must be a number, got {gain!r}")
    try:
        value = float(gain)
    except (TypeError, ValueError):
        raise InputError(f"Poisson-Gaussian gain must be a number, got {gain!r}") from None
    if not math.isfinite(value) or value < 0 or value > 1:
        raise InputError(f"Poisson-Gaussian gain must be in [0, 1] (the [0, 1]-scale size of one photon: 0.01 means "
                         f"100 photons for white), got {gain!r}")
    return value


def smoothed(y: torch.Tensor, size: int = SMOOTHING) -> torch.Tensor:
    """A ``size`` x ``size`` mean of ``y`` (N, C, H, W), reflect-padded, clamped at 0: the intensity estimate."""
    y = y.float() if not y.is_floating_point() else y
    pad = size // 2
    if min(y.shape[-2:]) <= pad:
        return y.clamp_min(0)
    padded = torch.nn.functional.pad(y, (pad, pad, pad, pad), mode="reflect")
    return torch.nn.functional.avg_pool2d(padded, size, stride=1).clamp_min(0)


class PoissonGaussian(Noise):
    """Poisson-Gaussian noise ``y = gain * Poisson(A x / gain) + N(0, sigma^2)`` (see the module docstring).

    Parameters
    ----------
    gain : float
        The photon size on the [0, 1] scale, in [0, 1]; 0 is pure Gaussian noise.
    sigma : float
        The standard deviation of the Gaussian part ([0, 1] scale).
    level : float
        The mean intensity :attr:`sigma` assumes until :meth:`observe` binds the model to an image.

    Examples
    --------
    >>> import torch
    >>> pg = PoissonGaussian(0.02, 0.01)
    >>> y = pg.apply(torch.full((1, 1, 64, 64), 0.5), seed=0)
    >>> round(float(y.std()), 2), round(pg.sigma, 4)   # sqrt(0.02 * 0.5 + 0.01^2)
    (0.1, 0.1005)
    >>> round(float(pg.sigma_map(y).mean()), 2)
    0.1
    """

    def __init__(self, gain: float, sigma: float, level: float = DEFAULT_LEVEL) -> None:
        super().__init__(sigma)
        self.gain = _check_gain(gain)
        self.level = max(0.0, float(level))

    @property
    def read_sigma(self) -> float:
        """The standard deviation of the Gaussian (read-noise) part."""
        return self._sigma

    @property
    def sigma(self) -> float:
        """The RMS noise standard deviation, ``sqrt(gain * level + sigma^2)`` (the RMS of :meth:`sigma_map`)."""
        return math.sqrt(self.gain * self.level + self._sigma**2)

    @property
    def tasks(self) -> frozenset[str]:
        return frozenset({"denoise"}) if self.gain > 0 or self._sigma > 0 else frozenset()

    def variance(self, x: torch.Tensor) -> torch.Tensor:
        """The per-pixel noise variance ``gain * x + sigma^2`` for a clean (noise-free) ``x``."""
        return self.gain * x.clamp_min(0) + self._sigma**2

    def sigma_map(self, y: torch.Tensor) -> torch.Tensor:
        """The per-pixel standard deviation estimated from the observation ``y`` (N, C, H, W).

        ``sqrt(gain * s + sigma^2)`` with ``s`` the :func:`smoothed` observation standing in for the
        unknown clean image; shaped like ``y``.
        """
        return self.variance(smoothed(y)).sqrt().to(y.dtype)

    def observe(self, y: torch.Tensor) -> "PoissonGaussian":
        """This model with :attr:`level` set to the mean intensity of the observation ``y``."""
        level = float(y.detach().float().clamp_min(0).mean()) if y.numel() else DEFAULT_LEVEL
        return PoissonGaussian(self.gain, self._sigma, level)

    def describe(self) -> dict:
        return {"type": "PoissonGaussian", "gain": self.gain, "sigma": self._sigma}

    def noise(self, shape, like, generator):
        if self.gain == 0 and self._sigma == 0:
            return None
        clean = like.detach().to("cpu", torch.float64).clamp_min(0).expand(tuple(shape))
        if self.gain > 0:
            counts = torch.poisson(clean / self.gain, generator=generator)
            n = counts * self.gain - clean
        else:
            n = torch.zeros_like(clean)
        if self._sigma > 0:
            n = n + self._sigma * torch.randn(tuple(shape), generator=generator, dtype=torch.float64)
        return n.to(device=like.device, dtype=like.dtype)

    def __repr__(self) -> str:
        return f"PoissonGaussian(gain={self.gain:g}, sigma={self._sigma:g})"


def observe(degradation: Any, y: torch.Tensor) -> Any:
    """``degradation`` with every Poisson-Gaussian part bound to the observation ``y`` (see :meth:`PoissonGaussian.observe`).

    Anything without such a part comes back as it is.
    """
    if isinstance(degradation, PoissonGaussian):
        return degradation.observe(y)
    parts = degradation.parts() if hasattr(degradation, "parts") else ()
    if len(parts) > 1 and any(isinstance(p, PoissonGaussian) for p in parts):
        from .compose import Compose

        return Compose(*(p.observe(y) if isinstance(p, PoissonGaussian) else p for p in parts))
    return degradation


def parse_noise(spec: Any, what: str = "--noise") -> Noise:
    """A noise model from a spec: a number (Gaussian sigma, [0, 1] scale) or ``pg:GAIN,SIGMA``.

    Examples
    --------
    >>> parse_noise("0.05"), parse_noise("pg:0.02,0.01")
    (Noise(sigma=0.05), PoissonGaussian(gain=0.02, sigma=0.01))
    """
    if isinstance(spec, Noise):
        return spec
    text = str(spec).strip()
    if text.lower().startswith("pg:"):
        fields = [f.strip() for f in text[3:].split(",")]
        if len(fields) != 2 or not all(fields):
            raise InputError(f"{what} {text!r}: a Poisson-Gaussian spec is pg:GAIN,SIGMA, e.g. pg:0.02,0.01 "
                             "(photon size 0.02 and read-noise sigma 0.01 on the [0, 1] scale)")
        try:
            gain, sigma = float(fields[0]), float(fields[1])
        except ValueError:
            raise InputError(f"{what} {text!r}: GAIN and SIGMA of pg:GAIN,SIGMA must be numbers, e.g. pg:0.02,0.01") \
                from None
        try:
            return PoissonGaussian(gain, sigma)
        except InputError as exc:
            raise InputError(f"{what} {text!r}: {exc}") from None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not a noise spec: give a Gaussian sigma on the [0, 1] scale "
                         "(e.g. 0.05) or pg:GAIN,SIGMA for Poisson-Gaussian noise (e.g. pg:0.02,0.01)") from None
    return Noise(check_sigma(value, what))


__all__ = ["DEFAULT_LEVEL", "PoissonGaussian", "noise_map", "observe", "parse_noise", "smoothed"]
