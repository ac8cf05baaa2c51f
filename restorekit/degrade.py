"""Degradation models: how an image was damaged, as operators.

A :class:`Degradation` is a linear forward operator ``A`` (blur, mask, or
the identity) with its adjoint ``A^T`` and a Gaussian noise model, following
the ``y = A x + n`` picture shared by restorers, training and benchmarks::

    y = degradation.apply(x, seed=0)    # A x + noise
    degradation.forward(x)              # A x (noise-free)
    degradation.adjoint(y)              # A^T y

Images are batched ``N, C, H, W`` float tensors with values in [0, 1]. Noise
levels (``sigma``) are standard deviations **on the [0, 1] scale** everywhere
in restorekit: sigma 25 on the 0-255 scale is ``25 / 255 = 0.098``.

Blur is a convolution with a kernel (a true convolution, kernel flipped, with
``psf2otf`` semantics: the kernel's centre sits at the origin). The default
``boundary="circular"`` is the exact circular model used in synthetic
benchmarks, computed with the FFT. ``boundary="reflect"`` models a photograph
of a larger scene (the border sees mirrored content); restorers that invert a
blur with the FFT treat such images with a mirrored periodic extension so
they restore without ringing at the borders (see
:meth:`Blur.regularized_inverse`).

Examples
--------
>>> import torch
>>> from restorekit.degrade import Blur, Noise, Compose
>>> kernel = torch.ones(3, 3) / 9
>>> d = Compose(Blur(kernel), Noise(0.01))
>>> x = torch.rand(1, 3, 32, 32)
>>> y = d.apply(x, seed=0)
>>> y.shape, d.sigma, d.tasks
(torch.Size([1, 3, 32, 32]), 0.01, frozenset({'deblur'}))
"""

from __future__ import annotations

import functools
import math
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError, ParameterError
from .restorer import check_batch

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
    def blur(self) -> "Blur | None":
        """The blur operator inside this degradation, if any."""
        return None

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


# --------------------------------------------------------------------------- blur
def psf2otf(kernel: torch.Tensor, shape: Sequence[int], half_axis: int = -1) -> torch.Tensor:
    """Optical transfer function of ``kernel`` for images of ``shape`` (H, W).

    The kernel is zero-padded to ``shape`` and circularly shifted so that its
    centre (index ``k // 2`` in each axis) sits at the origin, then
    transformed with a real FFT whose half spectrum lies along ``half_axis``:
    with the default ``-1`` that is ``rfft2`` and the result has shape
    ``(H, W // 2 + 1)``; with ``-2`` it has shape ``(H // 2 + 1, W)``.
    """
    h, w = int(shape[0]), int(shape[1])
    kh, kw = kernel.shape[-2:]
    padded = kernel.new_zeros(h, w)
    padded[:kh, :kw] = kernel
    padded = torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
    return torch.fft.rfftn(padded, dim=_fft_axes(half_axis))


def _fft_axes(half_axis: int) -> tuple[int, int]:
    """FFT axes with the halved (real-input) one last, as ``rfftn`` wants them."""
    if half_axis not in (-1, -2):
        raise ValueError(f"half_axis must be -1 or -2, got {half_axis}")
    return (-2, -1) if half_axis == -1 else (-1, -2)


def _largest_prime_factor(n: int) -> int:
    n, factor, largest = int(n), 2, 1
    while factor * factor <= n:
        while n % factor == 0:
            largest, n = factor, n // factor
        factor += 1
    return max(largest, n)


def half_spectrum_axis(shape: Sequence[int]) -> int:
    """The axis (``-1`` or ``-2``) whose real-input FFT is halved for images of ``shape``.

    A 2-D real FFT is a real transform along one axis and complex ones along
    the other. pocketfft (scipy's CPU FFT) spends less when the length with the
    larger prime factor gets the complex transforms: at 481x321 (13x37 by
    3x107, the CBSD68 size) transforming the halves along the 481 axis
    instead of the 321 axis saves 15%, at 402x398 45% (measured with
    ``scipy.fft`` on float32, 3 channels). Ties keep the usual last axis.
    """
    return -2 if _largest_prime_factor(shape[-2]) < _largest_prime_factor(shape[-1]) else -1


