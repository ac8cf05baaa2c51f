"""Reading and writing images: PNG, JPEG, TIFF and ``.npy`` float arrays.

Every image comes in as a float32 tensor of shape ``(1, C, H, W)`` with
``C`` = 1 (gray) or 3 (RGB) and, for integer files, values in [0, 1]
(divided by 255 or 65535). An alpha channel is set aside in
:attr:`LoadedImage.alpha` and written back by :func:`write_image`, so
restorers only ever see the colour channels.

Formats (chosen by the file's suffix):

========  ================  ===================================================
suffix    bit depths        notes
========  ================  ===================================================
.png      8, 16             gray, gray+alpha, RGB, RGBA, palette (read as RGB[A])
.jpg      8                 no alpha; written with quality 95
.tif      8, 16, float32    gray, RGB, with or without alpha; one image per file
.npy      float             values kept as they are (noise is not clipped)
========  ================  ===================================================

**The .npy convention** is scikit-image's, channels last
(``channel_axis=-1``): an array of shape ``(H, W)`` (gray) or ``(H, W, C)``
with C = 1, 3 or 4 (RGBA). Float arrays are read as they are, values outside
[0, 1] included (noise is not clipped), but values beyond
[:data:`FLOAT_LOW`, :data:`FLOAT_HIGH`] = [-8, 9] are refused: they cannot
be an image in [0, 1] plus noise of sigma <= 1, and are most often an image on
the 0-255 scale (divide it by 255); ``uint8`` / ``uint16`` arrays are scaled
by 255 / 65535.
:func:`write_image` writes float32 arrays of the same layout.

Integer formats clip to [0, 1] and quantize on writing; keep noisy images
in ``.npy`` (or float TIFF) when the exact values matter. Colour profiles and
metadata are not kept; JPEG/PNG EXIF orientation is applied on reading.
16-bit colour PNG needs the small ``pypng`` package (Pillow cannot store it).

Examples
--------
>>> import tempfile, pathlib, torch
>>> from restorekit.imageio import read_image, write_image
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ramp.png"
>>> _ = write_image(path, torch.linspace(0, 1, 12).reshape(1, 1, 3, 4), bit_depth=16)
>>> img = read_image(path)
>>> img.tensor.shape, img.bit_depth, img.format
(torch.Size([1, 1, 3, 4]), 16, 'png')
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_output
from .errors import InputError

#: Suffix (lower case) -> format name.
FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".npy": "npy"}
#: The suffixes :func:`read_image`, :func:`write_image` and :func:`list_images` know.
IMAGE_SUFFIXES = tuple(FORMATS)
#: The bit depths each format can store (``None``: float32 samples).
BIT_DEPTHS = {"png": (8, 16), "jpeg": (8,), "tiff": (8, 16, None), "npy": (None,)}
JPEG_QUALITY = 95

_CHANNELS_HELP = "restorekit reads gray (1 channel), RGB (3) or RGBA (4) images"
#: Float samples must lie in [FLOAT_LOW, FLOAT_HIGH]: an image in [0, 1] plus noise of sigma <= 1 stays there
#: (8 sigmas either side); values beyond mean another scale, such as 0-255.
FLOAT_LOW, FLOAT_HIGH = -8.0, 9.0


@dataclass
class LoadedImage:
    """An image read by :func:`read_image`.

    Attributes
    ----------
    tensor : torch.Tensor
        float32, shape ``(1, C, H, W)``, C = 1 or 3; values in [0, 1] for
        integer files, as stored for float files.
    alpha : torch.Tensor or None
        float32 ``(1, 1, H, W)`` in [0, 1] when the file has an alpha channel.
    bit_depth : int or None
        8 or 16 for integer files, ``None`` for float data (``.npy``, float TIFF).
    format : str
        ``"png"``, ``"jpeg"``, ``"tiff"`` or ``"npy"`` (from the suffix).
    path : pathlib.Path
        The file it came from.
    """

    tensor: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int | None
    format: str
    path: Path

    @property
    def channels(self) -> int:
        return int(self.tensor.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return int(self.tensor.shape[2]), int(self.tensor.shape[3])


# --------------------------------------------------------------------------- helpers
def format_of(path: str | os.PathLike) -> str:
    """The format name for ``path``'s suffix, or :class:`InputError` if unsupported."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"{path}: unknown image format {suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(IMAGE_SUFFIXES)} (convert other formats first)"
        )
    return FORMATS[suffix]


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read as an image file, or ``None`` for a regular file (or a folder).

    The answer tells apart what a plain "does not exist" would hide: a
    symbolic link loop, a link to nothing, a FIFO, socket or device, a name
    too long for the file system, a folder that cannot be entered.

    Examples
    --------
    >>> from restorekit.imageio import file_problem
    >>> file_problem("/nonexistent/photo.png")
    'does not exist; check the path'
    """
    p = os.fspath(path)
    try:
        mode = os.stat(p).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop (its links lead back to themselves); point the link at a real file"
        if exc.errno == errno.ENAMETOOLONG:
            return "has a name too long for the file system; use a shorter name"
        if exc.errno == errno.EACCES:
            return "cannot be reached: permission denied on a folder of its path; check the permissions"
        if exc.errno == errno.ENOTDIR:
            return "does not exist (a part of its path is a file, not a folder); check the path"
        if exc.errno == errno.ENOENT and os.path.islink(p):
            return f"is a symbolic link to {os.readlink(p)}, which does not exist; fix the link"
        if exc.errno == errno.ENOENT:
            return "does not exist; check the path"
        return f"cannot be read ({exc.strerror or exc}); check the path"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return f"is {kind}, not an image file; save the image to a regular file and pass that"


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name.

    Only files with a suffix in :data:`IMAGE_SUFFIXES` (any case) count;
    hidden files (name starting with ``.``, e.g. unfinished atomic writes)
    are skipped. Sub-folders are not searched.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; pass a folder of images")
    return sorted(
        (p for p in root.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in FORMATS),
        key=lambda p: p.name,
    )


def _fail(path: Path, problem: str, fix: str) -> InputError:
    return InputError(f"{path}: {problem}; {fix}")


def _scale_integer(array: np.ndarray, path: Path) -> tuple[np.ndarray, int | None]:
    """Integer samples -> float32 in [0, 1] with their bit depth; floats pass through."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0, 8
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0, 16
    if array.dtype == np.bool_:
        return array.astype(np.float32), 8
    if array.dtype.kind == "f":
        return array.astype(np.float32), None
    raise _fail(
        path,
        f"unsupported sample type {array.dtype}",
        "store 8-bit or 16-bit unsigned integers, or floats in [0, 1]",
    )


