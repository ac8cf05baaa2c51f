"""Blur kernels by name: the course kernel, Levin's motion blurs, Gaussians, files.

:func:`load_kernel` turns a short spec into a float64 2-D tensor, checked by
:func:`restorekit.degrade.check_kernel` (finite, 2-D, non-zero sum). The
kernel's centre, as everywhere in restorekit, is index ``(kh // 2, kw // 2)``.

=====================  =========================================================
spec                   kernel
=====================  =========================================================
``course``             the course kernel: MNIST digit 0 at 7x7, sum 1 (shipped)
``levin:N``            Levin et al. (2009) motion blur N = 1..8 (shipped in restorekit/data; a given data root's copy wins)
``gaussian:S[:K]``     Gaussian with sigma S pixels, K x K (odd; default 2*ceil(3S)+1);
                       ``gauss:S[:K]`` is the same
``box:K``              K x K uniform
``mnist:I[:K]``        MNIST training image I resized to K x K (default 7), sum 1
a ``.npy`` path        the stored 2-D array, normalised to sum 1 (with a warning)
an image path          a gray PNG/TIFF/JPEG, normalised to sum 1
=====================  =========================================================

**Kernel sets** (:func:`load_kernel_set`, for ``restorekit bench --kernel``):
``levin:all`` is Levin's eight kernels, and a comma list of specs, e.g.
``levin:1,levin:3,gauss:1.6``, is each of them in order.

Kernels built from a spec sum to 1. A ``.npy`` file whose sum is 1 within
:data:`SUM_TOLERANCE` (Levin's kernels, to float rounding) is used exactly as
stored; one that sums to another positive value is divided by its sum, with a
one-line :class:`~restorekit.errors.RestorekitWarning` saying so (a blur
keeps the brightness; used as stored, such a kernel made every deblurrer
several dB worse without a word), and one whose sum is zero or negative is
refused. An image's pixel values are
only proportional to the kernel, so it is normalised silently.

**The course kernel** is the first image with label 0 in the MNIST training
split (``/work/shared/data/MNIST``: a 4,000-image subset sorted by label, so
index 0), scaled to [0, 1], resized to 7x7 with
``F.interpolate(mode="nearest")`` and normalised to sum 1. It ships as
``restorekit/data/course_kernel.npy`` so nothing needs the data set at run
time; :func:`mnist_digit_kernel` regenerates it.

The data root (for ``levin:`` and ``mnist:``) is the ``data_root`` argument,
else the environment variable ``RESTOREKIT_DATA``, else ``../shared/data``
beside the source checkout.

Examples
--------
>>> from restorekit.kernels import load_kernel
>>> k = load_kernel("course")
>>> tuple(k.shape), round(float(k.sum()), 6)
((7, 7), 1.0)
>>> tuple(load_kernel("gaussian:1.5").shape)
(11, 11)
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .degrade.blur import check_kernel
from .errors import InputError, RestorekitWarning

DATA_ENV = "RESTOREKIT_DATA"
COURSE_KERNEL_FILE = "course_kernel.npy"
LEVIN_COUNT = 8
#: A ``.npy`` kernel whose sum is this close to 1 (relatively) is used exactly as stored.
SUM_TOLERANCE = 1e-6

SPEC_HELP = (
    "kernel specs: 'course', 'levin:N' (N = 1..8, shipped), 'gaussian:SIGMA[:SIZE]' (or 'gauss:'), 'box:K', "
    "'mnist:INDEX[:SIZE]' (MNIST read from $RESTOREKIT_DATA, else ../shared/data), or a path to a .npy array or "
    "a gray image"
)
SET_HELP = "kernel sets: 'levin:all' (Levin's 8) or a comma list of specs such as 'levin:1,levin:3,gauss:1.6'"


# --------------------------------------------------------------------------- data roots
def default_data_root() -> Path | None:
    """``$RESTOREKIT_DATA``, else ``../shared/data`` beside the source checkout, else None."""
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def _data_root(explicit: str | os.PathLike | None, what: str) -> Path:
    root = Path(explicit) if explicit is not None else default_data_root()
    if root is None or not root.is_dir():
        where = f"{root} does not exist" if root is not None else "no data folder was found"
        raise InputError(
            f"{what} needs the benchmark data folder, but {where}; set the environment variable "
            f"{DATA_ENV} to the folder that holds kernels/ and MNIST/ (e.g. ../shared/data)"
        )
    return root


# --------------------------------------------------------------------------- kernels
def gaussian_kernel(sigma: float, size: int | None = None) -> torch.Tensor:
    """A normalised ``size x size`` Gaussian with standard deviation ``sigma`` pixels.

    ``size`` must be odd (so the peak sits on the centre pixel); it defaults to
    ``2 * ceil(3 * sigma) + 1``.

    Examples
    --------
    >>> from restorekit.kernels import gaussian_kernel
    >>> k = gaussian_kernel(1.0)
    >>> tuple(k.shape), int(k.argmax())
    ((7, 7), 24)
    """
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise InputError(f"a Gaussian kernel needs sigma > 0 pixels, got {sigma!r}")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    if size < 1 or size % 2 == 0:
        raise InputError(f"a Gaussian kernel's size must be odd and positive (a centre pixel), got {size}")
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return k / k.sum()


def box_kernel(size: int) -> torch.Tensor:
    """A ``size x size`` uniform kernel summing to 1."""
    if size < 1:
        raise InputError(f"a box kernel's size must be >= 1, got {size}")
    return torch.full((size, size), 1.0 / (size * size), dtype=torch.float64)


def _mnist_dataset(root: str | os.PathLike, train: bool):
    """torchvision's MNIST from ``root`` (the folder holding ``MNIST/raw``, or ``MNIST`` itself)."""
    base = Path(root)
    if base.name == "MNIST" and (base / "raw").is_dir():
        base = base.parent
    if not (base / "MNIST" / "raw").is_dir():
        raise InputError(
            f"no MNIST data under {base}: expected {base / 'MNIST' / 'raw'} with the IDX files; "
            f"pass the folder that holds MNIST/ (or set {DATA_ENV})"
        )
    from torchvision.datasets import MNIST

    try:
        return MNIST(str(base), train=train, download=False)
    except (RuntimeError, OSError, ValueError) as exc:
        raise InputError(f"cannot read MNIST under {base}: {exc}; check the IDX files in MNIST/raw") from None


