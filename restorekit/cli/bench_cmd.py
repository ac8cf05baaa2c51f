"""``restorekit bench``: every method on the same degraded images, with PSNR, SSIM and time."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "benchmark restorers on a folder of clean images (PSNR, SSIM, seconds per image)"
DESCRIPTION = """\
Degrade every image of a folder for a task, run each method on the same
degraded input, and report mean PSNR (dB), SSIM and seconds per image for
each method and noise level, beside the degraded input's own scores.

  denoise  Gaussian noise; default sigmas 0.05,0.1,0.2
  deblur   blur by --kernel (default: course, circular) + noise; default sigmas 0.005,0.01,0.02
  inpaint  --mask (default lower-half: the lower half missing) + noise; default sigma 0
  superresolve  downsampling by --scale (default 2) after the bicubic anti-aliasing
           kernel (or --kernel), circular + noise; default sigmas 0,0.01. Each image is
           cropped to a multiple of the scale and the output, --scale times the input,
           is scored against it; the input row is the input upsampled by pixel repetition

--kernel also takes a kernel set for deblur and superresolve: levin:all (Levin's
8 kernels) or a comma list such as levin:1,levin:3,gauss:1.6. Each kernel is
measured on its own and the table shows every kernel's PSNR and the mean over
the kernels (the JSON holds each kernel's rows and the mean).

Sigmas are on the [0, 1] scale (25 on the 0-255 scale is 0.098). Image i gets
its noise from seed --seed + i, the same for every method. A method is a
restorer name, optionally with parameters: wiener:snr=auto. Methods that
cannot run here (missing weights or compiled extension) are listed as not run,
with the reason. Output files are written atomically.

--blind (with --task deblur) scores blind against known-kernel deblurring:
each image blurred by each kernel of --kernel (default levin:all) is restored
by one method (--methods, default pnp) twice, with the kernel (--size,
default 31; refined with the method, as restore --kernel auto does) and
noise level estimated from the image and with the true ones;
the table gives Levin's error ratio (blind squared error over known-kernel,
each up to a shift) per kernel, the share of cases with ratio <= 3 and the
mean ratio; --figure draws the estimated kernels against the true ones.

