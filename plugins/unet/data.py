"""Training pairs for the UNet deblurrers: clean crops, then blur, noise and (optionally) Wiener.

Every input is made from a clean crop the way the benchmark makes its
inputs: a circular blur by the course kernel (:class:`restorekit.degrade.Blur`)
and white Gaussian noise with a sigma drawn uniformly from ``sigma_range``
per crop ([0, 1] scale). For the Wiener variant the input is then the Wiener
estimate ``conj(H) Y / (|H|^2 + 1/snr)`` of that noisy blurred crop, the
first step of the ``wiener+unet`` pipeline. Inputs are clipped to [0, 1],
as the restorers clip what they are given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from restorekit.degrade import Blur
from restorekit.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The benchmark data folder: ``explicit``, ``$RESTOREKIT_DATA`` or ``../shared/data`` beside the repo."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("RESTOREKIT_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def course_kernel() -> torch.Tensor:
    """The course's 7x7 MNIST-digit kernel, shipped with restorekit (float64, sums to 1)."""
    try:
        from restorekit.kernels import load_kernel
    except ImportError:  # restorekit.kernels not installed yet: build it as that module defines it
        return mnist_digit0_kernel(data_root() / "MNIST")
    return torch.as_tensor(load_kernel("course"), dtype=torch.float64)


def mnist_digit0_kernel(mnist_root: str | os.PathLike, size: int = 7) -> torch.Tensor:
    """The course kernel from an MNIST root: the first train digit 0, nearest-resized, sum 1."""
    import torch.nn.functional as F
    from torchvision.datasets import MNIST

    ds = MNIST(str(Path(mnist_root).parent), train=True, download=False)
    index = int((ds.targets == 0).nonzero()[0])
    digit = ds.data[index].double()[None, None]
    k = F.interpolate(digit, size=(size, size), mode="nearest")[0, 0]
    return k / k.sum()


def load_folder(folder: str | os.PathLike, limit: int | None = None) -> list[torch.Tensor]:
    """Read every image of ``folder`` (sorted) as a ``uint8`` tensor ``(3, H, W)``.

    Grayscale images are repeated to three channels. Raises
    :class:`InputError` for a missing folder, a folder without images or an
    unreadable file, naming it.
    """
    from skimage import io as skio

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"training folder {folder} does not exist; pass --data with a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(
            f"training folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
            "point --data at a folder of photographs such as CBSD432"
        )
    if limit:
        files = files[:limit]
    images = []
    for path in files:
        try:
            arr = np.asarray(skio.imread(path))
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the file's fault
            raise InputError(f"cannot read training image {path}: {exc}; remove or replace the file") from None
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] < 3 or arr.dtype != np.uint8:
            raise InputError(
                f"training image {path} has shape {arr.shape} and type {arr.dtype}; "
                "expected an 8-bit grayscale or RGB image"
            )
        images.append(torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1).contiguous())
    return images


def random_crops(images: Sequence[torch.Tensor], n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random ``size`` x ``size`` crops with random flips, float in [0, 1], shape ``(n, 3, size, size)``."""
    out = torch.empty(n, 3, size, size)
    picks = torch.randint(len(images), (n,), generator=gen)
    for i, k in enumerate(picks.tolist()):
        img = images[k]
        h, w = img.shape[-2:]
        if h < size or w < size:
            raise InputError(f"training image {k} is {h}x{w}, smaller than the {size}x{size} crop; use --patch {min(h, w)}")
        top = int(torch.randint(h - size + 1, (1,), generator=gen))
        left = int(torch.randint(w - size + 1, (1,), generator=gen))
        crop = img[:, top : top + size, left : left + size].float() / 255.0
        if torch.rand((), generator=gen) < 0.5:
            crop = crop.flip(-1)
        if torch.rand((), generator=gen) < 0.5:
            crop = crop.flip(-2)
        out[i] = crop
    return out


def center_crops(images: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` crop of each image, float in [0, 1]."""
    crops = []
    for img in images:
        h, w = img.shape[-2:]
        s = min(size, h, w)
        top, left = (h - s) // 2, (w - s) // 2
        crops.append(img[:, top : top + s, left : left + s].float() / 255.0)
    return torch.stack(crops)


class DeblurInputs:
    """Make network inputs from clean crops: blur, noise, optionally Wiener, clip.

    Parameters
    ----------
    kernel : torch.Tensor
        The blur kernel (the course kernel for the shipped models).
    sigma_range : (float, float)
        Noise sigma drawn uniformly per crop in this range ([0, 1] scale).
    wiener_snr : float, optional
        When given, the input is the Wiener estimate with ``reg = 1 / snr``.
    """

    def __init__(self, kernel: torch.Tensor, sigma_range: tuple[float, float], wiener_snr: float | None = None) -> None:
        self.blur = Blur(kernel)
        self.sigma_range = (float(sigma_range[0]), float(sigma_range[1]))
        self.wiener_snr = wiener_snr

    def __call__(self, clean: torch.Tensor, gen: torch.Generator, sigma: float | None = None) -> torch.Tensor:
        n = clean.shape[0]
        if sigma is None:
            lo, hi = self.sigma_range
            sigmas = lo + (hi - lo) * torch.rand(n, 1, 1, 1, generator=gen)
        else:
            sigmas = torch.full((n, 1, 1, 1), float(sigma))
        y = self.blur.forward(clean) + sigmas * torch.randn(clean.shape, generator=gen)
        if self.wiener_snr is not None:
            y = self.blur.regularized_inverse(y, 1.0 / self.wiener_snr)
        return y.clamp(0.0, 1.0)
