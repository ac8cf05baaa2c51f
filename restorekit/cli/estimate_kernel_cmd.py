"""``restorekit estimate-kernel``: the blur kernel of a blurred photo, estimated from the photo alone."""

from __future__ import annotations

import argparse
import sys

HELP = "estimate the blur kernel of a blurred image (blind deblurring) and save it"
DESCRIPTION = """\
Estimate the blur kernel of one blurred (possibly noisy) image from the image
alone: coarse-to-fine over an image pyramid, an L0 sparse-gradient
intermediate image alternating with a least-squares kernel step on the
gradients (Xu, Zheng and Jia 2013; Pan et al. 2014), run from a vertical,
a diagonal and a horizontal two-pixel start, keeping the kernel that fits
the image's gradients best. Colour images are estimated on their luminance.
The kernel is non-negative, sums to 1 and is centred on its centre of mass.

-o ending in .npy saves the kernel as a float64 array; ending in .png saves
a 16-bit gray preview at the kernel's own size (its peak white), which
--kernel also reads (an image kernel is normalised to sum 1). Files are
written atomically. One line says what was estimated: the kernel's size and
support, and the image's noise level.

--size is the kernel's side: odd, less than half the image's smaller side,
a little larger than the blur you expect (31 covers motion blurs up to about
27 pixels). --refine-with METHOD refines the estimate as 'restore --kernel
auto' does: the image is deblurred with METHOD (e.g. pnp) and the kernel
re-estimated against the result, 5 rounds (each costs one restoration; on
CBSD68 with Levin's kernels it cut the error ratio of pnp's results,
benchmarks/RESULTS.md). To estimate and restore in one go use
'restorekit restore IN -o OUT --method pnp --kernel auto'.

Examples:
  restorekit estimate-kernel blurred.png -o kernel.npy
  restorekit estimate-kernel blurred.png -o kernel.png --size 41
  restorekit estimate-kernel blurred.png -o kernel.npy --refine-with pnp
  restorekit restore blurred.png -o sharp.png --method pnp --kernel kernel.npy --sigma 0.01"""

DEFAULT_SIZE = 31


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="the blurred image (.png, .jpg, .tif, .npy)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="where to save the kernel: a .npy array or a .png preview")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, metavar="N",
                        help=f"kernel side in pixels, odd (default {DEFAULT_SIZE})")
    parser.add_argument("--refine-with", default=None, metavar="METHOD",
                        help="refine the estimate by deblurring with METHOD (a deblurrer such as pnp, "
                             "NAME[:KEY=VALUE...]) and re-estimating, as restore --kernel auto does")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def support(kernel) -> str:
    """``"HxW"``: the bounding box of the kernel's non-zero values."""
    import numpy as np

    rows = np.flatnonzero(kernel.any(axis=1))
    cols = np.flatnonzero(kernel.any(axis=0))
    return f"{rows[-1] - rows[0] + 1}x{cols[-1] - cols[0] + 1}" if rows.size else "0x0"


def write_kernel(path, kernel) -> None:
    """Save ``kernel`` (a 2-D array) atomically: ``.npy`` as float64, ``.png`` as a 16-bit preview (peak white)."""
    from pathlib import Path

    import numpy as np

    from ..atomic import atomic_output
    from ..errors import InputError
    from ..imageio import write_image

    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        with atomic_output(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(kernel, dtype=np.float64))
    elif suffix == ".png":
        write_image(path, np.asarray(kernel / kernel.max(), dtype=np.float32), bit_depth=16)
    else:
        raise InputError(f"-o {path}: save the kernel as .npy (the array) or .png (a preview); "
                         f"'{suffix or 'no suffix'}' is neither")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import InputError
    from ..estimate.kernel import blind_degradation
    from ..imageio import read_image

    source = Path(args.input)
    target = Path(args.output)
    if target.suffix.lower() not in (".npy", ".png"):
        raise InputError(f"-o {target}: save the kernel as .npy (the array) or .png (a preview)")
    if source.exists() and target.exists() and source.resolve() == target.resolve():
        raise InputError(f"-o {target} is the input image; write the kernel somewhere else")
    deblurrer = _refiner(args.refine_with, args.no_progress) if args.refine_with else None
    loaded = read_image(source)
    try:
        _, found = blind_degradation(loaded.tensor, args.size, progress=not args.no_progress, deblurrer=deblurrer)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    sigma = found["sigma_estimate"]  # estimated by blind_degradation, before the blind path's floor
    array = found["kernel"].numpy()
    write_kernel(target, array)
    refined = f", refined {found['refined']}x with {args.refine_with}" if found["refined"] else ""
    print(f"{source}: kernel {array.shape[0]}x{array.shape[1]} (support {support(array)}{refined}), noise sigma "
          f"{sigma:.4f} (estimated) -> {target}")
    sys.stdout.flush()
    return 0


def _refiner(method: str, quiet: bool):
    """The deblurrer ``method`` (``NAME[:KEY=VALUE...]``) built for the refinement, or a one-line error."""
    from ..bench import parse_method
    from ..errors import InputError
    from ..registry import default_registry
    from ._specs import with_declared_params

    name, params = parse_method(method)
    registry = default_registry()
    params = with_declared_params(registry, name, params, progress="false" if quiet else "auto")
    restorer = registry.create(name, **params)
    if "deblur" not in restorer.tasks:
        raise InputError(f"--refine-with {method}: {name!r} does not deblur (it restores "
                         f"{', '.join(sorted(restorer.tasks))}); name a deblurrer such as pnp or wiener")
    return restorer