def _split_channels(array: np.ndarray, path: Path, gray_alpha: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) or (H, W, C) -> (H, W, C') colour and optional (H, W) alpha, validated."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise _fail(
            path,
            f"an image must have shape (H, W) or (H, W, C), got {array.shape}",
            "save one 2-D image per file, channels last",
        )
    h, w, c = array.shape
    if h == 0 or w == 0 or c == 0:
        raise _fail(path, f"the image is empty (shape {array.shape})", "check that the file was written completely")
    if gray_alpha and c == 2:
        return array[:, :, :1], array[:, :, 1]
    if c in (1, 3):
        return array, None
    if c == 4:
        return array[:, :, :3], array[:, :, 3]
    hint = ""
    if c > 4 and array.shape[0] in (1, 3, 4):
        hint = f" (it looks channels-first: use np.moveaxis(a, 0, -1) to get (H, W, C))"
    raise _fail(path, f"{c} channels in an array of shape {array.shape}{hint}", _CHANNELS_HELP)


def _check_float_scale(color: np.ndarray, path: Path) -> None:
    """Refuse float samples that cannot be an image in [0, 1] (plus noise): most often the 0-255 scale."""
    low, high = float(color.min()), float(color.max())
    if FLOAT_LOW <= low and high <= FLOAT_HIGH:
        return
    for top, dtype in ((255, "uint8"), (65535, "uint16")):
        if FLOAT_HIGH < high <= 2 * top:
            raise _fail(
                path,
                f"float values from {low:g} to {high:g}: this looks like an image on the 0-{top} scale, but float "
                "images are read as they are, on the [0, 1] scale",
                f"divide it by {top} (np.save(path, a / {top})) or store it as {dtype}",
            )
    raise _fail(
        path,
        f"float values from {low:g} to {high:g}, far outside the [0, 1] scale of images (even with noise)",
        f"rescale it into [0, 1] (values within [{FLOAT_LOW:g}, {FLOAT_HIGH:g}] are accepted, to keep noise)",
    )


