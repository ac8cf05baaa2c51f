"""FFT helpers for the blur operators: the OTF of a kernel and the fast CPU filter.

:func:`psf2otf` turns a kernel into its transfer function on an image grid;
:func:`half_spectrum_axis` and :func:`cpu_fft_backend` choose how a real 2-D
FFT is laid out and which CPU library computes it (the Wiener filter's fast
path, :func:`_cpu_filter`).
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch

from ..errors import ParameterError


def psf2otf(kernel: torch.Tensor, shape: Sequence[int], half_axis: int = -1) -> torch.Tensor:
    """Optical transfer function of ``kernel`` for images of ``shape`` (H, W).

    The kernel is zero-padded to ``shape`` and circularly shifted so that its
    centre (index ``k // 2`` in each axis) sits at the origin, then
    transformed with a real FFT whose half spectrum lies along ``half_axis``:
    with the default ``-1`` that is ``rfft2`` and the result has shape
    ``(H, W // 2 + 1)``; with ``-2`` it has shape ``(H // 2 + 1, W)``.
    """
    return torch.fft.rfftn(_centred_at_origin(kernel, shape), dim=_fft_axes(half_axis))


def psf2otf_full(kernel: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """:func:`psf2otf` on the full (complex, ``H x W``) spectrum grid of ``torch.fft.fft2``.

    The super-resolution data step folds the spectrum into ``s x s`` blocks,
    which needs every frequency, not the half a real FFT keeps.
    """
    return torch.fft.fft2(_centred_at_origin(kernel, shape))


def _centred_at_origin(kernel: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``kernel`` zero-padded to ``shape`` and rolled so its centre ``(kh // 2, kw // 2)`` is pixel (0, 0)."""
    h, w = int(shape[0]), int(shape[1])
    kh, kw = kernel.shape[-2:]
    padded = kernel.new_zeros(h, w)
    padded[:kh, :kw] = kernel
    return torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))


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


__all__ = ["CPU_FFT_BACKENDS", "cpu_fft_backend", "half_spectrum_axis", "psf2otf", "psf2otf_full"]
