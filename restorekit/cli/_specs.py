"""Command-line specs shared by ``degrade`` and ``restore``: masks, ``--param`` pairs, seeds.

A mask SPEC is ``lower-half`` (the bottom half of every image missing),
``random:FRACTION`` (each pixel missing with that probability, drawn from
``--seed``; the same mask for every image of one size, so ``restore --mask
random:F --seed N`` recreates what ``degrade`` used), or a mask file: a
``.npy`` array of shape (H, W) (nonzero = observed) or a gray image (pixels
above 0.5 = observed).

Nothing here imports torch at module import.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError, ParameterError

MASK_HELP = "lower-half, random:FRACTION (missing fraction, drawn from --seed), or a mask .npy/image file"


class MaskSpec:
    """A parsed mask SPEC; :meth:`for_image` gives the :class:`~restorekit.degrade.Mask` for one image."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.kind, _, arg = spec.partition(":")
        self._cache: dict[tuple[int, int], Any] = {}
        self._file = None
        if spec == "lower-half":
            self.kind = "lower-half"
        elif self.kind == "random" and arg:
            try:
                self.fraction = float(arg)
            except ValueError:
                raise InputError(f"--mask {spec}: {arg!r} is not a number; use random:0.3 for 30% missing") from None
            if not 0 <= self.fraction < 1:
                raise InputError(f"--mask {spec}: the missing fraction must be in [0, 1), got {arg}")
        else:
            path = Path(spec)
            if not path.is_file():
                raise InputError(f"--mask {spec}: no such mask file, and not a mask spec; use {MASK_HELP}")
            self.kind = "file"
            self._file = _load_mask_file(path)

    def for_image(self, height: int, width: int, seed: int, name: str) -> Any:
        """The mask for an image of ``height`` x ``width`` (``name`` is used in errors)."""
        from ..degrade import Mask

        if self.kind == "file":
            mh, mw = self._file.shape
            if (mh, mw) != (height, width):
                raise InputError(
                    f"the mask {self.spec} is {mh}x{mw} (HxW) but the image {name} is {height}x{width}; "
                    "a mask must have its image's height and width"
                )
            return Mask(self._file)
        key = (height, width)
        if key not in self._cache:
            if self.kind == "lower-half":
                self._cache[key] = Mask.lower_half(height, width)
            else:
                self._cache[key] = Mask.random(height, width, self.fraction, seed=seed)
        return self._cache[key]


def _load_mask_file(path: Path):
    import numpy as np
    import torch

    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{path}: cannot read the mask ({exc}); save it with np.save") from None
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim != 2 or array.dtype.kind not in "biuf":
            raise InputError(
                f"{path}: a mask must be a 2-D (H, W) numeric array (nonzero = observed), "
                f"got shape {array.shape} of {array.dtype}"
            )
        if not np.isfinite(array.astype(np.float64)).all():
            raise InputError(f"{path}: the mask holds NaN or Inf values")
        return torch.from_numpy((array != 0).astype(np.float32))
    from ..imageio import read_image

    img = read_image(path)
    if img.channels != 1:
        raise InputError(f"{path}: a mask image must be gray (1 channel), it has {img.channels}; save it as grayscale")
    return (img.tensor[0, 0] > 0.5).float()


def parse_params(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["snr=auto", "wiener.snr=10"]`` -> ``{"snr": "auto", "wiener.snr": "10"}``."""
    params: dict[str, str] = {}
    for pair in pairs or ():
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ParameterError(f"--param {pair!r} must look like NAME=VALUE (e.g. --param snr=auto)")
        if key in params:
            raise ParameterError(f"--param {key} is given twice; give it once")
        params[key] = value.strip()
    return params


def image_degradation(kernel: Any, boundary: str, mask: "MaskSpec | None", noise: Any,
                      height: int, width: int, seed: int, source: Path, scale: int = 1) -> Any:
    """The Compose of blur, mask and noise that one image of the command sees (mask drawn per image).

    With ``scale`` > 1 the kernel (``None``: the bicubic one) is the blur before
    decimation: ``Downsample(scale, kernel, boundary)``.
    """
    from ..degrade import Blur, Compose, Downsample

    parts = []
    if scale > 1:
        parts.append(Downsample(scale, kernel, boundary))
    elif kernel is not None:
        parts.append(Blur(kernel, boundary))
    if mask is not None:
        parts.append(mask.for_image(height, width, seed, str(source)))
    if noise is not None:
        parts.append(noise)
    return Compose(*parts)


def check_kernel_fits(degradation: Any, image: Any, path: Path, option: str) -> None:
    """Refuse, naming the file, a blur kernel larger than the image it is applied to."""
    blur = degradation.blur
    if blur is None:
        return
    kh, kw = blur.kernel.shape
    h, w = image.shape[-2:]
    if kh > h or kw > w:
        raise InputError(
            f"{path}: the blur kernel from {option} ({kh}x{kw}) is larger than the image ({h}x{w}); "
            "use a smaller kernel or a larger image"
        )


def image_seed(seed: int, name: str) -> int:
    """The noise seed of the image called ``name``: a hash of (``seed``, ``name``).

    An image gets the same noise whatever else is in the batch and in
    whatever order the inputs come.
    """
    digest = hashlib.sha256(f"{int(seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


__all__ = ["MASK_HELP", "MaskSpec", "check_kernel_fits", "image_seed", "parse_params"]
