"""pnp on the reflect border: the exact data step against capped conjugate gradients and pad-and-crop.

The reflect border is the command line's default (``restore --boundary reflect``). Its exact data
step has no FFT formula; the degradation's ``prox`` runs conjugate gradients, up to 100 iterations
(``cg_iterations=100``); pnp's default caps them at 20 per step; ``reflect_step=pad`` mirrors the
measurement by the kernel's size, solves in closed form on the circular grid and crops. For each of the first N images (blurred with the reflect
border and noised with seed = image index) this times both, and the circular-border pnp on the
circularly blurred image for reference, all with the same denoiser and iterations, one after
another in this process; it prints PSNR against the clean image, the PSNR between each reflect
solution and the exact one, and the seconds per image, as Markdown::

    OMP_NUM_THREADS=1 python benchmarks/bench_pnp_reflect.py --data ../shared/data/CBSD68 --limit 3
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch


def main(argv: list[str] | None = None) -> int:
    import restorekit
    from restorekit.bench import machine_description, set_threads
    from restorekit.degrade import Blur, Compose, Noise
    from restorekit.imageio import list_images, load_image
    from restorekit.kernels import load_kernel
    from restorekit.metrics import psnr

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of clean images (CBSD68: 481x321)")
    parser.add_argument("--limit", type=int, default=3, help="first N images (default 3)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kernel", default="levin:1")
    parser.add_argument("--sigma", type=float, default=0.01)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--denoiser", default=None, help="pnp's denoiser (default: pnp's own)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    kernel = load_kernel(args.kernel)
    extra = {"denoiser": args.denoiser} if args.denoiser else {}
    exact = "reflect, exact (cg_iterations=100)"
    methods = {
        exact: ("reflect", restorekit.create(
            "pnp", iterations=args.iterations, progress=False, reflect_step="cg", cg_iterations=100, **extra)),
        "reflect, cg_iterations=20 (default)": ("reflect", restorekit.create(
            "pnp", iterations=args.iterations, progress=False, **extra)),
        "reflect, reflect_step=pad": ("reflect", restorekit.create(
            "pnp", iterations=args.iterations, progress=False, reflect_step="pad", **extra)),
        "circular border (reference)": ("circular", restorekit.create(
            "pnp", iterations=args.iterations, progress=False, **extra)),
    }
    sums = {name: [0.0, 0.0] for name in methods}
    between = {name: 0.0 for name in methods if name != exact and name.startswith("reflect")}
    images = list_images(args.data)[: args.limit]
    for i, path in enumerate(images):
        x = load_image(path)
        x = x[None] if x.ndim == 3 else x
        outs = {}
        for name, (boundary, pnp) in methods.items():
            d = Compose(Blur(kernel, boundary), Noise(args.sigma))
            y = d.apply(x, seed=i)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                out = pnp(y, d)
                seconds = time.perf_counter() - start
            outs[name] = out
            sums[name][0] += psnr(out, x)
            sums[name][1] += seconds
        for name in between:
            between[name] += psnr(outs[name], outs[exact])
    n = len(images)
    machine = machine_description()
    exact_s = sums[exact][1] / n
    print(f"Machine: {machine['cpu']}, torch threads {machine['torch_threads']}; first {n} images of {args.data} "
          f"({tuple(x.shape[-2:])} for the last); {args.kernel}, sigma {args.sigma:g}, {args.iterations} iterations, "
          f"denoiser {methods['circular border (reference)'][1].config['denoiser']}\n")
    print("| pnp | PSNR (dB) | s / image | exact's time / this |")
    print("|---|---|---|---|")
    for name, (total_psnr, total_s) in sums.items():
        print(f"| {name} | {total_psnr / n:.2f} | {total_s / n:.2f} | {exact_s / (total_s / n):.2f}x |")
    for name, total in between.items():
        print(f"\nPSNR of the '{name}' result against the exact one: {total / n:.2f} dB (mean over images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