def mnist_digit_kernel(
    root: str | os.PathLike,
    index: int | None = None,
    digit: int = 0,
    size: int = 7,
    split: str = "train",
) -> torch.Tensor:
    """A blur kernel made from an MNIST digit (this is how the course kernel is made).

    Parameters
    ----------
    root : str or path-like
        The folder that holds ``MNIST/raw`` (e.g. ``/work/shared/data``), or
        the ``MNIST`` folder itself.
    index : int, optional
        Which image of the split. When omitted, the first image whose label
        is ``digit``.
    digit : int
        The label searched for when ``index`` is omitted.
    size : int
        Output size; the 28x28 image is resized with
        ``F.interpolate(mode="nearest")``.
    split : {"train", "test"}
        Which MNIST split.

    Returns
    -------
    torch.Tensor
        float64 ``(size, size)``, summing to 1.

    Examples
    --------
    >>> from restorekit.kernels import mnist_digit_kernel, load_kernel
    >>> k = mnist_digit_kernel("/work/shared/data")  # doctest: +SKIP
    >>> bool(torch.equal(k, load_kernel("course")))  # doctest: +SKIP
    True
    """
    if split not in ("train", "test"):
        raise InputError(f"split must be 'train' or 'test', got {split!r}")
    if size < 1:
        raise InputError(f"the kernel size must be >= 1, got {size}")
    data = _mnist_dataset(root, train=split == "train")
    targets = data.targets
    if index is None:
        hits = (targets == int(digit)).nonzero()
        if len(hits) == 0:
            raise InputError(f"the MNIST {split} split under {root} has no image labelled {digit}")
        index = int(hits[0])
    if not 0 <= index < len(targets):
        raise InputError(f"MNIST index {index} is out of range: the {split} split has {len(targets)} images")
    image = data.data[index].to(torch.float64) / 255.0
    small = F.interpolate(image[None, None], size=(size, size), mode="nearest")[0, 0]
    total = float(small.sum())
    if total <= 0:
        raise InputError(f"MNIST image {index} is blank at {size}x{size}; pick another index or a larger size")
    return small / total


