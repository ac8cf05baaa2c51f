"""``restorekit degrade``: blur, mask and add noise to images, reproducibly."""

from __future__ import annotations

import argparse
import sys

from ._specs import MASK_HELP

HELP = "blur, mask and/or add noise to images (seeded, reproducible)"
DESCRIPTION = """\
Degrade images as y = A x + n: blur (--blur), then mask (--mask), then add
white Gaussian noise (--noise, a standard deviation on the [0, 1] scale:
sigma 25 on the 0-255 scale is 25/255 = 0.098). The blur's border model
(--boundary) defaults to reflect, as 'restore' does, so restoring with the
same --kernel and --sigma describes the damage exactly.

INPUT may be image files or folders of images (.png, .jpg, .tif, .npy).
-o is an output file when it ends in an image suffix (one input only);
otherwise it is a folder (created if needed) in which each output keeps its
input's file name. Outputs keep their input's format unless
-o names another suffix (or --format is given).

Integer formats (PNG, JPEG, TIFF) clip values to [0, 1] and quantize them,
which changes noise; write float .npy (e.g. '-o noisy.npy' or
'--format npy') to keep the exact degraded values for a later 'restore'.

The noise of each image is drawn from a generator seeded with a hash of
--seed and the image's file name, so an image gets the same noise whatever
else is processed with it. Files are written atomically; an input is never
overwritten.

Examples:
  restorekit degrade photo.png -o blurred.npy --blur course --noise 0.01 --seed 0
  restorekit degrade ../shared/data/Set12 -o noisy/ --noise 0.098 --format npy
  restorekit degrade photo.png -o holes.png --mask random:0.5 --seed 3"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    parser.add_argument(
        "--blur", metavar="SPEC",
        help="blur kernel: course, levin:N, gaussian:SIGMA[:SIZE], box:K, mnist:INDEX[:SIZE], or a .npy/image file",
    )
    parser.add_argument(
        "--noise", type=float, metavar="SIGMA",
        help="Gaussian noise standard deviation on the [0, 1] scale (0.098 = 25/255); "
        "integer output formats clip it, so prefer .npy",
    )
    parser.add_argument("--mask", metavar="SPEC", help=f"pixel mask: {MASK_HELP}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise and random masks (default 0)")
    parser.add_argument(
        "--boundary", choices=("circular", "reflect"), default="reflect",
        help="how the blur treats image borders: reflect (default, like 'restore': mirrored content, as in a "
        "photograph) or circular (the exact periodic model); restore with the same choice",
    )
    parser.add_argument(
        "--format", choices=("png", "jpg", "tif", "npy"),
        help="output format when -o is a folder (default: each input's own format)",
    )
    parser.add_argument(
        "--fail-fast", action="store_true",
        help="stop at the first image that fails (default: degrade every other image, report each failure "
        "and exit with status 2)",
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..checks import check_seed, check_sigma
    from ..degrade import Noise
    from ..errors import InputError
    from ..imageio import read_image
    from ..kernels import load_kernel
    from ._files import (batch_error, clips_values, collect_inputs, plan_outputs, prepare_folders, run_batch,
                         write_output)
    from ._specs import MaskSpec, check_kernel_fits, image_degradation, image_seed

    if args.blur is None and args.noise is None and args.mask is None:
        raise InputError("nothing to do: give at least one of --blur, --noise or --mask")
    seed = check_seed(args.seed)
    sources = collect_inputs(args.inputs)
    jobs = plan_outputs(sources, args.output, args.format)
    kernel = load_kernel(args.blur) if args.blur is not None else None
    noise = Noise(check_sigma(args.noise, "--noise")) if args.noise is not None else None
    mask = MaskSpec(args.mask) if args.mask is not None else None
    prepare_folders(jobs)

    warned = False

    def degrade_one(job) -> None:
        nonlocal warned
        loaded = read_image(job.source)
        height, width = loaded.size
        degradation = image_degradation(kernel, args.boundary, mask, noise, height, width, seed, job.source)
        check_kernel_fits(degradation, loaded.tensor, job.source, "--blur")
        degraded = degradation.apply(loaded.tensor, seed=image_seed(seed, job.source.name))
        if noise is not None and noise.sigma > 0 and not warned and clips_values(job.target, loaded.bit_depth):
            tqdm.write(
                f"restorekit degrade: note: {job.target.suffix} clips the noisy values to [0, 1] and quantizes "
                "them; write .npy (or --format npy) to keep them exactly",
                file=sys.stderr,
            )
            warned = True
        write_output(job, degraded, loaded)

    outcome = run_batch(jobs, degrade_one, command="degrade", fail_fast=args.fail_fast or len(jobs) == 1,
                        memory_hint="free some memory or degrade a smaller image")
    where = jobs[0].target if len(jobs) == 1 else jobs[0].target.parent
    if outcome.done:
        print(f"degraded {outcome.done} image{'s' if outcome.done != 1 else ''} -> {where}")
    error = batch_error(outcome, "degraded", where)
    if error is not None:
        raise error
    return 0
