"""CUDA against CPU, side by side in one run: the compiled ops, the prior, pnp and CBM3D.

Part of the GPU recipe (``benchmarks/gpu_check.sh``), which runs it on a lent GPU. Each case runs
the same computation on the CPU (one thread, as every CPU figure in ``RESULTS.md``) and on the
GPU, interleaved round by round, and reports the median seconds of each and the speed-up
(CPU time / GPU time). GPU timings synchronise before reading the clock and follow warm-up calls.

Cases:

  linear_relu   the compiled fused Linear+ReLU (``torch.ops.restorekit.linear_relu``), forward and
                backward, batch 4096, 1024 -> 1024
  drunet        the prior (``drunet``) denoising scikit-image's ``astronaut`` (512x512 colour) at
                sigma 0.1
  pnp           ``pnp`` (default prior) deblurring ``astronaut`` blurred by Levin's kernel 1 at
                sigma 0.01, 8 iterations
  cbm3d         the compiled CBM3D at sigma 0.1 on a 256x256 crop, when its op is built

``--dry-run`` runs every case once on the CPU alone at a tiny size (it checks that the script, the
ops and the plugins work on a machine without a GPU; no timing is claimed). The JSON written by
``--json`` names the GPU and the CPU.

Run:  python benchmarks/gpu_bench.py --json OUT.json [--rounds 5] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from restorekit.training.machine import cpu_name


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def astronaut(size: int) -> torch.Tensor:
    from skimage import data

    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
    return image[..., :size, :size].contiguous()


def case_linear_relu(device: torch.device, small: bool):
    from restorekit.nn import extension

    extension.load()  # the compiled ops (restorekit._C), then their Python registrations
    fused = torch.ops.restorekit.linear_relu.default
    n, d = (64, 32) if small else (4096, 1024)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g).to(device).requires_grad_()
    w = (torch.randn(d, d, generator=g) / d**0.5).to(device).requires_grad_()
    b = torch.zeros(d).to(device).requires_grad_()
    up = torch.randn(n, d, generator=g).to(device)

    def run():
        x.grad = w.grad = b.grad = None
        fused(x, w, b).backward(up)

    return run


def case_drunet(device: torch.device, small: bool):
    import restorekit
    from restorekit.degrade import Noise

    clean = astronaut(32 if small else 512)
    noisy = Noise(0.1).apply(clean, generator=torch.Generator().manual_seed(0)).to(device)
    den = restorekit.create("drunet", device=str(device))
    return lambda: den(noisy, Noise(0.1))


def case_pnp(device: torch.device, small: bool):
    import restorekit
    from restorekit.degrade import Blur, Compose, Noise
    from restorekit.kernels import load_kernel

    clean = astronaut(48 if small else 512)
    deg = Compose(Blur(load_kernel("levin:1")), Noise(0.01))
    y = deg.apply(clean, generator=torch.Generator().manual_seed(0)).to(device)
    deg = deg.to(device)
    pnp = restorekit.create("pnp", iterations=2 if small else 8, progress=False)  # builds its prior on y's device
    return lambda: pnp(y, deg)


def case_cbm3d(device: torch.device, small: bool):
    import restorekit
    from restorekit.degrade import Noise

    if "cbm3d" not in {spec.name for spec in restorekit.list_restorers()}:
        raise LookupError("the cbm3d restorer is not installed")
    clean = astronaut(32 if small else 256)
    noisy = Noise(0.1).apply(clean, generator=torch.Generator().manual_seed(0)).to(device)
    den = restorekit.create("cbm3d")
    return lambda: den(noisy, Noise(0.1))


CASES = {"linear_relu": case_linear_relu, "drunet": case_drunet, "pnp": case_pnp, "cbm3d": case_cbm3d}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per device (default 5)")
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument("--only", choices=sorted(CASES), action="append", help="run only these cases")
    parser.add_argument("--dry-run", action="store_true", help="each case once, on the CPU, at a tiny size")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    has_gpu = torch.cuda.is_available()
    if not has_gpu and not args.dry_run:
        print("gpu_bench: no CUDA device here; use --dry-run to check the script on a CPU", file=sys.stderr)
        return 2
    devices = [torch.device("cpu")] + ([] if args.dry_run else [torch.device("cuda")])
    gpu = torch.cuda.get_device_name(0) if has_gpu else None
    results = {"gpu": gpu, "cpu": cpu_name(), "torch": torch.__version__, "cpu_threads": 1,
               "dry_run": args.dry_run, "cases": {}}
    print(f"GPU: {gpu or 'none'}; CPU: {results['cpu']} (1 thread); torch {torch.__version__}")
    for name in args.only or list(CASES):
        try:
            runs = {dev.type: CASES[name](dev, args.dry_run) for dev in devices}
        except (LookupError, ImportError, RuntimeError) as exc:
            results["cases"][name] = {"skipped": str(exc).splitlines()[0]}
            print(f"{name:12s} skipped: {str(exc).splitlines()[0]}")
            continue
        for dev in devices:  # warm-up (CUDA context, cudnn choices, the weights' first load)
            runs[dev.type]()
        times: dict[str, list[float]] = {dev.type: [] for dev in devices}
        for _ in range(1 if args.dry_run else args.rounds):
            for dev in devices:
                times[dev.type].append(timed(runs[dev.type], dev))
        row = {dev: statistics.median(t) for dev, t in times.items()}
        entry = {f"{dev}_s": s for dev, s in row.items()}
        if "cuda" in row:
            entry["speedup"] = row["cpu"] / row["cuda"]
            print(f"{name:12s} cpu {row['cpu']:.4f} s  cuda {row['cuda']:.4f} s  speed-up {entry['speedup']:.1f}x")
        else:
            print(f"{name:12s} cpu {row['cpu']:.4f} s (dry run: ran once, not a measurement)")
        results["cases"][name] = entry
    if args.json:
        from restorekit.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
