"""Validation PSNR against training seconds for runs that branch from one checkpoint, side by side.

Each run is ``LABEL=RUN_DIR`` (a ``restorekit train`` output folder holding
``history.json``), optionally ``LABEL=RUN_DIR:BASE_HISTORY``: the history of
the checkpoint the run started from. A run that *resumed* that checkpoint
(its history holds the base's and goes on) is counted from the base's
seconds; a run *started from* it with ``--init-from`` (a fresh history, steps
from 0) gets the base's last validation as its point at 0 seconds. Seconds
are the history's ``val_seconds`` where it has them, else interpolated
linearly in the step between the branch point and the run's last
``seconds`` (a run going at one speed throughout, as on a dedicated core).

It prints each run's validation PSNR at the branch point and at its end,
its steps, hours and the change per hour, and writes the curves as a PNG.

Run (the session-10 comparison of ``benchmarks/RESULTS.md``)::

    .venv/bin/python benchmarks/compare_training_runs.py \\
        "16-32-64-128, continued=runs/narrow:benchmarks/training/drunet-color/history.json" \\
        "32-64-128-256, grown=runs/wide:benchmarks/training/drunet-color/history.json" \\
        -o benchmarks/figures/prior_grown_vs_continued.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read the training history {path}: {exc}") from None


def curve(run_dir: Path, base: Path | None) -> tuple[list[float], list[float], dict]:
    """(seconds since the branch, validation PSNR) of one run, and a summary."""
    run_path = run_dir / "history.json" if run_dir.is_dir() else run_dir
    history = _load(run_path)
    steps, psnrs = list(history["val_step"]), list(history["val_psnr"])
    if not steps:
        raise SystemExit(f"{run_path}: no validation yet")
    stamps = list(history.get("val_seconds") or [None] * len(steps))
    stamps += [None] * (len(steps) - len(stamps))
    base_step, base_seconds, base_psnr = 0, 0.0, None
    if base is not None:
        past = _load(base)
        base_step, base_seconds, base_psnr = past["val_step"][-1], float(past["seconds"]), past["val_psnr"][-1]
    # resumed: the run's own history holds the base's last validation; keep what comes after it
    resumed = base is not None and any(s == base_step and abs(p - base_psnr) < 1e-9 for s, p in zip(steps, psnrs))
    if resumed:
        keep = [i for i, s in enumerate(steps) if s > base_step]
        steps, psnrs, stamps = [steps[i] for i in keep], [psnrs[i] for i in keep], [stamps[i] for i in keep]
        start_step, start_seconds = base_step, base_seconds
    else:
        start_step, start_seconds = 0, 0.0
    last_step = history["step"][-1] if history["step"] else steps[-1]
    rate = (float(history["seconds"]) - start_seconds) / max(last_step - start_step, 1)  # seconds per step
    seconds = [(t - start_seconds) if t is not None else (s - start_step) * rate for s, t in zip(steps, stamps)]
    if base_psnr is not None:
        seconds, psnrs = [0.0] + seconds, [base_psnr] + psnrs
    hours = (float(history["seconds"]) - start_seconds) / 3600
    summary = {"start_psnr": psnrs[0], "end_psnr": psnrs[-1], "best_psnr": max(psnrs), "steps": last_step - start_step,
               "hours": hours, "per_hour": (psnrs[-1] - psnrs[0]) / hours if hours > 0 else float("nan")}
    return seconds, psnrs, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR[:BASE_HISTORY]")
    parser.add_argument("-o", "--output", default="", help="PNG of the curves (none if not given)")
    args = parser.parse_args(argv)
    curves = []
    for spec in args.runs:
        label, sep, where = spec.partition("=")
        if not sep or not where:
            parser.error(f"{spec!r}: give LABEL=RUN_DIR or LABEL=RUN_DIR:BASE_HISTORY")
        run_dir, _, base = where.partition(":")
        curves.append((label, *curve(Path(run_dir), Path(base) if base else None)))
    print("| run | steps | hours | val PSNR at start | at end | best | change per hour |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, _, _, s in curves:
        print(f"| {label} | {s['steps']} | {s['hours']:.2f} | {s['start_psnr']:.3f} | {s['end_psnr']:.3f} | "
              f"{s['best_psnr']:.3f} | {s['per_hour']:+.3f} dB |")
    if args.output:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from restorekit.atomic import atomic_output

        fig, ax = plt.subplots(figsize=(7, 4))
        for label, seconds, psnrs, _ in curves:
            ax.plot([t / 3600 for t in seconds], psnrs, "o-", ms=3, label=label)
        ax.set_xlabel("training hours since the branch point (one thread)")
        ax.set_ylabel("validation PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with atomic_output(Path(args.output)) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
