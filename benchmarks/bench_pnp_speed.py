"""Seconds per image of ``pnp`` (8 iterations) beside ``unsupervised-wiener`` and CBM3D, in one run.

The issue-8 target: ``pnp`` with 8 iterations at most 5 s per 481x321 image on one CPU thread,
reported beside scikit-image's ``unsupervised_wiener`` (the same deblurring inputs) and CBM3D
(``bm3d``, denoising the same clean images at sigma 0.05: CBM3D is the classical denoiser a PnP
prior is measured against, and it does not deblur). Every method is timed by ``restorekit bench``'s
harness (one untimed warm-up on a corner crop, then each image timed), in this one process, with
the thread count given. Prints a Markdown table with the ratios and writes it (and the JSON) when
asked::

    python benchmarks/bench_pnp_speed.py --data ../shared/data/CBSD68 --limit 5 --threads 1 \
        --markdown benchmarks/results/pnp_speed.md --json benchmarks/results/pnp_speed.json
"""

from __future__ import annotations

import argparse
import json
import sys

from restorekit.atomic import atomic_output
from restorekit.bench import machine_description, run_benchmark, set_threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of clean images (CBSD68: 481x321)")
    parser.add_argument("--limit", type=int, default=5, help="first N images (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--kernel", default="levin:1", help="blur for the deblurring methods (default levin:1)")
    parser.add_argument("--sigma", type=float, default=0.01, help="deblurring noise sigma (default 0.01)")
    parser.add_argument("--denoiser", default=None, help="pnp's denoiser (default: pnp's own default)")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args(argv)

    set_threads(args.threads)
    pnp = "pnp:iterations=8:progress=false" + (f":denoiser={args.denoiser}" if args.denoiser else "")
    deblur = run_benchmark(args.data, "deblur", methods=[pnp, "unsupervised-wiener"], sigmas=[args.sigma],
                           kernel=args.kernel, limit=args.limit, progress=False)
    denoise = run_benchmark(args.data, "denoise", methods=["bm3d"], sigmas=[0.05], limit=args.limit, progress=False)
    rows = [(r, f"deblur {args.kernel}, sigma {args.sigma:g}") for r in deblur.rows if r.method != "degraded"]
    rows += [(r, "denoise, sigma 0.05 (CBM3D)") for r in denoise.rows if r.method != "degraded"]
    seconds = {r.method: r.seconds for r, _ in rows}
    if pnp not in seconds:
        print("pnp did not run: " + "; ".join(f"{s.method}: {s.reason}" for s in deblur.skipped), file=sys.stderr)
        return 1
    machine = machine_description()
    lines = [
        f"Machine: {machine['cpu']}, torch threads {machine['torch_threads']}; first {args.limit} images of "
        f"{args.data}; seconds per image, each method timed in this one run.",
        "",
        "| method | task | PSNR (dB) | s / image | pnp's time / this |",
        "|---|---|---|---|---|",
    ]
    for row, task in rows:
        ratio = seconds[pnp] / row.seconds if row.seconds else float("nan")
        lines.append(f"| `{row.method}` | {task} | {row.psnr:.2f} | {row.seconds:.2f} | {ratio:.2f}x |")
    table = "\n".join(lines) + "\n"
    print(table, end="")
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(table, encoding="utf-8")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"deblur": deblur.to_dict(), "denoise": denoise.to_dict(), "machine": machine,
                                       "seconds": seconds}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
