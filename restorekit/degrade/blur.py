"""Blur: convolution with a kernel, circular (FFT, exact) or with a mirrored border.

See the package docstring of :mod:`restorekit.degrade` for the conventions
(a true convolution, the kernel's centre at ``(kh // 2, kw // 2)``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..errors import InputError
from .base import BOUNDARIES, Degradation, _as_tensor
from .fft import _cpu_filter, half_spectrum_axis, psf2otf

#: A kernel whose sum is smaller than this in magnitude is refused: dividing by it would not normalise it.
MIN_KERNEL_SUM = 1e-8


def check_kernel(kernel: Any, what: str = "kernel") -> torch.Tensor:
    """Validate a blur kernel: a finite, non-empty 2-D array whose sum is at least ``MIN_KERNEL_SUM`` in magnitude."""
    k = _as_tensor(kernel, what)
    if k.ndim != 2:
        raise InputError(f"{what} must be a 2-D array (kh, kw), got shape {tuple(k.shape)}")
    if k.numel() == 0:
        raise InputError(f"{what} is empty")
    if not torch.isfinite(k).all():
        raise InputError(f"{what} contains NaN or Inf values")
    total = float(k.double().sum())
    if abs(total) < MIN_KERNEL_SUM:
        raise InputError(
            f"{what} sums to {total:.3g}, too close to zero to normalise (a blur kernel sums to 1, and "
            f"|sum| must be at least {MIN_KERNEL_SUM:g}); check its values: weights that are all near zero "
            "or cancel out do not describe a blur"
        )
    return k


def kernel_sha256(kernel: Any) -> str:
    """SHA-256 of a blur kernel's values as float64 in C order (what a sidecar's ``trained_for.kernel_sha256`` records).

    Examples
    --------
    >>> kernel_sha256(torch.ones(3, 3) / 9)[:12]
    'f8dfb5a8217f'
    """
    import hashlib

    import numpy as np

    array = torch.as_tensor(kernel).detach().to("cpu", torch.float64).contiguous().numpy()
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


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

    def _pads(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        """``(left, right, top, bottom)`` reflect padding for ``x``, checked against its size."""
        kh, kw = self.kernel.shape
        # The kernel centre is (kh // 2, kw // 2): output pixel i reads inputs i - kh // 2 .. i + (kh - 1 - kh // 2)
        # of the flipped kernel, so the image needs kh - 1 - kh // 2 rows above and kh // 2 below.
        pads = (kw - 1 - kw // 2, kw // 2, kh - 1 - kh // 2, kh // 2)  # left, right, top, bottom
        if max(pads) >= min(x.shape[-2:]):
            raise InputError(f"image {tuple(x.shape[-2:])} is too small for reflect padding by {max(pads)}")
        return pads

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        pads = self._pads(x)
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
        # forward = crop . circular blur . reflect pad, so the adjoint is pad^T . circular^T . crop^T:
        # embed y in zeros, blur with the conjugate OTF, and fold the mirrored border back with torch's
        # own reflect-pad backward (2x quicker than autograd through forward, which builds a graph).
        left, right, top, bottom = self._pads(y)
        h, w = y.shape[-2:]
        embedded = y.new_zeros(*y.shape[:-2], h + top + bottom, w + left + right)
        embedded[..., top : top + h, left : left + w] = y
        back = self._circular(embedded, conj=True)
        return torch.ops.aten.reflection_pad2d_backward(back, y, [left, right, top, bottom])

    def _prox(self, y, z, rho, iterations, tol):
        if self.boundary != "circular":
            return self._prox_cg(y, z, rho, iterations, tol)
        # (A^T A + rho I) x = A^T y + rho z is diagonal in the Fourier domain.
        self._check_size(z)
        otf = self.otf(z.shape[-2:], z)
        real = otf.real.dtype
        weight = rho.to(real)
        numerator = otf.conj() * torch.fft.rfft2(y.to(real)) + weight * torch.fft.rfft2(z.to(real))
        x = torch.fft.irfft2(numerator / (otf.abs().square() + weight), s=z.shape[-2:])
        return x.to(z.dtype)

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



__all__ = ["MIN_KERNEL_SUM", "Blur", "check_kernel", "kernel_sha256"]
