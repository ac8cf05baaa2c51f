"""restorekit's compiled ``cbm3d`` against the ``bm3d`` package's CBM3D, side by side in one run.

Both denoise the same noisy images (Gaussian noise, seed = image index, restorekit.bench's rules)
told the true sigma, on one thread; the script prints PSNR and seconds per image of each, the
PSNR difference, the speed ratio and the CPU, and writes the table and the per-image records to
``benchmarks/results/cbm3d_<name>.{md,json}``. The ``bm3d`` package (free for non-commercial use
only; ``pip install bm3d``) is reached through the restorekit-skimage example's ``bm3d`` restorer
(profile ``np``); without it only ``cbm3d`` is measured. Progress is shown with tqdm. Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_cbm3d.py --data ../shared/data/CBSD68 --limit 20
    OMP_NUM_THREADS=1 python benchmarks/bench_cbm3d.py --limit 2 --name quick   # a quick look

A long run can be split across processes and merged (the same noisy inputs: image ``i`` of the
folder keeps seed ``i``)::

    python benchmarks/bench_cbm3d.py --first 0 --limit 10 --name part0 &
    python benchmarks/bench_cbm3d.py --first 10 --limit 10 --name part1 &
    wait; python benchmarks/bench_cbm3d.py --merge part0,part1 --name cbsd68
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
    ap.add_argument("--first", type=int, default=0,
                    help="start at image FIRST of the folder (its noise seed stays its index; default 0)")
    ap.add_argument("--merge", default=None,
                    help="comma-separated result names (cbm3d_NAME.json) to merge into --name instead of running")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.merge:
        return merge([n.strip() for n in args.merge.split(",") if n.strip()], args.name, args.no_write)

    from restorekit.bench import collect_images, run_benchmark
    from restorekit.registry import default_registry

    sigmas = [float(s) for s in args.sigmas.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    known = set(default_registry().names())
    missing = [m for m in methods if m.split(":")[0] not in known]
    for m in missing:
        print(f"note: {m!r} is not registered (for bm3d: pip install bm3d); left out", file=sys.stderr)
    methods = [m for m in methods if m not in missing]
    images = args.data
    if args.first:
        images = [path for _, path in collect_images(args.data)][args.first:]
        if not images:
            ap.error(f"--first {args.first}: {args.data} has no image there; use a smaller --first")
    result = run_benchmark(images, "denoise", methods=methods, sigmas=sigmas, limit=args.limit, seed=args.first,
                           progress=True)
    cpu = cpu_name()
    rows = {(r.method, r.sigma): (r.psnr, r.seconds) for r in result.rows}
    head = (f"{result.settings['images']} images of {args.data} from image {args.first}, sigma {args.sigmas}, one "
            f"thread (torch.set_num_threads(1), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}), CPU: {cpu}")
    text = table(head, methods, sigmas, rows, [f"skipped {s.method}: {s.reason}" for s in result.skipped])
    print(text)
    if not args.no_write:
        payload = json.loads(result.to_json())
        payload["cpu"] = cpu
        payload["first"] = args.first
        payload["methods"] = methods
        write(args.name, text + "\n\n" + result.to_markdown() + "\n", payload)
    return 0


def table(head: str, methods: list[str], sigmas: list[float], rows: dict, notes: list[str]) -> str:
    """The comparison table: each method against the first (PSNR difference, speed-up)."""
    lines = [head, ""]
    if len(methods) >= 2:
        ref = methods[0]
        lines += [f"| sigma | method | PSNR | difference to {ref} (dB) | s/image | speed-up over {ref} |",
                  "| ---: | --- | ---: | ---: | ---: | ---: |"]
        for s in sigmas:
            pa, ta = rows[ref, s]
            lines.append(f"| {s:g} | {ref} | {pa:.2f} | | {ta:.2f} | |")
            for ours in methods[1:]:
                pb, tb = rows[ours, s]
                lines.append(f"| {s:g} | {ours} | {pb:.2f} | {pb - pa:+.2f} | {tb:.3f} | {ta / tb:.1f}x |")
        mean_a = sum(rows[ref, s][1] for s in sigmas) / len(sigmas)
        lines.append("")
        for ours in methods[1:]:
            mean_b = sum(rows[ours, s][1] for s in sigmas) / len(sigmas)
            lines.append(f"Mean seconds per image: {ref} {mean_a:.2f}, {ours} {mean_b:.3f}; "
                         f"{ours} is {mean_a / mean_b:.1f}x faster.")
    else:
        lines += ["| sigma | method | PSNR | s/image |", "| ---: | --- | ---: | ---: |"]
        for s in sigmas:
            for m in methods:
                lines.append(f"| {s:g} | {m} | {rows[m, s][0]:.2f} | {rows[m, s][1]:.3f} |")
    return "\n".join(lines + notes)


def write(name: str, markdown: str, payload: dict) -> None:
    from restorekit.atomic import write_text_atomic

    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS / f"cbm3d_{name}.md", markdown)
    write_text_atomic(RESULTS / f"cbm3d_{name}.json", json.dumps(payload, indent=1) + "\n")
    print(f"wrote {RESULTS / f'cbm3d_{name}.md'} and .json")


def merge(names: list[str], name: str, no_write: bool) -> int:
    """Merge the per-image records of runs (--first/--limit parts) into one table: means over all images."""
    parts = []
    for n in names:
        path = RESULTS / f"cbm3d_{n}.json"
        if not path.is_file():
            sys.exit(f"--merge: {path} does not exist; run the part first (--name {n})")
        parts.append(json.loads(path.read_text()))
    methods, sigmas = parts[0]["methods"], parts[0]["settings"]["sigmas"]
    if any(p.get("methods") != methods or p["settings"]["sigmas"] != sigmas for p in parts):
        sys.exit("--merge: the parts were run with different methods or sigmas; rerun them alike")
    records = [r for p in parts for r in p["records"]]
    names_seen = [r["image"] for r in records if r["method"] == methods[0] and r["sigma"] == sigmas[0]]
    if len(set(names_seen)) != len(names_seen):
        sys.exit("--merge: the parts share images; give them disjoint --first/--limit ranges")
    rows = {}
    for m in methods:
        for s in sigmas:
            mine = [r for r in records if r["method"] == m and r["sigma"] == s]
            rows[m, s] = (sum(r["psnr"] for r in mine) / len(mine), sum(r["seconds"] for r in mine) / len(mine))
    cpu = parts[0].get("cpu", "?")
    head = (f"{len(names_seen)} images ({', '.join(names)} merged: " +
            ", ".join(f"{p['settings']['images']} from image {p.get('first', 0)}" for p in parts) +
            f"), sigma {','.join(f'{s:g}' for s in sigmas)}, one thread per run, CPU: {cpu}")
    text = table(head, methods, sigmas, rows, [])
    print(text)
    if not no_write:
        per_image = ["| image | sigma | method | PSNR (dB) | SSIM | s |", "| --- | ---: | --- | ---: | ---: | ---: |"]
        per_image += [f"| {r['image']} | {r['sigma']:g} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                      f"{r['seconds']:.2f} |" for r in records]
        payload = {"parts": names, "methods": methods, "settings": {**parts[0]["settings"], "images": len(names_seen),
                   "image_names": names_seen}, "rows": [{"method": m, "sigma": s, "psnr": p, "seconds": t,
                   "images": len(names_seen)} for (m, s), (p, t) in rows.items()], "records": records, "cpu": cpu}
        write(name, text + "\n\n" + "\n".join(per_image) + "\n", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
