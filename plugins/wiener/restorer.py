"""The Wiener deconvolution restorer and its automatic regularisation.

The Wiener filter inverts a known blur ``H`` in the Fourier domain::

    X = conj(H) Y / (|H|^2 + reg)

With ``snr=100`` (the course's setting) ``reg = 1 / snr`` is one number for
every frequency. With ``snr="auto"`` it is the textbook Wiener ratio of noise
to signal power at each frequency, ``reg(f) = sigma^2 / S_x(f)``: ``sigma``
is the degradation's noise level ([0, 1] scale) and ``S_x`` the clean image's
power spectrum, estimated from the observed image as a power law
``S_x(f) = A |f|^-alpha`` (natural images have ``alpha`` close to 2):

1. the observed periodogram ``|Y(f)|^2 / (H W)`` is averaged in 24
   log-spaced rings of radial frequency ``f`` (cycles per pixel, from
   ``1 / max(H, W)`` to ``sqrt(1/2)``);
2. in each ring the expected power is ``|H|^2 S_x + sigma^2``, so
   ``S_x = (mean |Y|^2 / (H W) - sigma^2) / mean |H|^2``, kept where the
   signal stands clearly above the noise (twice the noise floor) and the
   blur passes enough of it (``mean |H|^2 > 0.01``);
3. ``log S_x = log A - alpha log f`` is fitted by least squares over those
   rings, per image and channel, with ``alpha`` held to [1, 4].

High frequencies, where the blur has wiped the signal out, are then damped
hard while low ones are inverted almost exactly; one number cannot do both.
The mean (``f = 0``) is inverted exactly.
A noise-free degradation is treated as 8-bit quantisation noise
(``sigma = 1 / (255 sqrt 12)``), the smallest noise a stored photo carries.

Edges are handled by :meth:`restorekit.degrade.Blur.regularized_inverse`:
exact for the circular model of synthetic benchmarks, mirrored for a
``boundary="reflect"`` blur (a real photo) so the borders do not ring.
"""

from __future__ import annotations

import functools
import math

import torch

from restorekit.errors import InputError
from restorekit.restorer import Restorer

from . import PARAMS, SUMMARY

#: Noise level assumed when the degradation has none: the rounding noise of 8-bit storage.
QUANTIZATION_SIGMA = 1.0 / (255.0 * math.sqrt(12.0))
#: Number of log-spaced frequency rings used to fit the power law.
RINGS = 24
#: Bounds of the fitted power-law exponent (natural images: about 2).
ALPHA_RANGE = (1.0, 4.0)


