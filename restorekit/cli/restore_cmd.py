"""``restorekit restore``: run a registered restorer (or a pipeline) over images."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ._specs import MASK_HELP

HELP = "restore images with a registered method or a pipeline 'a+b'"
DESCRIPTION = """\
Restore images with a method that a plugin registers (see 'restorekit list'),
or a pipeline of methods written 'a+b' (a name registered exactly as given
wins). The method receives the degradation you describe: the blur kernel
(--kernel), the noise level (--sigma, on the [0, 1] scale: 25/255 = 0.098,
or pg:GAIN,SIGMA for Poisson-Gaussian noise) and the pixel mask (--mask).
Blind methods ignore what they do not need. Without --sigma (and --mask) each
image's noise sigma is estimated (restorekit.estimate_noise) and printed.

--kernel auto estimates each image's blur kernel from the image itself
(restorekit.estimate_kernel: an L0 sparse-gradient method, coarse to fine;
--size N, default 31, odd, a little larger than the blur) and, unless --sigma
is given, its noise level, refines the kernel with the method itself (it
deblurs with the estimate and re-estimates the kernel against the result,
5 rounds: each costs one restoration), prints one line per file of what it
estimated, and hands both to the method (a deblurrer: pnp, wiener).

--scale S says the inputs were downsampled by S ('degrade --scale S'): the
degradation is the anti-aliasing blur (--kernel, bicubic by default) then one
pixel kept per S x S block, and the outputs are S times larger. Use a
super-resolver (restorekit list --task superresolve: bicubic, pnp).

INPUT may be image files or folders of images (.png, .jpg, .tif, .npy).
-o is an output file when it ends in an image suffix (one input only);
otherwise it is a folder (created if needed) in which each output keeps its
input's file name. Outputs keep their input's format unless
-o names another suffix (or --format is given): .npy stays float, an alpha
channel is written back, and 16-bit PNG/TIFF stays 16-bit. Files are written
atomically; an input is never overwritten.

A file that fails (damaged, too large for memory, ...) is reported on one
line and the others are still restored; a summary follows and the exit
status is 2 (--fail-fast stops at the first failure). Under torchrun each
process restores its share of the files (one thread each by default):
  torchrun --nproc-per-node 4 -m restorekit.cli.main restore photos/ -o clean/ --method dncnn