def _to_loaded(array: np.ndarray, path: Path, fmt: str, gray_alpha: bool = False) -> LoadedImage:
    color, alpha = _split_channels(array, path, gray_alpha)
    color, bit_depth = _scale_integer(color, path)
    if not np.isfinite(color).all():
        bad = int((~np.isfinite(color)).sum())
        raise _fail(path, f"{bad} NaN or Inf values", "replace them (e.g. np.nan_to_num) before restoring")
    if bit_depth is None:
        _check_float_scale(color, path)
    tensor = torch.from_numpy(np.ascontiguousarray(color.transpose(2, 0, 1)))[None]
    alpha_t = None
    if alpha is not None:
        alpha_f, _ = _scale_integer(alpha, path)
        if not np.isfinite(alpha_f).all():
            raise _fail(path, "NaN or Inf values in the alpha channel", "replace them before restoring")
        alpha_t = torch.from_numpy(np.ascontiguousarray(alpha_f))[None, None]
    return LoadedImage(tensor=tensor, alpha=alpha_t, bit_depth=bit_depth, format=fmt, path=path)


# --------------------------------------------------------------------------- readers
def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR chunk, or None if it is not a PNG."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    bit_depth, color_type = struct.unpack(">BB", head[24:26])
    return bit_depth, color_type


def _read_png16(path: Path) -> tuple[np.ndarray, bool]:
    """A 16-bit PNG with colour or alpha (which Pillow would cut to 8 bits), via pypng."""
    try:
        import png  # pypng
    except ImportError:
        raise _fail(
            path,
            "16-bit colour PNG needs the 'pypng' package, which is not installed",
            "run 'pip install pypng', or convert the image to 16-bit TIFF",
        ) from None
    width, height, rows, info = png.Reader(filename=str(path)).read()
    planes = int(info["planes"])
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    array = array.reshape(height, width, planes)
    gray_alpha = bool(info.get("greyscale")) and bool(info.get("alpha"))
    return array, gray_alpha


def _read_pillow(path: Path) -> tuple[np.ndarray, bool]:
    from PIL import Image, ImageOps

    header = _png_header(path)
    if header is not None and header[0] == 16 and header[1] != 0:
        return _read_png16(path)
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        mode = im.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
            return np.asarray(im).astype(np.uint16), False
        if mode == "I":  # 32-bit integer: what some Pillow versions return for 16-bit gray PNG
            array = np.asarray(im)
            if array.min() < 0 or array.max() > 65535:
                raise _fail(path, "32-bit integer samples", "store 8-bit or 16-bit images")
            return array.astype(np.uint16), False
        if mode == "F":
            return np.asarray(im, dtype=np.float32), False
        if mode in ("1", "L"):
            return np.asarray(im.convert("L")), False
        if mode == "LA":
            return np.asarray(im), True
        if mode in ("RGB", "RGBA"):
            return np.asarray(im), False
        has_alpha = "A" in mode or "a" in mode or "transparency" in im.info
        return np.asarray(im.convert("RGBA" if has_alpha else "RGB")), False


