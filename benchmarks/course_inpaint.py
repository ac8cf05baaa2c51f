"""Course experiment: MNIST lower-half inpainting, mlp-inpaint vs scikit-image's biharmonic inpainting.

The 1,000 held-apart MNIST digits (the ``t10k`` files under
``../shared/data/MNIST``, never seen in training) lose their lower half
(rows 14-27). ``mlp-inpaint`` and ``skimage.restoration.inpaint_biharmonic``
restore the same measurements with the same mask; the table gives the mean
PSNR of the restored lower half (the only pixels either method invents;
values clipped to [0, 1], data range 1) and of the whole digit, and seconds
per digit. Note: this MNIST copy's ``train`` files hold only the classes 0-7
and its ``t10k`` files only 8 and 9, so every test digit is of a class the
network never saw. A figure of ground truth, measurement and both reconstructions
for 10 digits spread over the set goes to ``benchmarks/figures/course_inpaint.png``.

Run::

    .venv/bin/python benchmarks/course_inpaint.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("RESTOREKIT_DATA", str(HERE.parents[1] / "shared" / "data")),
                        help="folder holding MNIST/raw (default ../shared/data)")
    parser.add_argument("--limit", type=int, default=1000, help="number of t10k digits (default all 1,000)")
    parser.add_argument("--figure", default=str(HERE / "figures" / "course_inpaint.png"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    import restorekit
    from restorekit.atomic import atomic_output
    from restorekit.degrade import Mask
    from restorekit_plugins.mlp_inpaint.train import half_psnr, load_mnist
    from skimage.restoration import inpaint_biharmonic
    from tqdm import tqdm

    truth = load_mnist(args.data, train=False)[: args.limit]
    mask = Mask.lower_half(28, 28)
    measured = mask.apply(truth)

    mlp = restorekit.create("mlp-inpaint")
    t0 = time.perf_counter()
    restored_mlp = mlp(measured, mask)
    t_mlp = (time.perf_counter() - t0) / len(truth)

    missing = (mask.mask[0, 0] == 0).numpy()
    t0 = time.perf_counter()
    restored_bh = torch.stack([
        torch.from_numpy(inpaint_biharmonic(m[0].numpy().astype(np.float64), missing)).float()[None]
        for m in tqdm(measured, desc="inpaint_biharmonic", mininterval=2)
    ])
    t_bh = (time.perf_counter() - t0) / len(truth)

    def full_psnr(x):
        err = (x.clamp(0, 1) - truth).double().square().flatten(1).mean(1)
        return float((10 * torch.log10(1 / err.clamp_min(1e-12))).mean())

    rows = [
        ("mlp-inpaint", float(half_psnr(restored_mlp, truth).mean()), full_psnr(restored_mlp), t_mlp),
        ("skimage inpaint_biharmonic", float(half_psnr(restored_bh, truth).mean()), full_psnr(restored_bh), t_bh),
        ("measurement (lower half 0)", float(half_psnr(measured, truth).mean()), full_psnr(measured), 0.0),
    ]
    from restorekit.nn import extension

    backend = "compiled ops (restorekit._C)" if extension.available() else "Python Functions (extension not built)"
    print(f"MNIST t10k digits: {len(truth)}, mask: lower half (rows 14-27) missing; "
          f"mlp-inpaint Linear/ReLU: {backend}\n")
    print("| method | PSNR, restored lower half (dB) | PSNR, whole digit (dB) | ms per digit |")
    print("| --- | --- | --- | --- |")
    for name, half, full, sec in rows:
        print(f"| {name} | {half:.2f} | {full:.2f} | {sec * 1e3:.3f} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = min(10, len(truth))
    shown = torch.linspace(0, len(truth) - 1, k).long()  # spread over the set (it is sorted by class)
    panels = [("ground truth", truth), ("measurement", measured), ("mlp-inpaint", restored_mlp),
              ("inpaint_biharmonic", restored_bh)]
    fig, axes = plt.subplots(len(panels), k, figsize=(k * 0.9, len(panels) * 1.0))
    for r, (label, imgs) in enumerate(panels):
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(imgs[shown[c], 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.suptitle("MNIST lower-half inpainting (held-apart t10k digits)", fontsize=9)
    fig.tight_layout()
    figure = Path(args.figure)
    figure.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(figure) as tmp:
        fig.savefig(tmp, dpi=120)
    print(f"\nfigure: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