Example:
  restorekit bench --data ../shared/data/CBSD68 --limit 20 --task deblur \\
      --methods wiener,wiener:snr=auto,richardson-lucy --markdown deblur.md --figure deblur.png
  restorekit bench --data ../shared/data/CBSD68 --limit 20 --task deblur --kernel levin:all
  restorekit bench --data ../shared/data/CBSD68 --limit 20 --task superresolve --scale 2
  restorekit bench --data ../shared/data/CBSD68 --limit 2 --task deblur --kernel levin:all --blind --sigmas 0.01"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="folder of clean images (or one image file)")
    from ..restorer import TASKS

    parser.add_argument("--task", required=True, choices=TASKS, help="what to degrade and restore")
    parser.add_argument("--methods", metavar="A,B,...",
                        help="comma-separated restorers, NAME or NAME:KEY=VALUE[:KEY=VALUE] (default: all for the task but pipeline steps, e.g. unet-wiener)")
    parser.add_argument("--sigmas", metavar="S,S,...", help="noise levels on the [0, 1] scale (default: per task, see above)")
    parser.add_argument("--noise", metavar="pg:GAIN,SIGMA",
                        help="Poisson-Gaussian noise (photon size GAIN, read-noise SIGMA) instead of Gaussian noise; "
                             "the tables' sigma is the read noise (instead of --sigmas)")
    parser.add_argument("--kernel", metavar="SPEC",
                        help="blur kernel for --task deblur (course by default), or the anti-aliasing kernel for "
                             "superresolve (bicubic by default): levin:N, gaussian:S, a .npy path, ...; or a kernel "
                             "set, levin:all or SPEC,SPEC,... (each kernel and the mean reported)")
    parser.add_argument("--scale", metavar="S",
                        help="downsampling factor for --task superresolve, an integer >= 2 (default 2)")
    parser.add_argument("--mask", default="lower-half", metavar="MASK",
                        help="mask for --task inpaint: lower-half (default) or random:P")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N images (sorted by name)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the first image (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device the degraded images are put on (default cpu)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", metavar="FILE", help="write every row, per-image value and setting as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the table as Markdown")
    parser.add_argument("--figure", metavar="FILE",
                        help="write a PSNR/SSIM-vs-sigma figure (.png, .pdf or .svg; bars with one sigma) and, beside "
                             "it as FILE-images.png, the first image clean, degraded and restored by each method "
                             "with its PSNR (not with a kernel set)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--blind", action="store_true",
                        help="--task deblur: blind (kernel and sigma estimated) against known-kernel restoration by "
                             "one method, scored by Levin's error ratio (see above)")
    parser.add_argument("--size", type=int, default=31, metavar="N",
                        help="with --blind: the estimated kernel's side, odd (default 31)")


def check_outputs(outputs: list[str | None], inputs: list[Path]) -> None:
    """Refuse an output path that is one of the input images, or given twice."""
    from ..errors import InputError

    given = [Path(p).resolve() for p in outputs if p]
    protected = {p.resolve() for p in inputs}
    for path in given:
        if path in protected:
            raise InputError(f"{path} is one of the input images; write the results somewhere else")
        if path.is_dir():
            raise InputError(f"{path} is a folder; give a file name for the output")
        if not path.parent.is_dir():  # said before the benchmark runs, not after it
            raise InputError(f"cannot write {path}: the folder {path.parent} does not exist; create it first")
    if len(set(given)) != len(given):
        raise InputError("the same file is given for two outputs (--json, --markdown, --figure); use different names")


def bench_noise(args) -> tuple[float, float | None]:
    """``(gain, read sigma)`` of ``--noise pg:GAIN,SIGMA``; ``(0, None)`` without it (Gaussian noise at --sigmas)."""
    from ..degrade import PoissonGaussian, parse_noise
    from ..errors import InputError
    from ..kernels import is_kernel_set

    if args.noise is None:
        return 0.0, None
    noise = parse_noise(args.noise, "--noise")
    if not isinstance(noise, PoissonGaussian):
        raise InputError("--noise takes pg:GAIN,SIGMA (Poisson-Gaussian noise); for Gaussian noise use --sigmas")
    if args.sigmas is not None or args.blind or is_kernel_set(args.kernel):
        raise InputError("--noise pg:GAIN,SIGMA goes without --sigmas (SIGMA is the read noise), --blind and a "
                         "kernel set; give one kernel")
    return noise.gain, noise.read_sigma


def run(args: argparse.Namespace) -> int:
    from ..bench import collect_images, run_benchmark, set_threads
    from ..bench_kernels import run_kernel_set
    from ..kernels import is_kernel_set
    from ..scaleout import merge_bench_results, run_everywhere, start, stop
    from ._files import check_figure_path
    from ._report import reported_once

    set_threads(args.threads)
    sources = collect_images(args.data)
    check_outputs([args.json, args.markdown, args.figure, args.figure and str(image_figure_path(args.figure))],
                  [s for _, s in sources if isinstance(s, Path)])
    if args.figure:
        check_figure_path(args.figure, "--figure")
    # Under torchrun each process measures its share of the images; rank 0 merges, prints and writes.
    if args.kernel is not None and args.kernel.strip().lower() == "auto":
        from ..errors import InputError

        raise InputError("bench blurs with a known kernel, so --kernel auto has nothing to estimate against; to score "
                         "estimated kernels use --blind with the true kernels, e.g. --kernel levin:all --blind")
    gain, read_noise = bench_noise(args)
    if args.blind:
        return run_blind(args)
    ctx = start(args.device)

    def measure(data, task, methods=None, kernel=None):
        parts = run_everywhere(lambda: run_benchmark(
            data,
            task,
            methods=methods,
            sigmas=args.sigmas if gain == 0 else [read_noise],
            kernel=kernel,
            gain=gain,
            seed=args.seed,
            limit=args.limit,
            progress=not args.no_progress and ctx.is_main,
            mask=args.mask,
            device=args.device,
            part=(ctx.rank, ctx.world_size),
            scale=args.scale,
            keep=1 if args.figure else 0,  # the first image's outputs, for the image figure
        ), ctx)
        return merge_bench_results(parts) if ctx.distributed else parts[0]

    try:
        with reported_once(ctx, args):  # an error every process meets: rank 0 prints it before any process ends
            if is_kernel_set(args.kernel):  # each kernel measured alone, then the mean over the set
                result = run_kernel_set(args.data, args.task, args.kernel, args.methods, run=measure)
            else:
                result = measure(args.data, args.task, args.methods, args.kernel)
    finally:
        stop(ctx)
    if not ctx.is_main:
        return 0 if result.rows else 1
    print(result.to_markdown(), end="")
    machine = result.settings["machine"]
    print(f"\nMachine: {machine['cpu']} ({machine['cpu_count']} CPUs, torch threads {machine['torch_threads']}"
          + (f", GPU {machine['gpu']}" if machine["gpu"] else "")
          + (f", {ctx.world_size} processes" if ctx.distributed else "") + ")")
    for flag, write in (("json", result.write_json), ("markdown", result.write_markdown), ("figure", result.figure)):
        path = getattr(args, flag)
        if path:
            print(f"wrote {write(path)}")
    if args.figure and getattr(result, "examples", None):  # a kernel set has no single set of images to show
        print(f"wrote {result.image_figure(image_figure_path(args.figure))}")
    return 0 if result.rows else 1


def image_figure_path(figure: str | Path) -> Path:
    """Where ``bench --figure FILE`` puts its image grid: ``FILE``'s stem + ``-images``, same folder and suffix."""
    figure = Path(figure)
    return figure.with_name(f"{figure.stem}-images{figure.suffix or '.png'}")


def run_blind(args: argparse.Namespace) -> int:
    """``bench --blind``: :func:`restorekit.bench_blind.run_blind_benchmark`, one line per case, then the table."""
    from ..bench import parse_sigmas
    from ..bench_blind import run_blind_benchmark
    from ..errors import InputError

    if args.task != "deblur":
        raise InputError(f"--blind scores blind deblurring: use it with --task deblur, not --task {args.task}")
    methods = [m for m in (args.methods or "pnp").split(",") if m.strip()]
    sigmas = parse_sigmas(args.sigmas or "0.01", "deblur")
    if len(methods) != 1 or len(sigmas) != 1:
        raise InputError("--blind compares one method at one noise level; give one --methods NAME and one --sigmas S")

    def report(case) -> None:
        print(f"{case.image} {case.kernel}: error ratio {case.ratio:.2f} (estimated sigma {case.sigma_estimated:.4f}, "
              f"{case.seconds_blind:.1f} s)", flush=True)

    result = run_blind_benchmark(args.data, args.kernel or "levin:all", methods[0], sigma=sigmas[0], size=args.size,
                                 seed=args.seed, limit=args.limit, progress=not args.no_progress, report=report)
    print(result.to_markdown(), end="")
    for flag, write in (("json", result.write_json), ("markdown", result.write_markdown), ("figure", result.figure)):
        path = getattr(args, flag)
        if path:
            print(f"wrote {write(path)}")
    return 0 if result.cases else 1
