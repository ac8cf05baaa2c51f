"""``restorekit degrade``: blur, mask and add noise to images, reproducibly."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ._specs import MASK_HELP

HELP = "blur, downsample, mask and/or add noise to images (seeded, reproducible)"
DESCRIPTION = """\
Degrade images as y = A x + n: blur (--blur), then mask (--mask), then add
white Gaussian noise (--noise, a standard deviation on the [0, 1] scale:
sigma 25 on the 0-255 scale is 25/255 = 0.098), or a camera's
Poisson-Gaussian noise (--noise pg:GAIN,SIGMA). The blur's border model
(--boundary) defaults to reflect, as 'restore' does, so restoring with the
same --kernel and --sigma describes the damage exactly.

--scale S downsamples by an integer S >= 2: the anti-aliasing blur, then the
top-left pixel of every S x S block kept (restorekit.degrade.Downsample). The
blur is the bicubic kernel of MATLAB's imresize unless --blur (or --kernel)
gives one, so '--scale 2' is the bicubic downsampling of super-resolution
benchmarks. An image whose size is not a multiple of S loses its last rows or
columns first (a note says so). Restore with 'restore --scale S' and the same
kernel.

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
overwritten. A file that fails is reported on one line and the others are
still degraded; a summary follows and the exit status is 2 (--fail-fast
stops at the first failure).

Examples:
  restorekit degrade photo.png -o blurred.npy --blur course --noise 0.01 --seed 0
  restorekit degrade ../shared/data/Set12 -o noisy/ --noise 0.098 --format npy
  restorekit degrade photo.png -o holes.png --mask random:0.5 --seed 3
  restorekit degrade photo.png -o small.npy --scale 2 --noise 0.01
  restorekit degrade photo.png -o shot.npy --blur gaussian:1.6 --noise pg:0.02,0.01"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    parser.add_argument(
        "--blur", metavar="SPEC",
        help="blur kernel: course, levin:N, gaussian:SIGMA[:SIZE], box:K, mnist:INDEX[:SIZE], or a .npy/image file; "
        "with --scale the blur before decimation (default bicubic)",
    )
    parser.add_argument("--kernel", metavar="SPEC", help="the same as --blur (the name 'restore' uses)")
    parser.add_argument(
        "--scale", metavar="S",
        help="downsample by the integer S >= 2 after the anti-aliasing blur (bicubic unless --blur is given)",
    )
    parser.add_argument(
        "--noise", metavar="SIGMA",
        help="Gaussian noise standard deviation on the [0, 1] scale (0.098 = 25/255), or pg:GAIN,SIGMA for "
        "Poisson-Gaussian noise (gain * Poisson(x / gain) + N(0, SIGMA^2), e.g. pg:0.02,0.01); "
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


def crop_for_scale(loaded, scale: int, source):
    """``loaded`` trimmed to a multiple of ``scale``, with a note when rows or columns go."""
    from ..degrade import crop_to_multiple
    from ..errors import InputError

    height, width = loaded.size
    if height < scale or width < scale:
        raise InputError(f"the image ({height}x{width}) is too small to downsample by {scale}: "
                         f"it needs at least {scale}x{scale} pixels; use a smaller --scale")
    if height % scale or width % scale:
        print(f"restorekit degrade: note: {source} is {height}x{width}; its last rows/columns are dropped to make "
              f"it {height - height % scale}x{width - width % scale}, a multiple of --scale {scale}", file=sys.stderr)
    alpha = crop_to_multiple(loaded.alpha, scale) if loaded.alpha is not None else None
    return dataclasses.replace(loaded, tensor=crop_to_multiple(loaded.tensor, scale), alpha=alpha)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..checks import check_seed
    from ..degrade import check_scale
    from ..errors import InputError, one_line_warnings
    from ..imageio import read_image
    from ..kernels import load_kernel
    from ._files import (batch_error, clips_values, collect_inputs, plan_outputs, prepare_folders, run_batch,
                         write_output)
    from ._specs import MaskSpec, check_kernel_fits, image_degradation, parse_noise, image_seed

    if args.blur is not None and args.kernel is not None:
        raise InputError("--blur and --kernel name the same kernel; give one of them")
    blur_spec = args.blur if args.blur is not None else args.kernel
    scale = check_scale(args.scale) if args.scale is not None else 1
    if scale > 1 and args.mask is not None:
        raise InputError("--mask and --scale together are not supported; mask and downsample in two runs")
    if blur_spec is None and args.noise is None and args.mask is None and scale == 1:
        raise InputError("nothing to do: give at least one of --blur, --scale, --noise or --mask")
    seed = check_seed(args.seed)
    sources = collect_inputs(args.inputs)
    jobs = plan_outputs(sources, args.output, args.format)
    with one_line_warnings():  # a kernel file that does not sum to 1: one line saying it was normalised
        kernel = load_kernel(blur_spec) if blur_spec is not None else None
    noise = parse_noise(args.noise, "--noise") if args.noise is not None else None
    mask = MaskSpec(args.mask) if args.mask is not None else None
    prepare_folders(jobs)

    warned = False

    def degrade_one(job) -> None:
        nonlocal warned
        loaded = read_image(job.source)
        if scale > 1:
            loaded = crop_for_scale(loaded, scale, job.source)
        height, width = loaded.size
        degradation = image_degradation(kernel, args.boundary, mask, noise, height, width, seed, job.source, scale)
        check_kernel_fits(degradation, loaded.tensor, job.source, "--blur")
        degraded = degradation.apply(loaded.tensor, seed=image_seed(seed, job.source.name))
        if noise is not None and noise.sigma > 0 and not warned and clips_values(job.target, loaded.bit_depth):
            tqdm.write(
                f"restorekit degrade: note: {job.target.suffix} clips the noisy values to [0, 1] and quantizes "
                "them; write .npy (or --format npy) to keep them exactly",
                file=sys.stderr,
            )
            warned = True
        if scale > 1 and loaded.alpha is not None:  # the alpha channel shrinks with the image
            loaded = dataclasses.replace(loaded, alpha=torch.nn.functional.avg_pool2d(loaded.alpha, scale))
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
