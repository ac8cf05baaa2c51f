"""restorekit.estimate_noise against scikit-image's estimate_sigma, side by side on the same noisy images.

For each sigma, every image of the folder gets Gaussian noise (seed = image index) and both estimators
read it; the script prints the mean and worst relative error of each and the mean CPU seconds per call
(one thread). Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_noise_estimation.py --data ../shared/data/CBSD68 --limit 20
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/CBSD68"))
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--sigmas", default="0.01,0.02,0.05,0.1,0.2")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from skimage.restoration import estimate_sigma

    import restorekit
    from restorekit.degrade import Noise
    from restorekit.imageio import load_image

    files = sorted(p for p in Path(args.data).iterdir() if p.is_file())[: args.limit]
    images = [load_image(f) for f in files]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"{len(images)} images of {args.data}, one thread, {cpu}")
    print("| sigma | estimate_noise mean / worst error | s per call | skimage estimate_sigma mean / worst error "
          "| s per call |")
    print("|---|---|---|---|---|")
    for sigma in (float(s) for s in args.sigmas.split(",")):
        ours, theirs, t_ours, t_theirs = [], [], 0.0, 0.0
        for i, x in enumerate(images):
            y = Noise(sigma).apply(x, seed=i)
            t = time.process_time()
            ours.append(restorekit.estimate_noise(y).sigma / sigma - 1)
            t_ours += time.process_time() - t
            t = time.process_time()
            theirs.append(float(np.mean(estimate_sigma(y[0].numpy(), channel_axis=0))) / sigma - 1)
            t_theirs += time.process_time() - t
        n = len(images)
        print(f"| {sigma} | {np.mean(ours):+.1%} / {max(ours, key=abs):+.1%} | {t_ours / n:.3f} "
              f"| {np.mean(theirs):+.1%} / {max(theirs, key=abs):+.1%} | {t_theirs / n:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
