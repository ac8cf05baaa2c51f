"""Training data: image folders, patches, crops, MNIST: the clean samples a sampler degrades.

The pieces compose into a dataset of clean samples that
:func:`restorekit.training.fit` degrades batch by batch with a
:class:`restorekit.degrade.DegradationSampler` (the operators and noise of
restoration, one noise level per sample; no noise is made here):

1. **clean images**: :func:`load_images` reads any folder of images (PNG,
   JPEG, TIFF, .npy), or the BSDS300 layout ``folder/images/{train,test}``
   with ``split=``; :func:`mnist_images` reads MNIST from a torchvision root
   (never downloading). ``grayscale=True`` converts colour to luma.
2. **clean samples**: :class:`Patches` cuts every image into non-overlapping
   ``size x size`` patches (the course's extraction, 32x32 by default);
   :class:`RandomCrops` draws random crops with random flips and 90-degree
   rotations instead.
3. **samples**: :class:`CleanSamples` draws them afresh every epoch;
   :class:`GrayAsColour` repeats gray samples into three channels (the
   sampler gives them gray noise) and :class:`ConcatPairs` chains datasets;
   :func:`fixed_pairs` draws validation triples ``(degraded, degradation,
   clean)`` once, with a sampler.

A sample's randomness (crop, flips) is drawn from a generator seeded by
``(seed, epoch, index)``, so a sample is the same whichever process or worker
draws it and in whatever order: runs are reproducible, resumable mid-epoch,
and identical in one process or under DDP. Sigma is on the [0, 1] scale
everywhere (25/255 = 0.098).

Examples
--------
>>> import torch
>>> from restorekit.degrade import DegradationSampler
>>> from restorekit.training.datasets import CleanSamples, Patches, fixed_pairs
>>> images = [torch.rand(3, 64, 96)]
>>> samples = CleanSamples(Patches(images, size=32), seed=0)
>>> len(samples), samples[0].shape
(6, torch.Size([3, 32, 32]))
>>> degraded, degradation, clean = fixed_pairs(images, DegradationSampler(sigma=0.1), crop=32)[0]
>>> degraded.shape, degradation.sigma
(torch.Size([1, 3, 32, 32]), 0.1)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from ..errors import InputError

#: Luma weights of :func:`skimage.color.rgb2gray` (ITU-R BT.709).
LUMA = (0.2125, 0.7154, 0.0721)


# --------------------------------------------------------------------------- files
def image_files(folder: str | os.PathLike, split: str | None = None) -> list[Path]:
    """The image files of ``folder`` (sorted), or of its BSDS300 split.

    Parameters
    ----------
    folder : str or path-like
        A folder of images, or a BSDS300-style root holding ``images/train``
        and ``images/test``.
    split : {"train", "test"}, optional
        With a BSDS300 root, which split to read. Without it, a BSDS300 root
        reads ``images/train``.

    Raises
    ------
    InputError
        If the folder does not exist or holds no images.
    """
    from ..imageio import IMAGE_SUFFIXES, list_images

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"training folder {root} does not exist; pass --data with a folder of images")
    bsds = root / "images"
    if split is not None or (bsds / "train").is_dir():
        chosen = bsds / (split or "train")
        if not chosen.is_dir():
            raise InputError(f"{root} has no {chosen.relative_to(root)} folder; for the BSDS300 layout "
                             "pass its root (holding images/train and images/test), or drop the split")
        root = chosen
    files = list_images(root)
    if not files:
        raise InputError(f"training folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                         "point --data at a folder of images")
    return files


def to_grayscale(image: torch.Tensor) -> torch.Tensor:
    """Luma of a ``(..., 3, H, W)`` image (scikit-image's ``rgb2gray`` weights); gray passes through."""
    if image.shape[-3] == 1:
        return image
    if image.shape[-3] != 3:
        raise InputError(f"cannot convert {image.shape[-3]} channels to gray; expected 1 or 3")
    w = torch.tensor(LUMA, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * w).sum(dim=-3, keepdim=True)


def load_images(folder: str | os.PathLike, split: str | None = None, grayscale: bool = False,
                limit: int | None = None, progress: bool = False) -> list[torch.Tensor]:
    """Read the images of a folder as ``(C, H, W)`` float tensors in [0, 1].

    Parameters
    ----------
    folder, split
        See :func:`image_files`.
    grayscale : bool
        Convert colour images to luma (one channel).
    limit : int, optional
        Read only the first ``limit`` files (sorted by name).
    progress : bool
        Show a tqdm bar.

    Raises
    ------
    InputError
        For an empty folder, an unreadable file (named), or images whose
        channel counts differ (without ``grayscale``).
    """
    from tqdm.auto import tqdm

    from ..imageio import read_image

    files = image_files(folder, split)
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be at least 1, got {limit}")
        files = files[:limit]
    images = []
    for path in tqdm(files, desc=f"reading {Path(folder).name}", disable=not progress, leave=False):
        try:
            img = read_image(path).tensor[0]
        except InputError as exc:
            raise InputError(f"cannot read training image {path}: {exc}; remove or replace the file") from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
            raise InputError(f"cannot read training image {path} ({type(exc).__name__}: {exc}); "
                             "remove or replace the file") from None
        images.append(to_grayscale(img) if grayscale else img)
    channels = sorted({int(im.shape[0]) for im in images})
    if len(channels) > 1:
        raise InputError(f"the images of {folder} mix {channels} channels; pass grayscale=True (--gray) "
                         "or keep one kind of image in the folder")
    return images


def mnist_images(root: str | os.PathLike, train: bool = True, limit: int | None = None) -> torch.Tensor:
    """MNIST digits from a torchvision root as a ``(N, 1, 28, 28)`` float tensor in [0, 1].

    ``root`` holds ``MNIST/raw`` (the IDX files); nothing is downloaded.
    """
    try:
        from torchvision.datasets import MNIST

        data = MNIST(root=str(root), train=train, download=False).data
    except Exception as exc:  # noqa: BLE001 - torchvision raises RuntimeError for missing files
        raise InputError(f"cannot read MNIST from {root} ({exc}); pass the folder that holds MNIST/raw "
                         "(e.g. ../shared/data)") from None
    images = data[:, None].float() / 255.0
    return images[:limit] if limit is not None else images


# --------------------------------------------------------------------------- samples
def extract_patches(images: Sequence[torch.Tensor], size: int = 32, stride: int | None = None) -> torch.Tensor:
    """Cut every ``(C, H, W)`` image into ``size x size`` patches, ``stride`` apart (default: no overlap).

    Returns a ``(P, C, size, size)`` tensor; the image borders that do not fill
    a whole patch are left out (the course's extraction).
    """
    stride = stride or size
    if size < 1 or stride < 1:
        raise InputError(f"patch size and stride must be positive, got {size} and {stride}")
    out = []
    for img in images:
        c, h, w = img.shape
        if h < size or w < size:
            continue
        p = img.unfold(1, size, stride).unfold(2, size, stride)  # C, nh, nw, size, size
        out.append(p.permute(1, 2, 0, 3, 4).reshape(-1, c, size, size))
    if not out:
        raise InputError(f"no image is at least {size}x{size}; use a smaller --patch")
    return torch.cat(out).contiguous()


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator of sample ``index`` in ``epoch``: independent of order, worker and process."""
    key = ((int(seed) * 1_000_003 + int(epoch)) * 1_000_000_007 + int(index)) % (1 << 63)
    return torch.Generator().manual_seed(key)


class Patches(Dataset):
    """Non-overlapping ``size x size`` patches of clean images (see :func:`extract_patches`)."""

    def __init__(self, images: Sequence[torch.Tensor], size: int = 32, stride: int | None = None) -> None:
        self.patches = extract_patches(images, size, stride)

    def __len__(self) -> int:
        return int(self.patches.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.patches[index]

    def sample(self, index: int, generator: torch.Generator) -> torch.Tensor:
        return self.patches[index]


class RandomCrops(Dataset):
    """Random ``size x size`` crops of clean images with random flips and 90-degree turns.

    ``length`` samples make an epoch; sample ``i`` comes from image ``i mod
    len(images)`` so every image is used equally. Crops change every epoch
    (through :class:`CleanSamples`'s generator).
    """

    def __init__(self, images: Sequence[torch.Tensor], size: int = 64, length: int | None = None,
                 flips: bool = True) -> None:
        small = [tuple(im.shape[-2:]) for im in images if min(im.shape[-2:]) < size]
        if small:
            raise InputError(f"{len(small)} training image(s) are smaller than the {size}x{size} crop "
                             f"(e.g. {small[0][0]}x{small[0][1]}); use a smaller --patch")
        if not images:
            raise InputError("no training images were given")
        self.images = list(images)
        self.size = int(size)
        self.length = int(length or len(self.images))
        self.flips = flips

    def __len__(self) -> int:
        return self.length

    def sample(self, index: int, generator: torch.Generator) -> torch.Tensor:
        img = self.images[index % len(self.images)]
        h, w = img.shape[-2:]
        top = int(torch.randint(0, h - self.size + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - self.size + 1, (1,), generator=generator))
        crop = img[:, top:top + self.size, left:left + self.size]
        if self.flips:
            flip, turns = torch.randint(0, 2, (1,), generator=generator), torch.randint(0, 4, (1,), generator=generator)
            if int(flip):
                crop = crop.flip(-1)
            crop = torch.rot90(crop, int(turns), dims=(-2, -1))
        return crop.contiguous()

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.sample(index, item_generator(0, 0, index))


# --------------------------------------------------------------------------- datasets of samples
class CleanSamples(Dataset):
    """The clean samples of ``source`` (crops change every epoch), for :func:`~restorekit.training.fit` with a sampler.

    Parameters
    ----------
    source : Patches, RandomCrops, or a dataset of clean ``(C, H, W)`` tensors
        A source with a ``sample(index, generator)`` method draws its own
        randomness (crops, flips) from a generator seeded by
        ``(seed, epoch, index)`` (:func:`item_generator`).
    seed : int
        Base of every sample's generator.
    """

    def __init__(self, source: Any, seed: int = 0) -> None:
        self.source = source
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw fresh crops for ``epoch``; the training loop calls this."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> torch.Tensor:
        if hasattr(self.source, "sample"):
            return self.source.sample(index, item_generator(self.seed, self.epoch, index))
        return self.source[index]


class GrayAsColour(Dataset):
    """Gray samples as colour ones: the gray channel repeated into three.

    With clean samples (tensors, e.g. :class:`CleanSamples`) the gray image
    is repeated; a :class:`~restorekit.degrade.DegradationSampler` then gives
    it the same noise in all three channels, as a gray photo reaches a colour
    model. With ``(degraded, clean)`` pairs the first channel of ``degraded``
    is repeated and any channels after it are kept as they are.

    Parameters
    ----------
    pairs : dataset of clean ``(1, H, W)`` tensors or of ``(degraded, clean)`` pairs
    """

    def __init__(self, pairs: Any) -> None:
        self.pairs = pairs

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.pairs, "set_epoch"):
            self.pairs.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Any:
        item = self.pairs[index]
        if isinstance(item, torch.Tensor):
            return item.expand(3, -1, -1).contiguous()
        degraded, clean = item
        return (torch.cat([degraded[:1].expand(3, -1, -1), degraded[1:]]),
                clean.expand(3, -1, -1).contiguous())


class ConcatPairs(torch.utils.data.ConcatDataset):
    """Several pair datasets one after another (:class:`~torch.utils.data.ConcatDataset`), each told the epoch."""

    def set_epoch(self, epoch: int) -> None:
        for part in self.datasets:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)


def fixed_pairs(images: Sequence[torch.Tensor], sampler: Any, seed: int = 0,
                crop: int | None = None) -> list[tuple[Any, ...]]:
    """Validation triples drawn once: ``(degraded, degradation, clean)``, images ``(1, C, H, W)``.

    ``sampler`` is a :class:`~restorekit.degrade.DegradationSampler` (or any
    ``sampler(batch, generator) -> (degraded, degradation)``), e.g. one of a
    fixed sigma; image ``i`` is drawn from a generator seeded by ``(seed, i)``
    and optionally centre-cropped to ``crop`` first.
    """
    pairs = []
    for i, img in enumerate(images):
        if crop is not None:
            h, w = img.shape[-2:]
            top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
            img = img[:, top:top + crop, left:left + crop]
        degraded, degradation = sampler(img[None], item_generator(seed, -1, i))
        pairs.append((degraded, degradation, img[None]))
    return pairs


__all__ = ["CleanSamples", "ConcatPairs", "GrayAsColour", "Patches", "RandomCrops", "extract_patches",
           "fixed_pairs", "image_files", "item_generator", "load_images", "mnist_images", "to_grayscale"]