def course_kernel() -> torch.Tensor:
    """The shipped course kernel (see the module docstring), float64 7x7, sum 1."""
    ref = resources.files("restorekit") / "data" / COURSE_KERNEL_FILE
    with resources.as_file(ref) as path:
        if not path.is_file():
            raise InputError(
                f"the packaged course kernel {path} is missing; reinstall restorekit "
                "(pip install -e .) so its data files are installed"
            )
        return torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float64))


def _levin(n: int, data_root: str | os.PathLike | None) -> torch.Tensor:
    """Levin's kernel ``n``: from ``data_root``'s ``kernels/`` when one is given, else the copy restorekit ships."""
    if not 1 <= n <= LEVIN_COUNT:
        raise InputError(f"Levin kernels are numbered 1 to {LEVIN_COUNT}, got levin:{n}")
    if data_root is None:
        from importlib import resources

        with resources.as_file(resources.files("restorekit") / "data" / f"levin09_{n}.npy") as path:
            if path.is_file():
                return _from_npy(path)
    root = _data_root(data_root, f"levin:{n}")
    path = root / "kernels" / f"levin09_{n}.npy"
    if not path.is_file():
        raise InputError(f"{path} is missing; the data folder {root} should hold kernels/levin09_1..8.npy")
    return _from_npy(path)


def _from_npy(path: Path) -> torch.Tensor:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: cannot read it as a .npy array ({exc}); save the kernel with np.save") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
        raise InputError(f"{path}: a kernel must be a numeric array, got {getattr(array, 'dtype', type(array))}")
    return torch.from_numpy(array.astype(np.float64))


def _normalised(kernel: torch.Tensor, path: Path) -> torch.Tensor:
    """``kernel`` (read from ``path``) scaled to sum 1, saying so in one warning; a sum <= 0 is refused."""
    k = check_kernel(kernel, f"kernel file {path}")
    total = float(k.sum())
    if total <= 0:
        raise InputError(f"kernel file {path} sums to {total:.3g}: a blur kernel's weights are >= 0 and sum to 1; "
                         "save the point-spread function itself (e.g. np.save(path, k / k.sum()))")
    if abs(total - 1.0) <= SUM_TOLERANCE:
        return k
    import warnings

    warnings.warn(f"kernel file {path} sums to {total:.4g}, not 1: it was divided by its sum (a blur keeps the "
                  "brightness); save k / k.sum() to silence this", RestorekitWarning, stacklevel=3)
    return k / total


def _from_image(path: Path) -> torch.Tensor:
    from .imageio import read_image

    img = read_image(path)
    if img.channels != 1:
        raise InputError(f"{path}: a kernel image must be gray (1 channel), it has {img.channels}; save it as grayscale")
    k = check_kernel(img.tensor[0, 0].to(torch.float64), f"kernel image {path}")
    return k / k.sum()


def _number(text: str, kind: type, spec: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"cannot read {text!r} in kernel spec {spec!r} as {kind.__name__}; {SPEC_HELP}") from None


