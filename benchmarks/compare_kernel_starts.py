"""Choose the blind kernel estimate's starts: every start alone, and every set kept by its best fit.

The coarse-to-fine estimate (restorekit.estimate_kernel) is non-convex: where it ends depends on the
two-pixel line it starts from. For each case (a CBSD68 image blurred by one of Levin's kernels,
circular border, Gaussian noise of --sigma drawn from the image's index as bench_blind.py does) this
runs the estimate from each start in restorekit.estimate.kernel.START_LINES (no refinement, no
deblurring) and records the kernel's similarity to the true kernel (the peak of their normalised
cross-correlation, 1 for the same kernel at any shift) and its gradient misfit
(restorekit.estimate.kernel.gradient_misfit, what estimate_kernel compares). Then, for every set of
starts, the kernel of least misfit in the set is scored: mean and worst similarity, and the cases
under 0.85. "oracle" keeps the most similar kernel of the four (what a perfect choice would give).

Writes (atomically, after every case, so a stopped run keeps what it measured and a rerun with the
same --out resumes) STEM.json (every case) and STEM.md (the table).

Run (one thread; about 12 s per case for the four starts on a 481x321 image):
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_kernel_starts.py --images 12
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("RESTOREKIT_DATA", HERE.parent.parent / "shared" / "data"))


def similarity(kernel, truth) -> float:
    """Peak normalised cross-correlation of two kernels (1: the same kernel, whatever the shift)."""
    import numpy as np
    from scipy.signal import fftconvolve

    peak = fftconvolve(kernel, truth[::-1, ::-1], mode="full").max()
    return float(peak / np.sqrt((kernel ** 2).sum() * (truth ** 2).sum()))


def table(cases: list[dict], starts: list[str]) -> list[str]:
    """Markdown rows: each start set's mean / worst similarity and cases under 0.85, best first."""
    import numpy as np

    rows = []
    for r in range(1, len(starts) + 1):
        for chosen in itertools.combinations(starts, r):
            picked = [min(chosen, key=lambda s: c["starts"][s]["misfit"]) for c in cases]
            sims = np.array([c["starts"][s]["similarity"] for c, s in zip(cases, picked)])
            rows.append((float(sims.mean()), "+".join(chosen), float(sims.min()), int((sims < 0.85).sum())))
    oracle = np.array([max(v["similarity"] for v in c["starts"].values()) for c in cases])
    rows.sort(reverse=True)
    lines = ["| starts (the best fit kept) | estimates per image | mean similarity | worst | cases < 0.85 |",
             "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {name} | {name.count('+') + 1} | {mean:.4f} | {worst:.3f} | {low} |" for mean, name, worst, low in rows]
    lines.append(f"| oracle (the most similar of all) | {len(starts)} | {oracle.mean():.4f} | {oracle.min():.3f} | "
                 f"{int((oracle < 0.85).sum())} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA / "CBSD68"), help="clean images (default: CBSD68)")
    parser.add_argument("--images", type=int, default=12, help="first N images (default 12)")
    parser.add_argument("--kernels", default="levin:all", help="kernel set (default levin:all)")
    parser.add_argument("--sigma", type=float, default=0.01, help="noise level (default 0.01)")
    parser.add_argument("--size", type=int, default=31, help="estimated kernel size (default 31)")
    parser.add_argument("--out", default=str(HERE / "results" / "kernel_starts"),
                        help="output stem: STEM.json, STEM.md (default benchmarks/results/kernel_starts)")
    args = parser.parse_args(argv)

    import torch

    from restorekit.atomic import write_text_atomic
    from restorekit.bench import _load, collect_images, cpu_model
    from restorekit.degrade import Blur, Compose, Noise
    from restorekit.errors import InputError
    from restorekit.estimate.kernel import START_LINES, coarse_to_fine
    from restorekit.kernels import load_kernel_set

    torch.set_num_threads(1)
    try:
        sources = collect_images(args.data)[:args.images]
        kernel_set = load_kernel_set(args.kernels)
    except InputError as error:
        raise SystemExit(f"error: {error}") from None
    starts = list(START_LINES)
    json_path = Path(args.out + ".json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if json_path.is_file():
        old = json.loads(json_path.read_text())
        if old.get("sigma") == args.sigma and old.get("size") == args.size:
            done = {(c["image"], c["kernel"]): c for c in old["cases"]}
    cases = []
    from tqdm.auto import tqdm

    todo = [(i, label, path, kl, k) for i, (label, path) in enumerate(sources) for kl, k in kernel_set]
    for index, label, path, kernel_label, kernel in tqdm(todo, desc="kernel starts", unit="case", file=sys.stderr):
        if (label, kernel_label) in done:
            cases.append(done[(label, kernel_label)])
            continue
        x = _load(path)
        x = x[None] if x.ndim == 3 else x
        y = Compose(Blur(kernel.to(x.dtype)), Noise(args.sigma)).apply(x, seed=index)
        record = {"image": label, "kernel": kernel_label, "starts": {}}
        for start in starts:
            began = time.process_time()
            try:
                k, misfit = coarse_to_fine(y, args.size, start)
            except InputError as error:
                raise SystemExit(f"error: {error}") from None
            record["starts"][start] = {"similarity": similarity(k, kernel.numpy()), "misfit": misfit,
                                       "cpu_seconds": time.process_time() - began}
        cases.append(record)
        print(f"{label} {kernel_label}: " + " | ".join(
            f"{s} {v['similarity']:.3f} (misfit {v['misfit']:.4g})" for s, v in record["starts"].items()), flush=True)
        write_text_atomic(json_path, json.dumps({"sigma": args.sigma, "size": args.size, "cpu": cpu_model(),
                                                 "cases": cases}, indent=1) + "\n")
    lines = [f"Kernel estimate's starts on {len(cases)} cases ({len(sources)} images x {len(kernel_set)} kernels, "
             f"sigma {args.sigma:g}, size {args.size}); CPU: {cpu_model()}, one thread", ""] + table(cases, starts)
    write_text_atomic(Path(args.out + ".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