@functools.lru_cache(maxsize=8)
def _log_frequency(shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """log |f| (cycles per pixel) on the ``rfft2`` grid of ``shape``; f = 0 is taken as half the lowest f."""
    fy = torch.fft.fftfreq(shape[0], dtype=torch.float64, device=device)[:, None]
    fx = torch.fft.rfftfreq(shape[1], dtype=torch.float64, device=device)[None, :]
    return torch.sqrt(fy**2 + fx**2).clamp(min=0.5 / max(shape)).log()


@functools.lru_cache(maxsize=8)
def _rings(shape: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ring of every ``rfft2`` frequency (flattened; ``RINGS`` marks f = 0), ring sizes, mean log f."""
    log_f = _log_frequency(shape, device)
    edges = torch.linspace(math.log(1.0 / max(shape)), math.log(math.sqrt(0.5)) + 1e-9, RINGS + 1,
                           dtype=torch.float64, device=device)
    ring = (torch.bucketize(log_f, edges) - 1).clamp(0, RINGS)
    ring[0, 0] = RINGS  # the mean (f = 0) is not part of the fit
    ring = ring.flatten()
    counts = torch.zeros(RINGS + 1, dtype=torch.float64, device=device).index_add_(0, ring, torch.ones_like(log_f).flatten())
    mean_log_f = torch.zeros(RINGS + 1, dtype=torch.float64, device=device).index_add_(0, ring, log_f.flatten())
    return ring, counts[:RINGS], mean_log_f[:RINGS] / counts[:RINGS].clamp(min=1)


def _ring_mean(values: torch.Tensor, ring: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (``(..., H, W // 2 + 1)``) over each ring: ``(..., RINGS)``."""
    flat = values.to(torch.float64).reshape(-1, ring.numel())
    sums = torch.zeros(flat.shape[0], RINGS + 1, dtype=torch.float64, device=values.device).index_add_(1, ring, flat)
    return (sums[:, :RINGS] / counts.clamp(min=1)).reshape(*values.shape[:-2], RINGS)


def fit_signal_spectrum(y: torch.Tensor, otf_power: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``log S_x(f) = a - alpha log f`` to a blurred, noisy batch.

    Parameters
    ----------
    y : torch.Tensor
        The observed images, ``(N, C, H, W)``.
    otf_power : torch.Tensor
        ``|H|^2`` on ``y``'s ``rfft2`` grid, ``(H, W // 2 + 1)``.
    sigma : float
        Noise standard deviation on the [0, 1] scale (> 0).

    Returns
    -------
    (a, alpha) : tuple of torch.Tensor
        float64 tensors of shape ``(N, C)``: the log amplitude and the
        exponent of the clean images' power spectrum (per-pixel power,
        ``|FFT|^2 / (H W)``).
    """
    h, w = y.shape[-2:]
    ring, counts, ring_logf = _rings((h, w), y.device)
    power = torch.fft.rfft2(y.float()).abs().square() / (h * w)
    ring_power = _ring_mean(power, ring, counts)
    ring_otf = _ring_mean(otf_power, ring, counts)

    noise = sigma**2
    signal = (ring_power - noise) / ring_otf.clamp(min=1e-12)
    usable = (counts > 0) & (ring_power > 2 * noise) & (ring_otf > 1e-2)
    weight = usable.to(torch.float64)
    lx = ring_logf.expand_as(signal)
    ly = signal.clamp(min=1e-30).log()
    total = weight.sum(-1)
    mx = (weight * lx).sum(-1) / total.clamp(min=1)
    my = (weight * ly).sum(-1) / total.clamp(min=1)
    slope = (weight * (lx - mx[..., None]) * (ly - my[..., None])).sum(-1) / (
        (weight * (lx - mx[..., None]) ** 2).sum(-1).clamp(min=1e-12)
    )
    alpha = (-slope).clamp(*ALPHA_RANGE)
    a = my + alpha * mx

    # Too few rings above the noise to fit a line (a flat or tiny image): keep alpha = 2 and scale
    # the power law so that its mean over the grid equals the signal variance left after the noise.
    few = total < 3
    if bool(few.any()):
        variance = (y.to(torch.float64).var(dim=(-2, -1)) - noise).clamp(min=noise * 1e-2)
        mean_shape = torch.exp(-2.0 * _log_frequency((h, w), y.device)).mean()
        alpha = torch.where(few, torch.full_like(alpha, 2.0), alpha)
        a = torch.where(few, variance.log() - mean_shape.log(), a)
    return a, alpha


def auto_regularization(y: torch.Tensor, blur, sigma: float, grid: tuple[int, int]) -> torch.Tensor:
    """Per-frequency ``sigma^2 / S_x(f)`` on the ``rfft2`` grid of size ``grid``.

    The spectrum is fitted on ``y`` (see :func:`fit_signal_spectrum`) and
    evaluated on ``grid``, the size of the array the inverse transforms
    (larger than ``y`` when the borders are mirrored). Returns a tensor of
    shape ``(N, C, grid[0], grid[1] // 2 + 1)``.
    """
    sigma = max(float(sigma), QUANTIZATION_SIGMA)
    otf_power = blur.otf(y.shape[-2:], y).abs().square()
    a, alpha = fit_signal_spectrum(y, otf_power, sigma)
    log_signal = a[..., None, None] - alpha[..., None, None] * _log_frequency(tuple(grid), y.device)
    reg = torch.exp(2.0 * math.log(sigma) - log_signal).to(y.dtype)
    # The mean (f = 0) carries the image's whole mean power and H(0) = sum(kernel) != 0: invert it exactly.
    reg[..., 0, 0] = 0.0
    return reg


#: Peak working memory per input value (image x channel x pixel), in bytes, by (boundary, snr auto?):
#: measured as the peak RSS growth of one call on 1x3x1024x1024 and 1x3x2048x2048 images on the CPU
#: (14 / 24 / 85 / 113 B at 1024^2), rounded up. The reflect boundary transforms a mirrored grid of 4x the
#: pixels; ``snr=auto`` keeps a per-frequency regularisation and the periodogram besides. Smaller images pay
#: a fixed overhead besides (reflect with ``snr=auto`` measured 130 B per value at 768^2 in a fresh
#: environment), so that entry keeps a 10% margin over it.
BYTES_PER_VALUE = {("circular", False): 16, ("circular", True): 28, ("reflect", False): 96, ("reflect", True): 144}


def memory_need(shape: tuple[int, ...], boundary: str, auto: bool) -> int:
    """Bytes one Wiener call needs for a batch of ``shape`` (N, C, H, W) (see :data:`BYTES_PER_VALUE`)."""
    n, c, h, w = shape
    return int(n * c * h * w * BYTES_PER_VALUE[("reflect" if boundary != "circular" else "circular", bool(auto))])


def check_memory(shape: tuple[int, ...], boundary: str, auto: bool, max_memory, device) -> None:
    """Raise :class:`InputError` when the FFTs for ``shape`` need more than ``max_memory`` (``auto``: what is free)."""
    from restorekit.tiling import available_memory, format_bytes

    need = memory_need(shape, boundary, auto)
    budget = available_memory(device) if max_memory == "auto" else int(max_memory)
    if budget is None or need <= budget:
        return
    n, c, h, w = shape
    grid = f"{h}x{w}" if boundary == "circular" else f"mirrored {2 * h - 2}x{2 * w - 2}"
    limit = "the memory free now" if max_memory == "auto" else "max_memory"
    cheaper = " or the circular boundary (--boundary circular, about 4x less)" if boundary != "circular" else ""
    raise InputError(
        f"'wiener' needs about {format_bytes(need)} for {n}x{c}x{h}x{w} (FFTs over the {grid} grid"
        f"{', snr=auto' if auto else ''}), more than {limit} ({format_bytes(budget)}); restore fewer or smaller "
        f"images at once{cheaper}, free memory, or raise --max-memory"
    )


def _inverse_grid(blur, shape: tuple[int, int]) -> tuple[int, int]:
    """The size of the array :meth:`Blur.regularized_inverse` transforms for an image of ``shape``."""
    h, w = shape
    return (h, w) if blur.boundary == "circular" else (2 * h - 2, 2 * w - 2)


class Wiener(Restorer):
    """Wiener deconvolution: invert the degradation's known blur in the Fourier domain.

    Parameters
    ----------
    snr : float or "auto"
        Signal-to-noise ratio: ``reg = 1 / snr`` at every frequency (the
        course used 100). ``"auto"`` derives a per-frequency regularisation
        from the degradation's noise level and the observed image's power
        spectrum (see the module docstring).
    clip : bool
        Clip the estimate to [0, 1] (default). Turn off to keep the linear
        estimate, e.g. for a following step that expects it.
    max_memory : int or "auto"
        Bytes the FFTs may use (``"2GiB"`` etc. are parsed); ``"auto"``: the
        memory free when it runs. A batch that needs more (see
        :func:`memory_need`) is refused with the need stated, before any
        allocation.

    Examples
    --------
    >>> import torch
    >>> from restorekit.degrade import Blur, Compose, Noise
    >>> from restorekit.kernels import load_kernel
    >>> from restorekit_plugins.wiener.restorer import Wiener
    >>> x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> d = Compose(Blur(load_kernel("course")), Noise(0.01))
    >>> Wiener(snr="auto")(d.apply(x, seed=0), d).shape
    torch.Size([2, 3, 32, 32])
    """

    name = "wiener"
    tasks = frozenset({"deblur"})
    params = PARAMS
    summary = SUMMARY
    needs_degradation = True  # it inverts the degradation's blur kernel

    @property
    def output_range(self):
        """[0, 1] unless built with ``clip=False`` (the linear estimate)."""
        return (0.0, 1.0) if self.config["clip"] else None

    def restore(self, image: torch.Tensor, degradation=None) -> torch.Tensor:
        blur = getattr(degradation, "blur", None)
        if blur is None or getattr(blur, "kernel", None) is None:
            got = "no degradation" if degradation is None else f"a {type(degradation).__name__} without blur"
            raise InputError(
                f"'wiener' needs the blur kernel but got {got}; pass the degradation, e.g. "
                "Compose(Blur(load_kernel('course')), Noise(0.01)), or on the command line "
                "--kernel SPEC, or --kernel auto to estimate it from the image (restorekit.estimate_kernel); "
                "for noise alone use a denoiser"
            )
        snr = self.config["snr"]
        check_memory(tuple(image.shape), blur.boundary, snr == "auto", self.config.get("max_memory", "auto"),
                     image.device)
        work = image if image.dtype in (torch.float32, torch.float64) else image.float()
        if snr == "auto":
            grid = _inverse_grid(blur, tuple(work.shape[-2:]))
            reg = auto_regularization(work, blur, degradation.sigma, grid)
        else:
            reg = 1.0 / float(snr)
        out = blur.regularized_inverse(work, reg).to(image.dtype)
        return out.clamp(0, 1) if self.config["clip"] else out