def _read_tiff(path: Path) -> tuple[np.ndarray, bool]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise _fail(path, "the TIFF file holds no image", "check that the file was written completely")
        series = tif.series[0]
        array = series.asarray()
        axes = series.axes
        page = tif.pages[0]
        extra = tuple(getattr(page, "extrasamples", ()) or ())
        photometric = int(getattr(page, "photometric", 1))
        colormap = getattr(page, "colormap", None)
    if photometric == 5:  # SEPARATED (CMYK): four channels that are not RGBA
        raise _fail(path, "the TIFF is CMYK", "convert it to RGB first")
    if photometric == 3 and colormap is not None and array.dtype.kind == "u":  # PALETTE: indices -> 16-bit RGB
        array = np.moveaxis(np.asarray(colormap, dtype=np.uint16)[:, array], 0, -1)
        axes = axes.replace("S", "") + "S"
    elif photometric == 0 and array.dtype.kind == "u":  # MINISWHITE: 0 is white
        array = np.iinfo(array.dtype).max - array
    if "S" in axes:  # samples (channels) last, whatever the planar configuration
        array = np.moveaxis(array, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    keep = [i for i, a in enumerate(axes) if a in "YXS" or array.shape[i] != 1]
    if len(keep) != array.ndim:
        array = array.reshape([array.shape[i] for i in keep])
        axes = "".join(axes[i] for i in keep)
    if not set(axes) <= set("YXS"):
        raise _fail(
            path,
            f"the TIFF holds several images (axes {axes!r}, shape {array.shape})",
            "save one image per file",
        )
    gray_alpha = photometric in (0, 1) and len(extra) == 1 and array.ndim == 3 and array.shape[-1] == 2
    return array, gray_alpha


def _read_npy(path: Path) -> tuple[np.ndarray, bool]:
    array = np.load(path, allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise _fail(path, "not a single array", "save the image with np.save")
    return array, False


_READERS = {"png": _read_pillow, "jpeg": _read_pillow, "tiff": _read_tiff, "npy": _read_npy}


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read an image file into a ``(1, C, H, W)`` float32 tensor.

    Parameters
    ----------
    path : str or path-like
        A ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff`` or ``.npy`` file
        (see the module docstring for the ``.npy`` layout).

    Returns
    -------
    LoadedImage
        ``tensor`` (C = 1 or 3), ``alpha`` (or None), ``bit_depth`` (8, 16
        or None for float data), ``format`` and ``path``.

    Raises
    ------
    InputError
        If the file is missing (or a FIFO, a link loop, ...), unreadable or
        truncated, float data outside [-8, 9] (e.g. on the 0-255 scale), of an unknown
        format, empty, has 2 or more than 4 channels, or holds NaN/Inf;
        the message names the file, the problem and the fix.

    Examples
    --------
    >>> from restorekit.imageio import read_image
    >>> img = read_image("photo.png")  # doctest: +SKIP
    >>> img.tensor.shape  # doctest: +SKIP
    torch.Size([1, 3, 321, 481])
    """
    p = Path(path)
    fmt = format_of(p)
    problem = file_problem(p)
    if problem is not None:
        raise InputError(f"{p} {problem}")
    if p.is_dir():
        raise _fail(p, "a folder, not a file", "pass an image file (folders are accepted by the command line only)")
    try:
        array, gray_alpha = _READERS[fmt](p)
    except InputError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - every decoder failure becomes one clear message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(
            p,
            f"cannot read it as {fmt.upper()} ({type(exc).__name__}: {reason})",
            "the file is damaged, truncated or not really this format; re-export or re-download it",
        ) from None
    return _to_loaded(array, p, fmt, gray_alpha)


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image and return only its ``(1, C, H, W)`` float32 tensor (alpha dropped).

    Examples
    --------
    >>> from restorekit.imageio import load_image
    >>> x = load_image("photo.png")  # doctest: +SKIP
    """
    return read_image(path).tensor


# --------------------------------------------------------------------------- writing
def _as_hwc(tensor: Any, path: Path) -> np.ndarray:
    if isinstance(tensor, torch.Tensor):
        array = tensor.detach().to("cpu", torch.float32).numpy()
    else:
        array = np.asarray(tensor, dtype=np.float32)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise _fail(path, f"a batch of {array.shape[0]} images cannot go into one file", "write them one by one")
        array = array[0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise _fail(path, f"cannot write an array of shape {array.shape}", "pass (1, C, H, W), (C, H, W) or (H, W)")
    if array.shape[0] not in (1, 3, 4):
        raise _fail(path, f"cannot write {array.shape[0]} channels (shape {array.shape})", _CHANNELS_HELP)
    if 0 in array.shape:
        raise _fail(path, f"cannot write an empty image (shape {array.shape})", "check the restorer's output")
    if not np.isfinite(array).all():
        raise _fail(path, "the image to write holds NaN or Inf values", "check the restorer's output")
    return np.ascontiguousarray(array.transpose(1, 2, 0))


def _quantize(array: np.ndarray, bit_depth: int) -> np.ndarray:
    top = 255 if bit_depth == 8 else 65535
    out = np.rint(np.clip(array, 0.0, 1.0) * top)
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)


def default_bit_depth(fmt: str, wanted: int | None) -> int | None:
    """The bit depth to write ``fmt`` with, keeping ``wanted`` when the format can store it.

    A 16-bit input stays 16-bit in PNG/TIFF, float data stays float in
    ``.npy``/TIFF, and everything else falls back to 8 bits (``.npy``: float).
    """
    allowed = BIT_DEPTHS[fmt]
    if wanted in allowed:
        return wanted
    return None if fmt == "npy" else 8


def write_image(
    path: str | os.PathLike,
    tensor: Any,
    *,
    alpha: Any = None,
    bit_depth: int | None = 8,
) -> Path:
    """Write an image atomically; the format follows the suffix of ``path``.

    Parameters
    ----------
    path : str or path-like
        Destination ``.png``, ``.jpg``, ``.tif`` or ``.npy``. It is written
        to a temporary file in the same folder and then moved into place, so
        it is never left half-written.
    tensor : torch.Tensor or numpy.ndarray
        ``(1, C, H, W)``, ``(C, H, W)`` or ``(H, W)``, C = 1, 3 or 4
        (4 = RGBA, only when ``alpha`` is not given).
    alpha : torch.Tensor or numpy.ndarray, optional
        An alpha channel, ``(1, 1, H, W)`` or ``(H, W)``, as read by
        :func:`read_image`. JPEG cannot store one.
    bit_depth : {8, 16, None}
        Sample size for PNG and TIFF (JPEG: 8 only). ``None`` writes float32
        TIFF. Integer formats clip values to [0, 1] and round. Ignored for
        ``.npy``, which always stores float32 values as they are.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import torch, tempfile, pathlib
    >>> from restorekit.imageio import write_image
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "noise.npy"
    >>> write_image(out, torch.randn(1, 3, 8, 8)).suffix
    '.npy'
    """
    if not isinstance(path, (str, os.PathLike)):
        if isinstance(tensor, (str, os.PathLike)):
            raise InputError(f"write_image takes the path first, then the image: call write_image({str(tensor)!r}, "
                             "image), not write_image(image, path)")
        raise InputError(f"write_image's path must be a str or path-like, not {type(path).__name__}; "
                         "call write_image('out.png', image)")
    p = Path(path)
    fmt = format_of(p)
    color = _as_hwc(tensor, p)
    if alpha is not None:
        if color.shape[2] == 4:
            raise _fail(p, "the image already has 4 channels (RGBA) and an alpha was given too", "pass only one alpha")
        a = _as_hwc(alpha, p)
        if a.shape[2] != 1 or a.shape[:2] != color.shape[:2]:
            raise _fail(
                p,
                f"alpha of shape {a.shape[:2]}x{a.shape[2]} does not fit the image {color.shape[:2]}",
                "pass the alpha read with the image, shape (1, 1, H, W)",
            )
        color = np.concatenate([color, a], axis=2)
    channels = color.shape[2]
    has_alpha = channels in (2, 4)
    if fmt == "npy":
        if channels == 2:
            raise _fail(p, "a .npy file cannot hold a gray image with alpha (2 channels)", "write .png or .tif to keep the alpha")
        with atomic_output(p) as tmp:
            np.save(tmp, color[:, :, 0] if channels == 1 else color, allow_pickle=False)
        return p
    if bit_depth not in BIT_DEPTHS[fmt]:
        allowed = ", ".join("float (None)" if b is None else str(b) for b in BIT_DEPTHS[fmt])
        raise _fail(p, f"{fmt.upper()} cannot store bit depth {bit_depth!r}", f"use one of: {allowed}, or another format")
    if fmt == "jpeg" and has_alpha:
        raise _fail(p, "JPEG cannot store an alpha channel", "write .png or .tif to keep the alpha")
    samples = color.astype(np.float32) if bit_depth is None else _quantize(color, bit_depth)
    with atomic_output(p) as tmp:
        if fmt == "tiff":
            _write_tiff(tmp, samples, has_alpha)
        elif fmt == "png" and bit_depth == 16 and channels > 1:
            _write_png16(tmp, samples, p)
        else:
            _write_pillow(tmp, samples, fmt)
    return p


def _write_pillow(tmp: Path, samples: np.ndarray, fmt: str) -> None:
    from PIL import Image

    channels = samples.shape[2]
    if channels == 1:
        image = Image.fromarray(samples[:, :, 0])  # L (uint8) or I;16 (uint16)
    else:
        image = Image.fromarray(samples)  # LA, RGB or RGBA
    if fmt == "jpeg":
        image.save(tmp, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(tmp, format="PNG")


def _write_png16(tmp: Path, samples: np.ndarray, path: Path) -> None:
    try:
        import png  # pypng
    except ImportError:
        raise _fail(
            path,
            "16-bit colour PNG needs the 'pypng' package, which is not installed",
            "run 'pip install pypng', or write a 16-bit .tif instead",
        ) from None
    h, w, c = samples.shape
    writer = png.Writer(width=w, height=h, greyscale=c in (1, 2), alpha=c in (2, 4), bitdepth=16)
    with open(tmp, "wb") as handle:
        writer.write(handle, samples.reshape(h, w * c))


def _write_tiff(tmp: Path, samples: np.ndarray, has_alpha: bool) -> None:
    import tifffile

    channels = samples.shape[2]
    photometric = "rgb" if channels >= 3 else "minisblack"
    data = samples[:, :, 0] if channels == 1 else samples
    tifffile.imwrite(
        tmp,
        data,
        photometric=photometric,
        planarconfig="contig" if channels > 1 else None,
        extrasamples=("unassalpha",) if has_alpha else None,
        compression="zlib",
    )


__all__ = [
    "BIT_DEPTHS",
    "FORMATS",
    "IMAGE_SUFFIXES",
    "LoadedImage",
    "FLOAT_HIGH",
    "FLOAT_LOW",
    "default_bit_depth",
    "file_problem",
    "format_of",
    "list_images",
    "load_image",
    "read_image",
    "write_image",
]
