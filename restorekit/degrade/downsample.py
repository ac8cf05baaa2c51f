"""Downsampling: an anti-aliasing blur, then one pixel kept per ``s x s`` block.

``Downsample(s).forward`` blurs an ``H x W`` image with the anti-aliasing
kernel and keeps pixel ``(s i, s j)`` of the blurred image for every block
``(i, j)``, giving ``H / s x W / s`` (``H`` and ``W`` must be multiples of
``s``; :func:`crop_to_multiple` trims an image to one).

**The default anti-aliasing kernel** is the bicubic one (Keys' cubic with
``a = -0.5``, stretched by ``s``), laid out so that the kept pixel of block
``(i, j)`` is the bicubic average *centred on the block* (at
``(s i + (s - 1) / 2, s j + (s - 1) / 2)``), not on its top-left pixel. It is
the kernel of MATLAB's ``imresize``, PIL's and
``torch.nn.functional.interpolate(mode="bicubic", antialias=True)``, so
``Downsample(s)`` is the bicubic downsampling super-resolution benchmarks use
(with periodic instead of replicated borders for ``boundary="circular"``), and
plain bicubic upsampling (``align_corners=False``) puts each low-resolution
pixel back where it came from. The cubic reaches ``2 s`` pixels either side
of the block centre; zero rows and columns on the top-left put the kernel's
centre index ``k // 2`` where the top-left decimation needs it, so the kernel
is ``5 s - 2`` pixels wide for even ``s`` (x2: 8x8, x4: 18x18) and ``5 s - 3``
for odd ``s`` (x3: 12x12). It sums to 1 and has the small negative lobes of
the cubic. A kernel given as
``kernel=`` replaces it (the classical model ``y = (x * k) decimated by s``
with, e.g., a Gaussian ``k``), used with the same top-left decimation.

The data step :meth:`Downsample.prox` is closed-form for the circular
boundary: Zhao et al., "Fast single image super-resolution using a new
analytical solution for l2-l2 problems" (IEEE TIP 2016). With ``H`` the
blur's transfer function, ``R = conj(H) up(Y) + rho Z`` (``up`` repeats the
low-resolution spectrum ``s x s`` times, the spectrum of zero insertion) and
``fold`` the mean over the ``s^2`` frequencies that alias together under
decimation, the Woodbury identity gives

``X = (R - conj(H) up(fold(H R) / (fold(|H|^2) + rho))) / rho``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from ..errors import InputError
from .base import BOUNDARIES, Degradation
from .blur import Blur, check_kernel
from .fft import psf2otf_full

#: Keys' cubic parameter of the default kernel (MATLAB imresize, PIL, torch's antialiased bicubic).
BICUBIC_A = -0.5


def _cubic(t: torch.Tensor, a: float = BICUBIC_A) -> torch.Tensor:
    t = t.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return torch.where(t <= 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


def bicubic_kernel(scale: int) -> torch.Tensor:
    """The default anti-aliasing kernel of :class:`Downsample` for ``scale`` (see the module docstring).

    Returns
    -------
    torch.Tensor
        float64, square, summing to 1; with restorekit's kernel centre at
        ``(k // 2, k // 2)`` it averages each ``s x s`` block about the
        block's centre when the block's top-left pixel is kept.

    Examples
    --------
    >>> from restorekit.degrade import bicubic_kernel
    >>> k = bicubic_kernel(2)
    >>> tuple(k.shape), round(float(k.sum()), 12)
    ((8, 8), 1.0)
    """
    s = check_scale(scale)
    shift = (s - 1) / 2  # the block centre, from its top-left pixel
    reach = 2 * s  # the stretched cubic is zero from |d| = 2 s on
    lo, hi = math.floor(shift - reach) + 1, math.ceil(shift + reach) - 1
    # Kernel index t weighs input offset o = c - t (a true convolution, centre c = size // 2), so c = hi.
    centre = hi
    size = 2 * centre if centre >= 1 - lo else 2 * centre + 1
    offsets = centre - torch.arange(size, dtype=torch.float64)
    taps = _cubic((offsets - shift) / s)
    taps = taps / taps.sum()
    return torch.outer(taps, taps)


def check_scale(scale: Any) -> int:
    """A downsampling factor as an ``int``: an integer >= 2 (``2`` or ``2.0``), else :class:`InputError`."""
    value = None
    if isinstance(scale, numbers.Integral) and not isinstance(scale, bool):
        value = int(scale)
    elif isinstance(scale, numbers.Real) and not isinstance(scale, bool) and float(scale).is_integer():
        value = int(scale)
    elif isinstance(scale, str) and scale.strip().isdigit():
        value = int(scale.strip())
    if value is None or value < 2:
        raise InputError(f"the scale must be an integer >= 2 (the downsampling factor), got {scale!r}; e.g. 2 or 4")
    return value


def crop_to_multiple(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``x`` with its bottom rows and right columns trimmed so height and width are multiples of ``scale``."""
    s = check_scale(scale)
    h, w = x.shape[-2] - x.shape[-2] % s, x.shape[-1] - x.shape[-1] % s
    return x[..., :h, :w]


def spectral_prox(otf: torch.Tensor, y: torch.Tensor, z: torch.Tensor, rho: torch.Tensor, scale: int) -> torch.Tensor:
    """``argmin_x ||y - S H x||^2 + rho ||x - z||^2`` for a circular blur ``H`` then decimation ``S`` by ``scale``.

    ``otf`` is ``H`` on the full ``fft2`` grid of ``z`` (:func:`psf2otf_full`);
    ``scale`` 1 is the plain circular deblurring step. See the module
    docstring for the formula (Zhao et al. 2016).
    """
    real = torch.float64 if z.dtype == torch.float64 else torch.float32
    weight = rho.to(real)
    otf = otf.to(torch.complex128 if real == torch.float64 else torch.complex64)
    s = scale
    spectrum_y = torch.fft.fft2(y.to(real))
    if s > 1:
        spectrum_y = spectrum_y.repeat(1, 1, s, s)  # the spectrum of zero insertion
    rhs = otf.conj() * spectrum_y + weight * torch.fft.fft2(z.to(real))
    if s == 1:
        x = rhs / (otf.abs().square() + weight)
    else:
        h, w = z.shape[-2] // s, z.shape[-1] // s

        def fold(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(*t.shape[:-2], s, h, s, w).mean(dim=(-4, -2))

        low = fold(otf * rhs) / (fold(otf.abs().square()) + weight)
        x = (rhs - otf.conj() * low.repeat(1, 1, s, s)) / weight
    return torch.fft.ifft2(x).real.to(z.dtype)


class Downsample(Degradation):
    """Anti-aliasing blur, then the top-left pixel of every ``s x s`` block of the blurred image kept.

    Parameters
    ----------
    scale : int
        The factor ``s``, an integer >= 2: ``H x W`` becomes ``H / s x W / s``.
    kernel : array_like or torch.Tensor, optional
        The anti-aliasing blur; default :func:`bicubic_kernel` (``scale``),
        the bicubic downsampling of MATLAB's imresize (module docstring).
        It must fit in the low-resolution image.
    boundary : {"circular", "reflect"}
        The blur's border, as for :class:`Blur`. ``"circular"`` (default)
        has the closed-form :meth:`prox`; ``"reflect"`` uses conjugate
        gradients.

    Examples
    --------
    >>> import torch
    >>> from restorekit.degrade import Downsample
    >>> d = Downsample(2)
    >>> d.forward(torch.rand(1, 3, 32, 48)).shape, d.scale, d.tasks
    (torch.Size([1, 3, 16, 24]), 2, frozenset({'superresolve'}))
    """

    def __init__(self, scale: int, kernel: Any = None, boundary: str = "circular") -> None:
        if boundary not in BOUNDARIES:
            raise InputError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        self._scale = check_scale(scale)
        self.default_kernel = kernel is None
        self.kernel = bicubic_kernel(self._scale) if kernel is None else check_kernel(kernel, "anti-aliasing kernel")
        self.boundary = boundary
        self._blur = Blur(self.kernel, boundary)
        self._otf_cache: dict[tuple, torch.Tensor] = {}

    @property
    def scale(self) -> int:
        return self._scale

    @property
    def tasks(self) -> frozenset[str]:
        return frozenset({"superresolve"})

    def describe(self) -> dict:
        return {"type": "Downsample", "scale": self._scale, "kernel_shape": list(self.kernel.shape),
                "kernel": "bicubic" if self.default_kernel else "given", "boundary": self.boundary}

    def to(self, device: torch.device | str) -> "Downsample":
        moved = Downsample(self._scale, self.kernel.to(device), self.boundary)
        moved.default_kernel = self.default_kernel
        return moved

    def check_high(self, x: torch.Tensor) -> None:
        """Refuse an image this operator cannot downsample, with the fix."""
        h, w = x.shape[-2:]
        s = self._scale
        if h < s or w < s:
            raise InputError(f"the image ({h}x{w}) is too small to downsample by {s}: it needs at least {s}x{s} pixels")
        if h % s or w % s:
            raise InputError(
                f"the image ({h}x{w}) is not a multiple of the scale {s} in height and width; "
                f"crop it to {h - h % s}x{w - w % s} (restorekit.degrade.crop_to_multiple)"
            )
        self.check_low((h // s, w // s))

    def check_low(self, shape) -> None:
        """Refuse a low-resolution size smaller than the anti-aliasing kernel."""
        h, w = int(shape[-2]), int(shape[-1])
        kh, kw = self.kernel.shape
        if kh > h or kw > w:
            what = f"the default bicubic anti-aliasing kernel for x{self._scale}" if self.default_kernel else "the kernel"
            raise InputError(
                f"{what} ({kh}x{kw}) is larger than the low-resolution image ({h}x{w}); the low-resolution "
                f"image must be at least {kh}x{kw} (the original at least {kh * self._scale}x{kw * self._scale})"
                + ("" if self.default_kernel else ", or use a smaller kernel")
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_high(x)
        s = self._scale
        return self._blur.forward(x)[..., ::s, ::s]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self.check_low(y.shape)
        s = self._scale
        up = y.new_zeros(*y.shape[:-2], y.shape[-2] * s, y.shape[-1] * s)
        up[..., ::s, ::s] = y
        return self._blur.adjoint(up)

    def otf_full(self, shape, like: torch.Tensor) -> torch.Tensor:
        """The anti-aliasing kernel's transfer function on the full ``fft2`` grid of ``shape``, cached."""
        real = torch.float64 if like.dtype == torch.float64 else torch.float32
        key = (int(shape[0]), int(shape[1]), like.device, real)
        if key not in self._otf_cache:
            self._otf_cache[key] = psf2otf_full(self.kernel.to(device=like.device, dtype=real), shape)
        return self._otf_cache[key]

    def _prox(self, y, z, rho, iterations, tol):
        self.check_high(z)
        if self.boundary != "circular":
            return self._prox_cg(y, z, rho, iterations, tol)
        return spectral_prox(self.otf_full(z.shape[-2:], z), y, z, rho, self._scale)


__all__ = ["BICUBIC_A", "Downsample", "bicubic_kernel", "check_scale", "crop_to_multiple", "spectral_prox"]