def check_kernel(kernel: Any, what: str = "kernel") -> torch.Tensor:
    """Validate a blur kernel: a finite 2-D array whose sum is not zero."""
    k = _as_tensor(kernel, what)
    if k.ndim != 2:
        raise InputError(f"{what} must be a 2-D array (kh, kw), got shape {tuple(k.shape)}")
    if k.numel() == 0:
        raise InputError(f"{what} is empty")
    if not torch.isfinite(k).all():
        raise InputError(f"{what} contains NaN or Inf values")
    total = float(k.double().sum())
    if abs(total) < 1e-8:
        raise InputError(
            f"{what} sums to {total:.3g}: a blur kernel must have a non-zero sum (normally 1); "
            "normalise it with kernel / kernel.sum()"
        )
    return k


class Blur(Degradation):
    """Convolution with ``kernel`` (2-D, any size up to the image's).

    Parameters
    ----------
    kernel : array_like or torch.Tensor
        The point-spread function, shape ``(kh, kw)``; its centre is at
        ``(kh // 2, kw // 2)``. It is used as given (not renormalised), but
        must have a non-zero sum.
    boundary : {"circular", "reflect"}
        ``"circular"`` (default) is the exact periodic model computed with
        the FFT. ``"reflect"`` blurs as a camera would see mirrored content
        past the border.
    """

    def __init__(self, kernel: Any, boundary: str = "circular") -> None:
        if boundary not in BOUNDARIES:
            raise InputError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        self.kernel = check_kernel(kernel)
        self.boundary = boundary
        self._otf_cache: dict[tuple, torch.Tensor] = {}
        self._gain_cache: dict[tuple, torch.Tensor] = {}

    @property
    def tasks(self) -> frozenset[str]:
        return frozenset({"deblur"})

    @property
    def blur(self) -> "Blur":
        return self

    def describe(self) -> dict:
        return {"type": "Blur", "kernel_shape": list(self.kernel.shape), "boundary": self.boundary}

    def to(self, device: torch.device | str) -> "Blur":
        moved = Blur(self.kernel.to(device), self.boundary)
        return moved

    def _check_size(self, x: torch.Tensor) -> None:
        kh, kw = self.kernel.shape
        if kh > x.shape[-2] or kw > x.shape[-1]:
            raise InputError(
                f"the blur kernel ({kh}x{kw}) is larger than the image ({x.shape[-2]}x{x.shape[-1]}); "
                "use a smaller kernel or a larger image"
            )

    def otf(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """The cached OTF for images of ``shape`` on ``like``'s device and dtype."""
        real = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
        key = (int(shape[0]), int(shape[1]), like.device, real)
        if key not in self._otf_cache:
            self._otf_cache[key] = psf2otf(self.kernel.to(device=like.device, dtype=real), shape)
        return self._otf_cache[key]

    def _circular(self, x: torch.Tensor, conj: bool = False) -> torch.Tensor:
        otf = self.otf(x.shape[-2:], x)
        if conj:
            otf = otf.conj()
        spectrum = torch.fft.rfft2(x.to(otf.real.dtype))
        return torch.fft.irfft2(spectrum * otf, s=x.shape[-2:]).to(x.dtype)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        kh, kw = self.kernel.shape
        # The kernel centre is (kh // 2, kw // 2): output pixel i reads inputs i - kh // 2 .. i + (kh - 1 - kh // 2)
        # of the flipped kernel, so the image needs kh - 1 - kh // 2 rows above and kh // 2 below.
        pads = (kw - 1 - kw // 2, kw // 2, kh - 1 - kh // 2, kh // 2)  # left, right, top, bottom
        if max(pads) >= min(x.shape[-2:]):
            raise InputError(f"image {tuple(x.shape[-2:])} is too small for reflect padding by {max(pads)}")
        return F.pad(x, pads, mode="reflect"), pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_size(x)
        if self.boundary == "circular":
            return self._circular(x)
        padded, (left, right, top, bottom) = self._pad(x)
        blurred = self._circular(padded)
        return blurred[..., top : top + x.shape[-2], left : left + x.shape[-1]]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self._check_size(y)
        if self.boundary == "circular":
            return self._circular(y, conj=True)
        # The forward operator is linear: its vector-Jacobian product is the exact adjoint.
        x0 = torch.zeros_like(y, requires_grad=True)
        with torch.enable_grad():
            (out,) = torch.autograd.grad(self.forward(x0), x0, grad_outputs=y)
        return out

    def regularized_inverse(self, y: torch.Tensor, reg: float | torch.Tensor) -> torch.Tensor:
        """Closed-form ``argmin_x ||A x - y||^2 + reg ||x||^2`` (the Wiener filter).

        In the Fourier domain ``X = conj(H) Y / (|H|^2 + reg)``. ``reg`` is a
        scalar or a tensor broadcastable to ``(N, C, 1, 1)``. For
        ``boundary="circular"`` this is exact. Otherwise the image is first
        extended by mirroring about its edge pixels (to ``2H - 2`` by
        ``2W - 2``), which is periodic and continuous, so the FFT's
        wrap-around adds no edge that would ring. That mirror is the one
        :meth:`forward` pads with (``F.pad(mode="reflect")``, edge pixel not
        repeated), so for a kernel symmetric about its centre the result is
        the exact inverse of the ``"reflect"`` forward model too.
        """
        self._check_size(y)
        if self.boundary == "circular":
            return self._wiener(y, reg)
        h, w = y.shape[-2:]
        # Whole-sample symmetric extension, period (2h - 2, 2w - 2): y0 .. y[n-1], y[n-2] .. y1.
        mirrored = torch.cat([y, y[..., :, 1 : w - 1].flip(-1)], dim=-1)
        mirrored = torch.cat([mirrored, mirrored[..., 1 : h - 1, :].flip(-2)], dim=-2)
        return self._wiener(mirrored, reg)[..., :h, :w]

    def _wiener(self, y: torch.Tensor, reg: float | torch.Tensor) -> torch.Tensor:
        otf = self.otf(y.shape[-2:], y)
        cpu = y.device.type == "cpu" and not (y.requires_grad and torch.is_grad_enabled())
        if isinstance(reg, torch.Tensor):
            reg = reg.to(device=y.device, dtype=otf.real.dtype)
            gain = otf.conj() / (otf.abs().square() + reg)
            half_axis = -1  # a per-frequency reg comes on the rfft2 grid
        else:
            # One scalar regularisation: the filter is cached on the grid the CPU FFT is fastest on.
            half_axis = half_spectrum_axis(y.shape) if cpu else -1
            key = (tuple(y.shape[-2:]), y.device, otf.real.dtype, float(reg), half_axis)
            if key not in self._gain_cache:
                self._gain_cache.clear()  # one regularisation in use at a time is the common case
                grid_otf = otf if half_axis == -1 else psf2otf(
                    self.kernel.to(device=y.device, dtype=otf.real.dtype), y.shape[-2:], half_axis)
                self._gain_cache[key] = grid_otf.conj() / (grid_otf.abs().square() + reg)
            gain = self._gain_cache[key]
        if cpu:
            return _cpu_filter(y.to(otf.real.dtype), gain, half_axis).to(y.dtype)
        spectrum = torch.fft.rfft2(y.to(otf.real.dtype))
        return torch.fft.irfft2(spectrum * gain, s=y.shape[-2:]).to(y.dtype)


#: CPU FFT libraries the Wiener filter can use, fastest first.
CPU_FFT_BACKENDS = ("ducc0", "scipy")


def cpu_fft_backend() -> str:
    """The library the CPU Wiener filter transforms with: ``"ducc0"`` or ``"scipy"``.

    ``ducc0`` (the successor of pocketfft by its author; an optional
    dependency, GPL-2.0-or-later: ``pip install restorekit[fft]``) when it is
    installed, else scipy's pocketfft. ``ducc0`` is about 1.8x quicker at
    awkward sizes such as 481x321 (benchmarks/bench_wiener_speed.py). The
    environment variable ``RESTOREKIT_CPU_FFT=scipy|ducc0`` chooses one.
    """
    import os

    wanted = os.environ.get("RESTOREKIT_CPU_FFT", "").strip().lower()
    if wanted:
        if wanted not in CPU_FFT_BACKENDS:
            raise ParameterError(f"RESTOREKIT_CPU_FFT={wanted!r} is not one of {', '.join(CPU_FFT_BACKENDS)}; "
                                 "unset it to pick the fastest installed")
        if wanted == "ducc0" and not _has_ducc0():
            raise ParameterError("RESTOREKIT_CPU_FFT=ducc0 but ducc0 is not installed; "
                                 "pip install ducc0 (or restorekit[fft]), or unset the variable")
        return wanted
    return "ducc0" if _has_ducc0() else "scipy"


@functools.lru_cache(maxsize=1)
def _has_ducc0() -> bool:
    import importlib.util

    return importlib.util.find_spec("ducc0") is not None


def _cpu_filter(y: torch.Tensor, gain: torch.Tensor, half_axis: int = -1) -> torch.Tensor:
    """``irfft(rfft(y) * gain)`` over the last two axes of a CPU tensor, with :func:`cpu_fft_backend`.

    Both CPU libraries are 2-4x faster than torch's FFT at awkward sizes such
    as 481x321 (measured in benchmarks/bench_wiener_speed.py). ``gain`` lies
    on the half-spectrum grid of ``half_axis`` (see :func:`half_spectrum_axis`);
    the transforms use as many threads as torch is allowed
    (``torch.get_num_threads()``).
    """
    threads = max(1, torch.get_num_threads())
    array = y.numpy()
    if cpu_fft_backend() == "ducc0":
        import ducc0

        ndim = array.ndim
        axes = [ndim + a for a in _fft_axes(half_axis)]
        spectrum = ducc0.fft.r2c(array, axes=axes, nthreads=threads)
        spectrum *= gain.numpy()
        out = ducc0.fft.c2r(spectrum, axes=axes, lastsize=array.shape[axes[-1]], forward=False, inorm=2,
                            nthreads=threads, allow_overwriting_input=True)
        return torch.from_numpy(out)
    import scipy.fft

    axes = _fft_axes(half_axis)
    spectrum = scipy.fft.rfftn(array, axes=axes, workers=threads)
    spectrum *= gain.numpy()
    out = scipy.fft.irfftn(spectrum, s=[array.shape[a] for a in axes], axes=axes, overwrite_x=True, workers=threads)
    return torch.from_numpy(out)


# --------------------------------------------------------------------------- noise
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


# --------------------------------------------------------------------------- mask
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


# --------------------------------------------------------------------------- composition
class Compose(Degradation):
    """Degradations applied in order, e.g. ``Compose(Blur(k), Noise(0.01))``.

    The noise of every part is added at the end (``y = A x + n`` with ``A``
    the product of the linear parts); independent noises add in variance.
    """

    def __init__(self, *parts: Degradation | Iterable[Degradation]) -> None:
        flat: list[Degradation] = []
        for p in parts:
            items = list(p) if not isinstance(p, Degradation) else [p]
            for item in items:
                if not isinstance(item, Degradation):
                    raise InputError(f"Compose takes Degradation objects, got {type(item).__name__}")
                flat.extend(item.parts())
        self._parts = tuple(flat)

    def parts(self) -> tuple[Degradation, ...]:
        return self._parts

    def _first(self, kind: type) -> Any:
        return next((p for p in self._parts if isinstance(p, kind)), None)

    @property
    def kernel(self):  # type: ignore[override]
        b = self._first(Blur)
        return None if b is None else b.kernel

    @property
    def boundary(self):  # type: ignore[override]
        b = self._first(Blur)
        return "circular" if b is None else b.boundary

    @property
    def mask(self):  # type: ignore[override]
        m = self._first(Mask)
        return None if m is None else m.mask

    @property
    def blur(self):
        return self._first(Blur)

    @property
    def sigma(self) -> float:
        return math.sqrt(sum(p.sigma**2 for p in self._parts))

    @property
    def tasks(self) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for p in self._parts:
            out |= p.tasks
        return out

    def forward(self, x):
        for p in self._parts:
            x = p.forward(x)
        return x

    def adjoint(self, y):
        for p in reversed(self._parts):
            y = p.adjoint(y)
        return y

    def noise(self, shape, like, generator):
        total = None
        for p in self._parts:
            n = p.noise(shape, like, generator)
            if n is not None:
                total = n if total is None else total + n
        return total

    def to(self, device):
        return Compose(*(p.to(device) for p in self._parts))

    def describe(self) -> dict:
        return {"type": "Compose", "parts": [p.describe() for p in self._parts], "sigma": self.sigma}


__all__ = ["BOUNDARIES", "Blur", "Compose", "Degradation", "Identity", "Mask", "Noise", "check_kernel", "psf2otf"]
