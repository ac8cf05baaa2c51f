"""CBM3D from Python: the checked wrapper of ``torch.ops.restorekit.bm3d`` and its fake kernel.

The op (C++ in ``csrc/bm3d_cpu.cpp``, CUDA in ``csrc/cuda/bm3d_cuda.cu``, profile in
``csrc/bm3d_common.h``) denoises a batch ``(N, C, H, W)`` of gray (C = 1, BM3D) or RGB (C = 3,
CBM3D: opponent colour space, blocks matched on the luminance) images with additive white Gaussian
noise of a known standard deviation, following Dabov et al. 2007 (both stages: hard thresholding
then empirical Wiener filtering) with the per-coefficient noise variances of overlapping blocks of
Makinen, Azzari and Foi 2020 (the profile: ``csrc/bm3d_common.h`` and the ``cbm3d`` plugin's
docstring). It is forward only: no gradient flows through it.

:func:`cbm3d` checks its input and raises :class:`restorekit.errors.InputError` (one line naming
the problem and the fix) for what the op would refuse or mis-handle: a size under
:data:`MIN_SIZE`, a channel count other than 1 or 3, non-finite values, a bad sigma.

Loading: :func:`restorekit.nn.extension.load` imports ``restorekit._C`` (which defines the op) and
then calls :func:`register_fake` here, so ``torch.compile`` and ``torch.library.opcheck`` see the
op's shapes. An extension built before the op existed leaves it undefined; :func:`available` says so.

Examples
--------
>>> import torch
>>> from restorekit.nn import bm3d_ops
>>> if bm3d_ops.available():
...     y = bm3d_ops.cbm3d(torch.rand(1, 3, 32, 32), 0.1)
...     assert y.shape == (1, 3, 32, 32)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..checks import check_sigma
from ..errors import ExtensionMissingError, InputError

__all__ = ["MIN_SIZE", "SEARCH_WINDOW", "STEP", "available", "cbm3d", "register_fake"]

#: The smallest height and width: the block side (8x8 blocks).
MIN_SIZE = 8
#: Default side of the block-matching search window (the paper's 39).
SEARCH_WINDOW = 39
#: Default step between reference blocks (the paper's 3).
STEP = 3

_fake_registered = False


def _op_defined() -> bool:
    try:
        torch.ops.restorekit.bm3d.default
    except (AttributeError, RuntimeError):
        return False
    return True


def register_fake() -> bool:
    """Register the op's fake (meta) kernel once; False when the loaded extension has no ``bm3d`` op."""
    global _fake_registered
    if _fake_registered:
        return True
    if not _op_defined():
        return False

    @torch.library.register_fake("restorekit::bm3d")
    def _bm3d_fake(x, sigma, window=SEARCH_WINDOW, step=STEP, wiener=True):
        args = f"x: {list(x.shape)} {str(x.dtype).replace('torch.', '')} {x.device}"
        torch._check(x.dtype in (torch.float32, torch.float64),
                     lambda: f"restorekit::bm3d: dtype must be float32 or float64; got {args}")
        torch._check(x.dim() == 4, lambda: f"restorekit::bm3d: x must be 4-D (N, C, H, W); got {args}")
        torch._check(x.shape[1] in (1, 3), lambda: f"restorekit::bm3d: x must have 1 or 3 channels; got {args}")
        torch._check(x.shape[2] >= MIN_SIZE and x.shape[3] >= MIN_SIZE,
                     lambda: f"restorekit::bm3d: height and width must be at least {MIN_SIZE}; got {args}")
        torch._check(math.isfinite(sigma) and sigma >= 0, lambda: f"restorekit::bm3d: bad sigma {sigma}")
        torch._check(window >= 1 and window % 2 == 1, lambda: f"restorekit::bm3d: window must be odd; got {window}")
        torch._check(1 <= step <= MIN_SIZE, lambda: f"restorekit::bm3d: step must be in [1, 8]; got {step}")
        return torch.empty_like(x, memory_format=torch.contiguous_format)

    _fake_registered = True
    return True


def available() -> bool:
    """Whether the compiled ``bm3d`` op can be used (extension built, with this op)."""
    from . import extension

    return extension.available() and _op_defined()


def _load() -> None:
    from . import extension

    extension.load()
    if not _op_defined():
        raise ExtensionMissingError(
            f"the compiled extension restorekit._C was built before the bm3d op existed. {extension.BUILD_HINT}")


def check_input(x: Any, sigma: Any, who: str = "cbm3d") -> float:
    """Refuse what :func:`cbm3d` cannot denoise, with one :class:`InputError`; returns sigma as a float.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, H, W)`` float images, C 1 or 3, H and W at least :data:`MIN_SIZE`.
    sigma : float
        Noise standard deviation on the [0, 1] scale (finite, >= 0, at most 1).
    who : str
        The name used in the messages.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{who!r} takes a torch.Tensor (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise InputError(f"{who!r} takes a batch of shape (N, C, H, W), got shape {tuple(x.shape)}; "
                         "add the missing dimensions with x[None] or x[None, None]")
    if x.shape[1] not in (1, 3):
        raise InputError(f"{who!r} denoises gray (1 channel) or RGB (3 channel) images, got {x.shape[1]} "
                         "channels; drop an alpha channel with x[:, :3]")
    if x.shape[2] < MIN_SIZE or x.shape[3] < MIN_SIZE:
        raise InputError(f"{who!r} needs an image of at least {MIN_SIZE}x{MIN_SIZE} pixels (its 8x8 blocks), "
                         f"got {x.shape[2]}x{x.shape[3]}; use a larger image or another denoiser")
    if not x.is_floating_point():
        raise InputError(f"{who!r} takes float images on the [0, 1] scale, got dtype {x.dtype}; "
                         "convert with x.float() / 255")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise InputError(f"{who!r}: the image has NaN or infinite values; replace them first "
                         "(torch.nan_to_num) or fix what produced them")
    if isinstance(sigma, bool):
        raise InputError(f"{who!r}: sigma must be a number on the [0, 1] scale, got {sigma!r}")
    return check_sigma(sigma, f"{who!r}: sigma")


def cbm3d(x: torch.Tensor, sigma: float, *, window: int = SEARCH_WINDOW, step: int = STEP,
          wiener: bool = True) -> torch.Tensor:
    """Denoise ``x`` with (C)BM3D given the noise standard deviation ``sigma``.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, H, W)``, C = 1 (BM3D) or 3 (RGB: CBM3D), H and W >= 8, float32 or float64, on
        the CPU (or a GPU when the CUDA kernels are built), values on the [0, 1] scale.
    sigma : float
        Standard deviation of the additive white Gaussian noise on the [0, 1] scale (25/255 =
        0.098); one value for the whole batch. 0 returns a copy of ``x``.
    window : int
        Side of the square search window of block matching (odd; the paper's 39).
    step : int
        Distance between reference blocks (1-8; the paper's 3). Smaller: slower, a little better.
    wiener : bool
        Run the second (Wiener) stage; False returns the hard-thresholding ("basic") estimate.

    Returns
    -------
    torch.Tensor
        The estimate, shape and dtype of ``x`` (not clipped).

    Raises
    ------
    InputError
        For a bad shape, size, dtype, non-finite values or a bad sigma (see :func:`check_input`).
    ExtensionMissingError
        When the compiled extension (with the ``bm3d`` op) is not built.
    """
    value = check_input(x, sigma)
    _load()
    return torch.ops.restorekit.bm3d.default(x.detach(), value, int(window), int(step), bool(wiener))


register_fake()  # when torch imports this module for the op's fake kernel (set_python_module)
