"""restorekit's compiled ``cbm3d`` against the ``bm3d`` package's CBM3D, side by side in one run.

Both denoise the same noisy images (Gaussian noise, seed = image index, restorekit.bench's rules)
told the true sigma, on one thread; the script prints PSNR and seconds per image of each, the
PSNR difference, the speed ratio and the CPU, and writes the table and the per-image records to
``benchmarks/results/cbm3d_<name>.{md,json}``. The ``bm3d`` package (free for non-commercial use
only; ``pip install bm3d``) is reached through the restorekit-skimage example's ``bm3d`` restorer
(profile ``np``); without it only ``cbm3d`` is measured. Progress is shown with tqdm. Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_cbm3d.py --data ../shared/data/CBSD68 --limit 20
    OMP_NUM_THREADS=1 python benchmarks/bench_cbm3d.py --limit 2 --name quick   # a quick look
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from restorekit.training.machine import cpu_name  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/CBSD68"),
                    help="folder of clean images (default ../shared/data/CBSD68)")
    ap.add_argument("--limit", type=int, default=20, help="use the first N images (default 20)")
    ap.add_argument("--sigmas", default="0.05,0.1,0.2", help="noise levels on the [0, 1] scale")
    ap.add_argument("--methods", default="bm3d,cbm3d",
                    help="method specs, the reference first, each compared with it (default bm3d,cbm3d)")
    ap.add_argument("--name", default="cbsd68", help="results go to benchmarks/results/cbm3d_NAME.{md,json}")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from restorekit.bench import run_benchmark
    from restorekit.registry import default_registry

    sigmas = [float(s) for s in args.sigmas.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    known = set(default_registry().names())
    missing = [m for m in methods if m.split(":")[0] not in known]
    for m in missing:
        print(f"note: {m!r} is not registered (for bm3d: pip install bm3d); left out", file=sys.stderr)
    methods = [m for m in methods if m not in missing]
    result = run_benchmark(args.data, "denoise", methods=methods, sigmas=sigmas, limit=args.limit, progress=True)
    cpu = cpu_name()
    lines = [f"{result.settings['images']} images of {args.data}, sigma {args.sigmas}, one thread "
             f"(torch.set_num_threads(1), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}), CPU: {cpu}", ""]
    if len(methods) >= 2:
        ref = methods[0]
        lines += [f"| sigma | method | PSNR | difference to {ref} (dB) | s/image | speed-up over {ref} |",
                  "| ---: | --- | ---: | ---: | ---: | ---: |"]
        for s in sigmas:
            a = result.row(ref, s)
            lines.append(f"| {s:g} | {ref} | {a.psnr:.2f} | | {a.seconds:.2f} | |")
            for ours in methods[1:]:
                b = result.row(ours, s)
                lines.append(f"| {s:g} | {ours} | {b.psnr:.2f} | {b.psnr - a.psnr:+.2f} | {b.seconds:.3f} | "
                             f"{a.seconds / b.seconds:.1f}x |")
        mean_a = sum(result.row(ref, s).seconds for s in sigmas) / len(sigmas)
        lines.append("")
        for ours in methods[1:]:
            mean_b = sum(result.row(ours, s).seconds for s in sigmas) / len(sigmas)
            lines.append(f"Mean seconds per image: {ref} {mean_a:.2f}, {ours} {mean_b:.3f}; "
                         f"{ours} is {mean_a / mean_b:.1f}x faster.")
    else:
        lines += ["| sigma | method | PSNR | s/image |", "| ---: | --- | ---: | ---: |"]
        for s in sigmas:
            for m in methods:
                r = result.row(m, s)
                lines.append(f"| {s:g} | {m} | {r.psnr:.2f} | {r.seconds:.3f} |")
    for skipped in result.skipped:
        lines.append(f"skipped {skipped.method}: {skipped.reason}")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        from restorekit.atomic import write_text_atomic

        write_text_atomic(RESULTS / f"cbm3d_{args.name}.md", text + "\n\n" + result.to_markdown() + "\n")
        payload = json.loads(result.to_json())
        payload["cpu"] = cpu
        write_text_atomic(RESULTS / f"cbm3d_{args.name}.json", json.dumps(payload, indent=1) + "\n")
        print(f"wrote {RESULTS / f'cbm3d_{args.name}.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