Examples:
  restorekit restore blurred.npy -o restored.npy --method wiener --kernel course --sigma 0.01
  restorekit restore noisy/ -o clean/ --method dncnn --sigma 0.1
  restorekit restore photo.png -o out.png --method wiener+unet --kernel course --param wiener.snr=auto
  restorekit restore small.npy -o large.png --method pnp --scale 2 --sigma 0.01
  restorekit restore photo.jpg -o sharp.png --method pnp --kernel auto"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    parser.add_argument("--method", required=True, metavar="NAME", help="restorer name, or a pipeline 'a+b'")
    parser.add_argument(
        "--sigma", "--noise", dest="sigma", metavar="S",
        help="noise of the inputs: a Gaussian standard deviation on the [0, 1] scale (0.098 = 25/255), or "
        "pg:GAIN,SIGMA for Poisson-Gaussian noise (photon size and read-noise sigma, e.g. pg:0.02,0.01; denoisers "
        "that read a noise map get its per-pixel level, pnp weights its data step by it, others go through the "
        "Anscombe transform); not given: estimated from each image (restorekit.estimate_noise, one line per file); "
        "pg:auto: Poisson-Gaussian gain and sigma estimated from each image (the line says when the read noise "
        "is uncertain: its two independent fits disagree, or one of them is loose)",
    )
    parser.add_argument(
        "--kernel", metavar="SPEC",
        help="blur kernel: course, levin:N, gaussian:SIGMA[:SIZE], box:K, mnist:INDEX[:SIZE], or a .npy/image file "
        "(normalised to sum 1; a .npy that does not is said so); "
        "with --scale the blur before decimation (default bicubic); 'auto': estimated from each image (blind "
        "deblurring, see --size)",
    )
    parser.add_argument(
        "--size", type=int, metavar="N",
        help="kernel side in pixels for --kernel auto: odd, less than half the image's smaller side (default 31)",
    )
    parser.add_argument(
        "--scale", metavar="S",
        help="the inputs were downsampled by the integer S >= 2 ('degrade --scale S'); outputs are S times larger",
    )
    parser.add_argument("--mask", metavar="SPEC", help=f"pixel mask (1 = observed): {MASK_HELP}")
    parser.add_argument("--seed", type=int, default=0, help="seed of --mask random:FRACTION (as given to degrade)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a parameter of the method (repeatable); for pipelines STEP.NAME=VALUE",
    )
    parser.add_argument(
        "--boundary", choices=("circular", "reflect"), default="reflect",
        help="the blur's border model: reflect (default, for real photos and 'degrade' outputs) or "
        "circular (for images blurred with the periodic model, e.g. 'degrade --boundary circular')",
    )
    parser.add_argument(
        "--device", default="cpu", choices=("cpu", "cuda"),
        help="where to run (default cpu); also passed to methods that take a 'device' parameter",
    )
    parser.add_argument(
        "--format", choices=("png", "jpg", "tif", "npy"),
        help="output format when -o is a folder (default: each input's own format)",
    )
    parser.add_argument(
        "--fail-fast", action="store_true",
        help="stop at the first image that fails (default: restore every other image, report each failure "
        "and exit with status 2)",
    )
    parser.add_argument(
        "--no-progress", action="store_true",
        help="hide the progress bars (by default a batch shows one on a terminal, and an iterative method such as "
        "pnp shows its iterations on stderr, terminal or log, once a run takes more than 2 s)",
    )
    parser.add_argument(
        "--tile", type=int, metavar="N",
        help="restore large images in overlapping N x N tiles blended without seams (methods with a 'tile' "
        "parameter, e.g. dncnn, unet); default: tiles sized from --max-memory when the image does not fit",
    )
    parser.add_argument(
        "--max-memory", metavar="SIZE",
        help="working memory a tiled method may use per tile, e.g. 2GiB or 512MiB (default: 768 MiB on the CPU, "
        "half the free memory on a GPU); FFT methods refuse images that need more",
    )


MEMORY_HINT = ("restore it in smaller tiles (--max-memory 512MiB or --tile 256, for methods that tile), free some "
               "memory, or for a GPU run on the CPU (--device cpu)")


def _device_params(registry, method: str, params: dict, device: str, **more) -> dict:
    """Add ``device=...`` (and each of ``more`` not None) for the method or pipeline steps that take it, unless given."""
    from ._specs import with_declared_params

    return with_declared_params(registry, method, params, device=device, **more)


def _check_device_params(params: dict) -> None:
    """Refuse a CUDA ``device`` parameter (of the method or a pipeline step) that this machine does not have.

    Values that are not torch device names are left to the method to judge.
    """
    import torch

    from ..checks import check_device

    for key, value in params.items():
        if key == "device" or key.endswith(".device"):
            try:
                kind = torch.device(value).type
            except (RuntimeError, TypeError, ValueError):
                continue
            if kind != "cpu":
                check_device(value, f"--param {key}")