def load_kernel(
    spec: Any,
    *,
    data_root: str | os.PathLike | None = None,
) -> torch.Tensor:
    """Build a blur kernel from a spec (see the module docstring for the table).

    Parameters
    ----------
    spec : str, path-like, numpy.ndarray or torch.Tensor
        ``"course"``, ``"levin:N"``, ``"gaussian:SIGMA[:SIZE]"``,
        ``"box:K"``, ``"mnist:INDEX[:SIZE]"``, a path to a ``.npy`` file or
        a gray image, or an array (validated and converted).
    data_root : str or path-like, optional
        The folder holding ``kernels/`` and ``MNIST/`` for ``levin:`` and
        ``mnist:``; defaults to ``$RESTOREKIT_DATA`` or ``../shared/data``.

    Returns
    -------
    torch.Tensor
        float64, 2-D, sum 1 (an array given directly is used as given: non-zero sum).

    Raises
    ------
    InputError
        For an unknown spec, a missing file or data folder, or a kernel that
        is not 2-D, not finite or sums to zero (or, from a file, below zero).

    Examples
    --------
    >>> from restorekit.kernels import load_kernel
    >>> load_kernel("box:3").sum().item()
    1.0
    >>> load_kernel("levin:3").shape  # doctest: +SKIP
    torch.Size([27, 27])
    """
    if isinstance(spec, (torch.Tensor, np.ndarray)):
        k = check_kernel(spec)
        return k.to(torch.float64)
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"a kernel spec must be a non-empty string or path, got {spec!r}; {SPEC_HELP}")
    text = spec.strip()
    name, _, rest = text.partition(":")
    name = name.lower()
    args = rest.split(":") if rest else []
    # A path that exists wins over a spec word (a file called 'course' is still a file).
    path = Path(text).expanduser()
    if path.is_file():
        kernel = _normalised(_from_npy(path), path) if path.suffix.lower() == ".npy" else _from_image(path)
    elif name == "course" and not args:
        kernel = course_kernel()
    elif name == "levin" and len(args) == 1:
        kernel = _levin(_number(args[0], int, text), data_root)
    elif name in ("gaussian", "gauss") and len(args) in (1, 2):
        sigma = _number(args[0], float, text)
        size = _number(args[1], int, text) if len(args) == 2 else None
        kernel = gaussian_kernel(sigma, size)
    elif name == "box" and len(args) == 1:
        kernel = box_kernel(_number(args[0], int, text))
    elif name == "mnist" and len(args) in (1, 2):
        index = _number(args[0], int, text)
        size = _number(args[1], int, text) if len(args) == 2 else 7
        kernel = mnist_digit_kernel(_data_root(data_root, f"mnist:{index}"), index=index, size=size)
    elif path.suffix.lower() in (".npy", ".png", ".jpg", ".jpeg", ".tif", ".tiff") or os.sep in text:
        raise InputError(f"kernel file {text} does not exist; check the path")
    else:
        raise InputError(f"unknown kernel spec {text!r}; {SPEC_HELP}")
    return check_kernel(kernel, f"kernel {text!r}").to(torch.float64)


def is_kernel_set(spec: Any) -> bool:
    """True when ``spec`` names several kernels: ``levin:all`` or a comma list (an existing file never does)."""
    if not isinstance(spec, (str, os.PathLike)):
        return False
    text = os.fspath(spec).strip()
    if Path(text).expanduser().is_file():
        return False
    return "," in text or text.lower() == "levin:all"


def kernel_set_specs(spec: str) -> list[str]:
    """The single specs a kernel set stands for, in order (``levin:all`` is ``levin:1`` .. ``levin:8``).

    Examples
    --------
    >>> from restorekit.kernels import kernel_set_specs
    >>> kernel_set_specs("gauss:1.6, box:3")
    ['gauss:1.6', 'box:3']
    >>> kernel_set_specs("levin:all")[:2]
    ['levin:1', 'levin:2']
    """
    if not isinstance(spec, (str, os.PathLike)) or not os.fspath(spec).strip():
        raise InputError(f"a kernel set must be a non-empty string, got {spec!r}; {SET_HELP}")
    items = [item.strip() for item in os.fspath(spec).split(",")]
    if any(not item for item in items):
        raise InputError(f"kernel set {spec!r} has an empty item; separate specs by single commas ({SET_HELP})")
    out: list[str] = []
    for item in items:
        out += [f"levin:{n}" for n in range(1, LEVIN_COUNT + 1)] if item.lower() == "levin:all" else [item]
    if len(set(out)) != len(out):
        raise InputError(f"kernel set {spec!r} names a kernel twice; list each once")
    return out


def load_kernel_set(spec: Any, *, data_root: str | os.PathLike | None = None) -> list[tuple[str, torch.Tensor]]:
    """``(label, kernel)`` for every kernel of a set (see :func:`kernel_set_specs`); one pair for a single spec.

    Every kernel is loaded (and checked) before any is used, so a typo in the
    fifth item fails at once.
    """
    if not is_kernel_set(spec):
        label = os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else "array"
        return [(label, load_kernel(spec, data_root=data_root))]
    return [(item, load_kernel(item, data_root=data_root)) for item in kernel_set_specs(spec)]


__all__ = [
    "DATA_ENV",
    "SET_HELP",
    "SUM_TOLERANCE",
    "SPEC_HELP",
    "box_kernel",
    "course_kernel",
    "default_data_root",
    "gaussian_kernel",
    "is_kernel_set",
    "kernel_set_specs",
    "load_kernel",
    "load_kernel_set",
    "mnist_digit_kernel",
]
