"""Image quality metrics: PSNR and SSIM, computed by scikit-image.

Both take the estimate first and the clean reference second, as tensors or
numpy arrays laid out like restorekit's images:

* ``(N, C, H, W)``: a batch; the metric is computed per image and averaged,
* ``(C, H, W)``: one image (C <= 4 channels),
* ``(H, W)``: one gray image.

Channel-last arrays from other libraries need ``np.moveaxis(a, -1, 0)``
first. Values are used as given (an unclipped noisy estimate is measured as
it is); ``data_range`` is the span of valid values, 1.0 for images in [0, 1].

SSIM follows Wang et al. (2004) as MATLAB's ``ssim`` does: an 11x11 Gaussian
window with sigma 1.5, population covariances, ``K1 = 0.01``,
``K2 = 0.03``; colour images are averaged over their channels.

Examples
--------
>>> import torch
>>> from restorekit.metrics import psnr, ssim
>>> ref = torch.full((1, 1, 16, 16), 0.5)
>>> round(psnr(ref + 0.01, ref), 2)
40.0
>>> ssim(ref, ref)
1.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InputError


def _as_batch(value: Any, what: str) -> np.ndarray:
    """Any supported layout -> float64 numpy array (N, C, H, W)."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the {what} must be a numeric tensor or array, got {type(value).__name__}: {exc}") from None
    if array.ndim == 2:
        array = array[None, None]
    elif array.ndim == 3:
        if array.shape[0] > 4:
            raise InputError(
                f"the {what} of shape {array.shape} is read as (C, H, W) but has {array.shape[0]} channels; "
                "for a channel-last (H, W, C) array use np.moveaxis(a, -1, 0)"
            )
        array = array[None]
    elif array.ndim != 4:
        raise InputError(
            f"the {what} must have shape (N, C, H, W), (C, H, W) or (H, W), got {array.shape}"
        )
    if array.size == 0:
        raise InputError(f"the {what} is empty (shape {array.shape})")
    if not np.isfinite(array).all():
        raise InputError(f"the {what} contains NaN or Inf values; metrics need finite values")
    return array


def _pair(x: Any, reference: Any, data_range: float) -> tuple[np.ndarray, np.ndarray, float]:
    a = _as_batch(x, "estimate")
    b = _as_batch(reference, "reference")
    if a.shape != b.shape:
        raise InputError(
            f"the estimate has shape {a.shape} but the reference has shape {b.shape}; "
            "compare images of the same size and channels (crop or resize one of them)"
        )
    try:
        rng = float(data_range)
    except (TypeError, ValueError):
        raise InputError(f"data_range must be a positive number, got {data_range!r}") from None
    if not math.isfinite(rng) or rng <= 0:
        raise InputError(f"data_range must be a positive number (1.0 for images in [0, 1]), got {data_range!r}")
    return a, b, rng


def psnr(x: Any, reference: Any, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, averaged over a batch.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        The estimate, ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)``.
    reference : torch.Tensor or numpy.ndarray
        The clean image, same shape.
    data_range : float
        Span of valid values (1.0 for [0, 1] images).

    Returns
    -------
    float
        ``10 log10(data_range^2 / MSE)`` per image (all channels together),
        averaged over the batch; ``inf`` when an image matches exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from restorekit.metrics import psnr
    >>> round(psnr(np.full((8, 8), 0.1), np.zeros((8, 8))), 2)
    20.0
    """
    from skimage.metrics import peak_signal_noise_ratio

    a, b, rng = _pair(x, reference, data_range)
    values = []
    for est, ref in zip(a, b):
        if np.array_equal(est, ref):
            values.append(math.inf)
            continue
        values.append(float(peak_signal_noise_ratio(ref, est, data_range=rng)))
    return float(np.mean(values))


def ssim(x: Any, reference: Any, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004), averaged over a batch.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        The estimate, ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)``; at least
        11x11 pixels (the Gaussian window's size).
    reference : torch.Tensor or numpy.ndarray
        The clean image, same shape.
    data_range : float
        Span of valid values (1.0 for [0, 1] images).

    Returns
    -------
    float
        Mean SSIM in [-1, 1] (1: identical), over pixels and channels, then
        averaged over the batch.

    Examples
    --------
    >>> import torch
    >>> from restorekit.metrics import ssim
    >>> x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> ssim(x, x)
    1.0
    """
    from skimage.metrics import structural_similarity

    a, b, rng = _pair(x, reference, data_range)
    h, w = a.shape[-2:]
    if min(h, w) < 11:
        raise InputError(f"SSIM needs images of at least 11x11 pixels (its Gaussian window), got {h}x{w}")
    values = []
    for est, ref in zip(a, b):
        kwargs = dict(data_range=rng, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        if est.shape[0] == 1:
            values.append(float(structural_similarity(ref[0], est[0], **kwargs)))
        else:
            values.append(float(structural_similarity(ref, est, channel_axis=0, **kwargs)))
    return float(np.mean(values))


__all__ = ["psnr", "ssim"]