def estimated_noise(source, image, poisson_gaussian: bool = False):
    """``Noise(sigma)`` with ``sigma`` estimated from ``image`` (no --sigma given); prints one line for ``source``.

    With ``poisson_gaussian`` (``--sigma pg:auto``), ``PoissonGaussian(gain, sigma)`` estimated instead; the
    line then says when the read noise is uncertain (:attr:`~restorekit.estimate.noise.NoiseEstimate.uncertain`).

    None (no noise) for an image under 9 pixels on a side, too small to estimate.

    Every restorer then reads the estimate as the degradation's sigma (wiener, the classical
    denoisers, the learned ones and pnp's schedule alike).
    """
    from tqdm.auto import tqdm

    from ..estimate.noise import estimate_noise

    if min(image.shape[-2:]) < 9:  # too small to estimate: no noise assumed
        return None
    found = estimate_noise(image, patch=min(7, min(image.shape[-2:]) // 3),
                           model="poisson-gaussian" if poisson_gaussian else "gaussian")
    what = f"Poisson-Gaussian gain {found.gain:.4f}, sigma" if poisson_gaussian else "sigma"
    note = found.uncertainty_note()
    tqdm.write(f"{source}: noise {what} {found.sigma:.4f} estimated (restorekit.estimate_noise)"
               + (f"; {note}" if note else ""), file=sys.stdout)
    return found.degradation()


def estimated_degradation(source, image, size, boundary: str, noise, deblurrer=None):
    """``Compose(Blur(k), Noise(sigma))`` with ``k`` (and ``sigma`` unless ``noise`` is given) estimated from ``image``.

    With ``deblurrer`` (the restorer about to run, when it deblurs) the kernel
    is refined with it (:func:`~restorekit.estimate.kernel.blind_degradation`).
    Prints one line naming what was estimated for ``source``.
    """
    from tqdm.auto import tqdm

    from ..errors import InputError
    from ..estimate.kernel import blind_degradation
    from .estimate_kernel_cmd import DEFAULT_SIZE, support

    try:
        degradation, found = blind_degradation(image, DEFAULT_SIZE if size is None else size, boundary=boundary,
                                               sigma=None if noise is None else noise.sigma, deblurrer=deblurrer)
    except InputError as exc:
        raise InputError(f"{source}: --kernel auto: {exc}") from None
    k = found["kernel"].numpy()
    how = "estimated" if found["sigma_estimated"] else "given"
    if found["sigma_estimated"] and found["sigma"] > found["sigma_estimate"]:
        how = f"estimated {found['sigma_estimate']:.4f}, raised to the blind path's floor"
    refined = f", refined {found['refined']}x with the method" if found["refined"] else ""
    tqdm.write(f"{source}: estimated kernel {k.shape[0]}x{k.shape[1]} (support {support(k)}{refined}), noise sigma "
               f"{found['sigma']:.4f} ({how})", file=sys.stdout)
    return degradation


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checks import check_device, check_seed
    from ..degrade import check_scale
    from ..errors import InputError, PluginError, one_line_warnings
    from ..imageio import read_image
    from ..kernels import load_kernel
    from ..registry import default_registry
    from ..scaleout import gather, shard, start, stop
    from ._files import batch_error, collect_inputs, plan_outputs, prepare_folders, run_batch, write_output
    from ._report import reported_once
    from ._specs import MaskSpec, check_kernel_fits, image_degradation, parse_noise, parse_params

    device = check_device(args.device, "--device")
    seed = check_seed(args.seed)
    sources = collect_inputs(args.inputs)
    jobs = plan_outputs(sources, args.output, args.format)
    params = parse_params(args.param)
    auto_kernel = args.kernel is not None and args.kernel.strip().lower() == "auto"
    if args.size is not None and not auto_kernel:
        raise InputError("--size is the estimated kernel's size: it goes with --kernel auto")
    if auto_kernel and (args.scale is not None or args.mask is not None):
        raise InputError("--kernel auto estimates a blur alone; it does not go with --scale or --mask")
    with one_line_warnings():  # a kernel file that does not sum to 1: one line saying it was normalised
        kernel = load_kernel(args.kernel) if args.kernel is not None and not auto_kernel else None
    pg_auto = args.sigma is not None and args.sigma.strip().lower() == "pg:auto"
    noise = parse_noise(args.sigma, "--sigma") if args.sigma is not None and not pg_auto else None
    mask = MaskSpec(args.mask) if args.mask is not None else None
    scale = check_scale(args.scale) if args.scale is not None else 1
    if scale > 1 and mask is not None:
        raise InputError("--mask and --scale together are not supported; restore a masked or a downsampled image")
    registry = default_registry()
    # progress: a long iterative method (pnp) shows its bar on stderr even in a log, once a run passes 2 s
    params = _device_params(registry, args.method, params, args.device, tile=args.tile, max_memory=args.max_memory,
                            progress="false" if args.no_progress else "true")
    _check_device_params(params)
    restorer = registry.create(args.method, **params)

    wanted = set()
    if scale > 1:
        wanted.add("superresolve")
    elif kernel is not None or auto_kernel:
        wanted.add("deblur")
    if mask is not None:
        wanted.add("inpaint")
    if noise is not None and noise.sigma > 0:
        wanted.add("denoise")
    if wanted and not wanted & set(restorer.tasks):
        print(
            f"restorekit restore: note: {args.method!r} handles {', '.join(sorted(restorer.tasks))}, "
            f"but the degradation calls for {', '.join(sorted(wanted))}",
            file=sys.stderr,
        )
    prepare_folders(jobs)
    deblurrer = None
    if auto_kernel and "deblur" in restorer.tasks:  # --kernel auto: the kernel is refined with the method itself

        def deblurrer(y, degradation):  # refine_kernel reads the result back to the CPU itself
            return restorer(y.to(device), degradation.to(device))

    def restore_one(job) -> None:
        loaded = read_image(job.source)
        height, width = loaded.size
        if auto_kernel:
            degradation = estimated_degradation(job.source, loaded.tensor, args.size, args.boundary, noise,
                                                deblurrer).to(device)
        else:
            degradation = image_degradation(
                kernel, args.boundary, mask, noise if noise is not None or mask is not None
                else estimated_noise(job.source, loaded.tensor, pg_auto), height, width, seed, job.source, scale
            ).to(device)
        check_kernel_fits(degradation, loaded.tensor, job.source, "--kernel")
        for part in degradation.parts():  # the low-resolution input must hold the anti-aliasing kernel
            if part.scale > 1:
                part.check_low(loaded.tensor.shape)
        with torch.no_grad():
            restored = restorer(loaded.tensor.to(device), degradation)
        n, c, h, w = loaded.tensor.shape
        if not isinstance(restored, torch.Tensor) or tuple(restored.shape) != (n, c, h * scale, w * scale):
            got = tuple(restored.shape) if isinstance(restored, torch.Tensor) else type(restored).__name__
            raise PluginError(
                f"{args.method!r} returned {got} for {job.source} of shape {tuple(loaded.tensor.shape)}; "
                "a restorer must return an image of its input's shape, times --scale in height and width "
                "(report this to the plugin's author)"
            )
        if scale > 1 and loaded.alpha is not None:  # the alpha channel grows with the image
            loaded = dataclasses.replace(loaded, alpha=loaded.alpha.repeat_interleave(scale, -2).repeat_interleave(scale, -1))
        write_output(job, restored.detach().cpu(), loaded)

    # Under torchrun every process restores its share (jobs rank, rank + world, ...); rank 0 reports.
    ctx = start(args.device)
    try:
        with reported_once(ctx, args):  # the merged summary error: rank 0 prints it before any process ends
            with one_line_warnings():  # e.g. a learned model outside what it was trained for: one line, once
                outcome = run_batch(
                    shard(jobs, ctx), restore_one, command="restore", fail_fast=args.fail_fast or len(jobs) == 1,
                    progress=ctx.is_main and not args.no_progress, memory_hint=MEMORY_HINT,
                )
            if ctx.distributed:
                parts = gather(outcome.portable(), ctx)
                parts[ctx.rank] = outcome  # keeps this process's exception for --debug
                outcome = parts[0].merged(parts[1:])
            where = jobs[0].target if len(jobs) == 1 else jobs[0].target.parent
            if outcome.done and ctx.is_main:
                print(f"restored {outcome.done} image{'s' if outcome.done != 1 else ''} with {args.method} -> {where}"
                      + (f" ({ctx.world_size} processes)" if ctx.distributed else ""))
            error = batch_error(outcome, "restored", where)
            if error is not None:
                raise error
    finally:
        stop(ctx)
    return 0
