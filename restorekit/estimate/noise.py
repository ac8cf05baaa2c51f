"""Gaussian noise level of an image from the image alone (Chen, Zhu and Heng, ICCV 2015).

:func:`estimate_noise` returns the standard deviation of additive white
Gaussian noise in an image, on the [0, 1] scale. The method is the
statistical one of G. Chen, F. Zhu and P. A. Heng, "An Efficient Statistical
Method for Image Noise Level Estimation", ICCV 2015: the patches of a noisy
image span a low-dimensional subspace (the image's structure) plus noise in
every direction, so the eigenvalues of the patch covariance that belong to
noise alone share one value, sigma^2. Sorting the eigenvalues, the largest
set of the smallest ones whose mean equals their median (noise eigenvalues are
distributed symmetrically around sigma^2; structure adds eigenvalues far above
it) is taken as the noise's, and their mean is the estimate. Texture moves
energy into the few large eigenvalues, which the test leaves out, so the
estimate is far less biased by texture than the wavelet median estimate
(:func:`skimage.restoration.estimate_sigma`), which reads fine texture as
noise (``benchmarks/RESULTS.md`` compares the two on CBSD68).

Colour images are estimated from patches of all channels at once (noise of
one sigma in every channel, as :class:`restorekit.degrade.Noise` makes it);
``per_channel=True`` estimates each channel on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Side of the square patches.
PATCH = 7
#: At most this many patches enter the covariance (a regular subsample beyond it).
MAX_PATCHES = 60000


@dataclass(frozen=True)
class NoiseEstimate:
    """What :func:`estimate_noise` found.

    Attributes
    ----------
    sigma : float
        The noise standard deviation ([0, 1] scale) of the image (the mean over images of a batch).
    sigmas : tuple of float
        One estimate per image of the batch.
    per_channel : tuple of tuple of float, or None
        One estimate per image and channel when ``per_channel=True``.
    model : str
        ``"gaussian"``.
    method : str
        The method's name and reference.
    """

    sigma: float
    sigmas: tuple[float, ...]
    per_channel: tuple[tuple[float, ...], ...] | None = None
    model: str = "gaussian"
    method: str = field(default="PCA of patches (Chen, Zhu, Heng, ICCV 2015)")

    def describe(self) -> str:
        """One line for the CLI, e.g. ``noise estimated: sigma 0.0312 (PCA of patches, Chen 2015)``."""
        return f"noise estimated: sigma {self.sigma:.4f} ({self.method})"


def _patch_matrix(channels: Any, patch: int) -> Any:
    """(n, patch * patch * C) matrix of the overlapping patches of a (C, H, W) float64 array, subsampled."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    c, h, w = channels.shape
    windows = sliding_window_view(channels, (c, patch, patch))[0]  # (H-p+1, W-p+1, C, p, p)
    ny, nx = windows.shape[:2]
    step = 1
    while (ny // step) * (nx // step) > MAX_PATCHES:
        step += 1
    picked = windows[::step, ::step]
    return np.ascontiguousarray(picked.reshape(-1, c * patch * patch))


def _sigma_from_patches(matrix: Any) -> float:
    """Chen et al.'s estimate from a patch matrix (rows: patches)."""
    import numpy as np

    centred = matrix - matrix.mean(axis=0, keepdims=True)
    cov = centred.T @ centred / max(1, centred.shape[0] - 1)
    eig = np.sort(np.clip(np.linalg.eigvalsh(cov), 0, None))
    for count in range(eig.size, 0, -1):
        tail = eig[:count]
        tau = tail.mean()
        if np.sum(tail > tau) == np.sum(tail < tau):
            return float(np.sqrt(tau))
    return float(np.sqrt(eig[0]))


def estimate_noise(image: Any, per_channel: bool = False, patch: int = PATCH) -> NoiseEstimate:
    """Estimate the standard deviation of additive white Gaussian noise in ``image``.

    Parameters
    ----------
    image : torch.Tensor or numpy.ndarray
        ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` values on the [0, 1] scale.
    per_channel : bool
        Also estimate each channel on its own (``NoiseEstimate.per_channel``).
    patch : int
        Patch side (at least 3, at most a third of the smaller image side).

    Returns
    -------
    NoiseEstimate
        ``sigma`` on the [0, 1] scale (25/255 = 0.098), the mean over a batch; ``sigmas`` per image.

    Raises
    ------
    restorekit.errors.InputError
        For an image too small for the patches, non-finite values, or values on the 0-255 scale.

    Examples
    --------
    >>> import torch
    >>> from restorekit.degrade import Noise
    >>> from skimage import data
    >>> x = torch.from_numpy(data.camera()[:256, :256] / 255.0)[None, None].float()
    >>> y = Noise(0.05).apply(x, seed=0)
    >>> round(estimate_noise(y).sigma, 2)
    0.05
    """
    import numpy as np

    from ..errors import InputError

    array = image.detach().to("cpu").double().numpy() if hasattr(image, "detach") else np.asarray(image, float)
    if array.ndim == 2:
        array = array[None, None]
    elif array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise InputError(f"estimate_noise needs an image (H, W), (C, H, W) or (N, C, H, W); got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError("estimate_noise: the image has NaN or infinite values; replace them first")
    if float(np.abs(array).max(initial=0.0)) > 3:
        raise InputError("estimate_noise: values beyond 3 look like the 0-255 scale; pass image / 255")
    patch = int(patch)
    if patch < 3 or min(array.shape[-2:]) < 3 * patch:
        raise InputError(f"estimate_noise needs an image of at least {3 * max(patch, 3)} pixels on a side for "
                         f"{max(patch, 3)}x{max(patch, 3)} patches; got {array.shape[-2]}x{array.shape[-1]}")
    sigmas, channels = [], []
    for item in array:
        sigmas.append(_sigma_from_patches(_patch_matrix(item, patch)))
        if per_channel:
            channels.append(tuple(_sigma_from_patches(_patch_matrix(item[c:c + 1], patch))
                                  for c in range(item.shape[0])))
    return NoiseEstimate(sigma=float(np.mean(sigmas)), sigmas=tuple(sigmas),
                         per_channel=tuple(channels) if per_channel else None)


__all__ = ["NoiseEstimate", "estimate_noise"]
