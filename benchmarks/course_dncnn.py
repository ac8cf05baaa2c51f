"""The course's DnCNN experiment in one command: {bias, no bias} x {32, 64} hidden channels.

Each variant is trained at noise sigma 0.1 ([0, 1] scale) on non-overlapping
32x32 patches of ``CBSD432`` (its last 8 images held apart for the
validation PSNR) with Adam (lr 1e-3), batches of 32, for 2 epochs, then
evaluated on ``CBSD68`` at sigma 0.05, 0.1 and 0.2 (the same seeded noise for
every variant). The table is printed and written to
``benchmarks/results/course_dncnn.md`` (and ``.json``) atomically.

Run::

    python benchmarks/course_dncnn.py                       # the course set-up, every patch
    python benchmarks/course_dncnn.py --samples-per-epoch 6400 --eval-images 68   # the CPU budget used

Needs ``../shared/data`` (or ``RESTOREKIT_DATA``). Re-running resumes finished
or interrupted variants from their checkpoints under ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
VARIANTS = [(True, 32), (False, 32), (True, 64), (False, 64)]
EVAL_SIGMAS = (0.05, 0.1, 0.2)


def noisy_inputs(images, sigmas, seed=0):
    """The same noisy copy of every image at every sigma, for every method."""
    from restorekit.degrade import Noise

    out = {}
    for s in sigmas:
        out[s] = []
        for i, img in enumerate(images):
            gen = torch.Generator().manual_seed(seed * 100_000 + i * 100 + int(round(s * 1000)))
            out[s].append(Noise(s).apply(img[None], generator=gen))  # restorekit.degrade's noise
    return out


def evaluate(model, images, noisy):
    from restorekit.metrics import psnr

    model.eval()
    table, seconds, count = {}, 0.0, 0
    with torch.no_grad():
        for s, inputs in noisy.items():
            values = []
            for clean, y in zip(images, inputs):
                t = time.perf_counter()
                x = model(y).clamp(0, 1)
                seconds += time.perf_counter() - t
                count += 1
                values.append(psnr(x, clean[None]))
            table[s] = sum(values) / len(values)
    return table, seconds / max(count, 1)


def main(argv=None) -> int:
    from restorekit.kernels import default_data_root
    from restorekit.metrics import psnr
    from restorekit.training import load_images
    from restorekit_plugins.dncnn.train import options_from, train_dncnn

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="data root holding CBSD432 and CBSD68 (default ../shared/data)")
    p.add_argument("--runs", default="runs/course-dncnn", help="folder for the variants' checkpoints")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--hidden-layers", type=int, default=8)
    p.add_argument("--samples-per-epoch", type=int, default=None,
                   help="random subset of the ~63,600 patches per epoch (default: all, as in the course)")
    p.add_argument("--eval-images", type=int, default=68, help="first N CBSD68 images")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default=str(HERE / "results" / "course_dncnn"), help="table path without suffix")
    args = p.parse_args(argv)
    root = Path(args.data) if args.data else default_data_root()
    if root is None or not (root / "CBSD432").is_dir():
        print("error: needs ../shared/data with CBSD432 and CBSD68 (or --data / RESTOREKIT_DATA)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    test = load_images(root / "CBSD68", limit=args.eval_images)
    noisy = noisy_inputs(test, EVAL_SIGMAS)
    rows = [{"method": "noisy input", **{str(s): sum(psnr(y, c[None]) for y, c in zip(noisy[s], test)) / len(test)
                                          for s in EVAL_SIGMAS}}]
    for use_bias, channels in VARIANTS:
        name = f"{'bias' if use_bias else 'nobias'}-{channels}"
        opts = options_from("course", data=str(root / "CBSD432"), hidden_channels=channels, use_bias=use_bias,
                            hidden_layers=args.hidden_layers, epochs=args.epochs,
                            samples_per_epoch=args.samples_per_epoch)
        print(f"== {name}: training", flush=True)
        run = Path(args.runs) / name
        resume = (run / "checkpoint.pt").is_file()
        result = train_dncnn(opts, run, resume=resume, progress=True)
        table, per_image = evaluate(result.model, test, noisy)
        h = result.history
        rows.append({"method": f"DnCNN {args.hidden_layers}x{channels}, {'bias' if use_bias else 'no bias'}",
                     **{str(s): v for s, v in table.items()}, "val_psnr": h["val_psnr"][-1],
                     "train_seconds": h["seconds"], "steps": h["steps_per_epoch"] * args.epochs,
                     "seconds_per_image": per_image})
        print(f"   {rows[-1]}", flush=True)
    write_table(rows, args, len(test))
    variants_figure(Path(args.runs), HERE / "figures" / "course_dncnn_curves.png")
    return 0


def variants_figure(runs: Path, path: Path) -> None:
    """Training loss and validation PSNR of the four variants in one figure (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from restorekit.atomic import atomic_output

    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 3.8))
    for use_bias, channels in VARIANTS:
        name = f"{'bias' if use_bias else 'nobias'}-{channels}"
        h = json.loads((runs / name / "history.json").read_text())
        label = f"{channels} channels, {'bias' if use_bias else 'no bias'}"
        ax_loss.plot(h["step"], h["loss"], label=label)
        ax_psnr.plot(h["val_step"], h["val_psnr"], "o-", label=label)
    ax_loss.set(xlabel="step", ylabel="training MSE (sigma 0.1)", yscale="log")
    ax_psnr.set(xlabel="step", ylabel="validation PSNR (dB), sigma 0.1")
    for ax in (ax_loss, ax_psnr):
        ax.grid(alpha=0.3)
    ax_psnr.legend(fontsize=8)
    fig.suptitle("Course DnCNN variants on CBSD432 patches")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_table(rows, args, n_test: int) -> None:
    from restorekit.atomic import write_text_atomic

    head = ("| method | " + " | ".join(f"sigma {s}" for s in EVAL_SIGMAS) + " | train steps | train time | "
            "CPU s/image |\n|---|" + "---|" * (len(EVAL_SIGMAS) + 3) + "\n")
    body = ""
    for r in rows:
        cells = " | ".join(f"{r[str(s)]:.2f}" for s in EVAL_SIGMAS)
        extra = (f"{r['steps']} | {r['train_seconds'] / 60:.1f} min | {r['seconds_per_image']:.2f}"
                 if "steps" in r else "- | - | -")
        body += f"| {r['method']} | {cells} | {extra} |\n"
    subset = (f"a random {args.samples_per_epoch} of the patches each epoch" if args.samples_per_epoch
              else "every patch each epoch")
    note = (f"PSNR (dB) on the first {n_test} CBSD68 images, one seeded noise draw per image and sigma ([0, 1] "
            f"scale), the same for every row. Trained at sigma 0.1, {args.epochs} epochs, batch 32, Adam 1e-3, "
            f"non-overlapping 32x32 CBSD432 patches ({subset}), {args.hidden_layers} hidden layers.\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out.with_suffix(".md"), note + "\n" + head + body)
    write_text_atomic(out.with_suffix(".json"), json.dumps({"rows": rows, "args": vars(args)}, indent=1) + "\n")
    print(note + "\n" + head + body)


if __name__ == "__main__":
    sys.exit(main())
