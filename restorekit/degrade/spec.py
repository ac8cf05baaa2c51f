"""Degradations from words: the one builder behind the command line, ``bench`` and ``restorekit.testing``.

The words, each also an option of ``restorekit degrade`` / ``restore`` / ``bench``:

``blur`` (or ``kernel``)
    a kernel spec of :func:`restorekit.kernels.load_kernel` (``course``,
    ``gauss:1.6``, ``box:5``, ``levin:3``, a ``.npy`` file...);
``noise`` (or ``sigma``)
    a Gaussian standard deviation on the [0, 1] scale (``0.05``; 25/255 = 0.098)
    or ``pg:GAIN,SIGMA`` for Poisson-Gaussian noise
    (:func:`restorekit.degrade.poisson.parse_noise`, re-exported here);
``mask``
    ``lower-half``, ``random:FRACTION`` (each pixel missing with that
    probability, drawn from the seed) or a mask file (:class:`MaskSpec`);
``scale``
    a downsampling factor (2, 3, 4...): the blur, if any, is its anti-aliasing kernel;
``boundary``
    ``circular`` (default) or ``reflect``.

:func:`parse_degradation` reads them from one string,
``"blur=gauss:1.6,noise=0.01"``; :func:`build_degradation` makes the
:class:`~restorekit.degrade.Compose` one image sees (its mask drawn for the
image's size); :func:`task_degradation` is the default degradation of a task
(``bench``'s and the contract checks').

Examples
--------
>>> from restorekit.degrade.spec import parse_degradation
>>> spec = parse_degradation("blur=box:3, noise=0.01")
>>> d = spec.build(32, 32)
>>> d.sigma, sorted(d.tasks)
(0.01, ['deblur', 'denoise'])
>>> parse_degradation("scale=2,noise=0").build(32, 32).scale
2
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .poisson import parse_noise  # the noise words (a Gaussian sigma, pg:GAIN,SIGMA) live beside their models

#: What a mask spec may be, for help texts and messages.
MASK_HELP = "lower-half, random:FRACTION (missing fraction, drawn from --seed), or a mask .npy/image file"
#: The words of :func:`parse_degradation` and what they are called on the command line.
WORDS = {"blur": "blur", "kernel": "blur", "noise": "noise", "sigma": "noise", "mask": "mask", "scale": "scale",
         "boundary": "boundary"}


# ------------------------------------------------------------------ masks
class MaskSpec:
    """A parsed mask SPEC (see :data:`MASK_HELP`); :meth:`for_image` gives the :class:`~restorekit.degrade.Mask`.

    ``random:FRACTION`` draws from a seed: :meth:`for_image` draws once per
    image size (the same mask for every image of one size, so ``restore --mask
    random:F --seed N`` recreates what ``degrade`` used); :meth:`draw` draws
    afresh from the seed it is given (``bench``: one mask per image).
    """

    def __init__(self, spec: str, what: str = "--mask") -> None:
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
                raise InputError(f"{what} {spec}: {arg!r} is not a number; use random:0.3 for 30% missing") from None
            if not 0 <= self.fraction < 1:
                raise InputError(f"{what} {spec}: the missing fraction must be in [0, 1), got {arg}")
        else:
            path = Path(spec)
            if not path.is_file():
                raise InputError(f"{what} {spec}: no such mask file, and not a mask spec; use {MASK_HELP}")
            self.kind = "file"
            self._file = _load_mask_file(path)

    def draw(self, height: int, width: int, seed: int = 0, name: str = "the image") -> Any:
        """The mask for an image of ``height`` x ``width``, a random one drawn from ``seed`` (not cached)."""
        from .mask import Mask

        if self.kind == "file":
            mh, mw = self._file.shape
            if (mh, mw) != (height, width):
                raise InputError(
                    f"the mask {self.spec} is {mh}x{mw} (HxW) but the image {name} is {height}x{width}; "
                    "a mask must have its image's height and width"
                )
            return Mask(self._file)
        if self.kind == "lower-half":
            return Mask.lower_half(height, width)
        return Mask.random(height, width, self.fraction, seed=seed)

    def for_image(self, height: int, width: int, seed: int, name: str) -> Any:
        """The mask for an image of ``height`` x ``width`` (``name`` is used in errors), one per size."""
        if self.kind == "file":
            return self.draw(height, width, seed, name)
        key = (height, width)
        if key not in self._cache:
            self._cache[key] = self.draw(height, width, seed, name)
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


def parse_mask(spec: Any, what: str = "--mask") -> MaskSpec:
    """``spec`` as a :class:`MaskSpec` (one passes through)."""
    return spec if isinstance(spec, MaskSpec) else MaskSpec(str(spec).strip(), what)


# ------------------------------------------------------------------ kernels
def parse_kernel(spec: Any) -> Any:
    """A blur kernel from a kernel spec (:func:`restorekit.kernels.load_kernel`), or an array as it is."""
    if spec is None or not isinstance(spec, (str, Path)):
        return spec
    from ..kernels import load_kernel

    return load_kernel(str(spec))


# ------------------------------------------------------------------ the builder
def build_degradation(kernel: Any = None, boundary: str = "circular", mask: Any = None, noise: Any = None,
                      height: int | None = None, width: int | None = None, seed: int = 0, source: Any = "the image",
                      scale: int = 1) -> Any:
    """The :class:`~restorekit.degrade.Compose` of blur (or downsampling), mask and noise one image sees.

    Parameters
    ----------
    kernel : array_like or str, optional
        The blur kernel or its spec; with ``scale`` > 1, the blur before
        decimation (``None``: the bicubic one).
    boundary : {"circular", "reflect"}
    mask : MaskSpec, str or Mask, optional
        Drawn for the image's ``height`` x ``width`` (once per size, see :meth:`MaskSpec.for_image`).
    noise : Noise, number or str, optional
        See :func:`parse_noise`.
    height, width : int
        The image's size (needed with a mask).
    seed : int
        Seed of a random mask.
    source : str or path
        The image's name, for messages.
    scale : int
        Downsampling factor (1: none).
    """
    from .blur import Blur
    from .compose import Compose
    from .downsample import Downsample
    from .mask import Mask

    kernel = parse_kernel(kernel)
    parts = []
    if scale > 1:
        parts.append(Downsample(scale, kernel, boundary))
    elif kernel is not None:
        parts.append(Blur(kernel, boundary))
    if mask is not None:
        if isinstance(mask, Mask):
            parts.append(mask)
        else:
            if height is None or width is None:
                raise InputError("a mask spec needs the image's height and width to be drawn")
            parts.append(parse_mask(mask).for_image(height, width, seed, str(source)))
    if noise is not None:
        parts.append(parse_noise(noise))
    return Compose(*parts)


#: The example degradation of each task when nothing else is said (``task_degradation``'s defaults).
TASK_DEFAULTS = {"denoise": 0.05, "deblur": 0.01, "inpaint": 0.01, "superresolve": 0.01}


def task_degradation(task: str, sigma: Any, height: int, width: int, seed: int = 0, kernel: Any = None,
                     mask: Any = "random:0.3", scale: int = 2) -> Any:
    """The degradation of ``task`` on an image of ``height`` x ``width`` at noise ``sigma``.

    ``denoise``: ``Noise(sigma)``; ``deblur``: ``Compose(Blur(kernel), Noise(sigma))``
    (``kernel`` required: an array or spec); ``inpaint``: ``Compose(Mask, Noise(sigma))``
    with the mask drawn from ``seed`` for this image (not cached); ``superresolve``:
    ``Compose(Downsample(scale, kernel), Noise(sigma))`` (``kernel`` ``None``: bicubic),
    ``height`` and ``width`` being the high-resolution size.
    """
    from .blur import Blur
    from .compose import Compose
    from .downsample import Downsample

    noise = parse_noise(sigma, "sigma")
    if task == "denoise":
        return noise
    if task == "superresolve":
        return Compose(Downsample(scale, parse_kernel(kernel)), noise)
    if task == "deblur":
        if kernel is None:
            raise InputError("the deblur task needs a blur kernel (e.g. kernel='course')")
        return Compose(Blur(parse_kernel(kernel)), noise)
    if task == "inpaint":
        return Compose(parse_mask(mask).draw(int(height), int(width), seed), noise)
    raise InputError(f"unknown task {task!r}; use denoise, deblur, inpaint or superresolve")


@dataclass
class DegradationSpec:
    """A degradation described in words, drawn per image by :meth:`build` (see :func:`parse_degradation`)."""

    kernel: Any = None
    boundary: str = "circular"
    mask: MaskSpec | None = None
    noise: Any = None
    scale: int = 1
    text: str = ""

    def build(self, height: int, width: int, seed: int = 0, source: Any = "the image") -> Any:
        """The degradation an image of ``height`` x ``width`` sees (:func:`build_degradation`)."""
        return build_degradation(self.kernel, self.boundary, self.mask, self.noise, height, width, seed, source,
                                 self.scale)

    @property
    def tasks(self) -> frozenset[str]:
        """The tasks it calls for (without drawing anything)."""
        out = set()
        if self.scale > 1:
            out.add("superresolve")
        elif self.kernel is not None:
            out.add("deblur")
        if self.mask is not None:
            out.add("inpaint")
        if self.noise is not None and self.noise.sigma > 0:
            out.add("denoise")
        return frozenset(out)


def parse_degradation(text: str) -> DegradationSpec:
    """A :class:`DegradationSpec` from ``"blur=SPEC,noise=SIGMA,mask=SPEC,scale=S,boundary=B"``.

    Words are separated by commas (a value may hold commas itself, as in
    ``noise=pg:0.02,0.01``); ``kernel`` and ``sigma``
    are other names of ``blur`` and ``noise``. A bad word is one line naming
    it and what is accepted.
    """
    from .downsample import check_scale

    found: dict[str, str] = {}
    last = None
    for token in str(text).split(","):
        key, eq, value = token.partition("=")
        key = key.strip().lower()
        if not eq:
            if last is None or not token.strip():
                raise InputError(f"degradation {text!r}: {token.strip()!r} is not KEY=VALUE; write e.g. "
                                 "blur=gauss:1.6,noise=0.01 (keys: blur, noise, mask, scale, boundary)")
            found[last] += "," + token.strip()
            continue
        if key not in WORDS:
            raise InputError(f"degradation {text!r}: unknown word {key!r}; use blur (or kernel), noise (or sigma), "
                             "mask, scale or boundary, e.g. blur=gauss:1.6,noise=0.01")
        last = WORDS[key]
        if last in found:
            raise InputError(f"degradation {text!r}: {last} is given twice; give it once")
        found[last] = value.strip()
    boundary = found.get("boundary", "circular")
    from .base import BOUNDARIES

    if boundary not in BOUNDARIES:
        raise InputError(f"degradation {text!r}: boundary {boundary!r} is not one of {', '.join(BOUNDARIES)}")
    scale = check_scale(found["scale"]) if "scale" in found and found["scale"] not in ("1",) else 1
    mask = parse_mask(found["mask"], "mask") if "mask" in found else None
    if scale > 1 and mask is not None:
        raise InputError(f"degradation {text!r}: a mask and a scale together are not supported; give one of them")
    return DegradationSpec(kernel=parse_kernel(found.get("blur")), boundary=boundary, mask=mask,
                           noise=parse_noise(found["noise"], "noise") if "noise" in found else None, scale=scale,
                           text=str(text))


__all__ = ["MASK_HELP", "TASK_DEFAULTS", "DegradationSpec", "MaskSpec", "build_degradation", "parse_degradation",
           "parse_kernel", "parse_mask", "parse_noise", "task_degradation"]
