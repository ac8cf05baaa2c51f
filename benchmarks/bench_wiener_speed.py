"""The wiener plugin against ``skimage.restoration.wiener`` on the same images, in one run.

Both compute the same filter, ``X = conj(H) Y / (|H|^2 + 1/snr)`` with a
circular blur: scikit-image is given ``balance = 1 / snr`` and an identity
regulariser (``reg = [[1]]``, a flat transfer function) instead of its
default Laplacian, so the outputs agree to float32 rounding (the maximum
difference is printed). scikit-image filters one 2-D channel per call, as
its documentation shows; restorekit filters the whole ``(1, C, H, W)``
image through the public API (``restorekit.create("wiener")``), input
checks included.

Images: the first ``--limit`` of CBSD68 when ``../shared/data`` (or
``$RESTOREKIT_DATA``) is there, else scikit-image's bundled photos. Each is
blurred by the course kernel with noise ``--sigma`` (seed = image index).
For every image both run ``--repeats`` times, alternating, after one untimed
call each; the median is that image's time, in wall-clock seconds and in
CPU seconds of this process (``time.process_time``: steadier on a busy
machine; with one thread it is the work done). PSNR is measured on outputs
clipped to [0, 1].

Run::

    .venv/bin/python benchmarks/bench_wiener_speed.py            # torch on 1 thread, like numpy's FFT
    .venv/bin/python benchmarks/bench_wiener_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def load_images(limit: int):
    """(names, tensors, source) from CBSD68 when present, else scikit-image's photos."""
    import torch

    from restorekit.imageio import list_images, load_image
    from restorekit.kernels import default_data_root

    root = default_data_root()
    if root is not None and (root / "CBSD68").is_dir():
        paths = list_images(root / "CBSD68")[:limit]
        return [p.name for p in paths], [load_image(p) for p in paths], f"CBSD68 (first {len(paths)})"
    from skimage import data, img_as_float

    names = ["astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry"][:limit]
    tensors = []
    for name in names:
        img = torch.from_numpy(img_as_float(getattr(data, name)())).float()
        tensors.append(img[None, None] if img.ndim == 2 else img.permute(2, 0, 1)[None].contiguous())
    return names, tensors, "scikit-image photos"


def skimage_wiener(y, kernel, balance):
    """scikit-image's Wiener filter channel by channel on a (1, C, H, W) tensor; returns numpy (C, H, W)."""
    import numpy as np
    from skimage.restoration import wiener

    identity = np.ones((1, 1))
    return np.stack([wiener(ch, kernel, balance, reg=identity, is_real=True, clip=False) for ch in y[0].numpy()])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=20, help="number of images (default 20)")
    parser.add_argument("--sigma", type=float, default=0.01, help="noise sigma, [0, 1] scale (default 0.01)")
    parser.add_argument("--snr", type=float, default=100.0, help="Wiener SNR, balance = 1/snr (default 100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per image and method (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as numpy's FFT)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    import restorekit
    from restorekit.bench import cpu_model
    from restorekit.degrade import Blur, Compose, Noise
    from restorekit.kernels import load_kernel
    from restorekit.metrics import psnr

    torch.set_num_threads(args.threads)
    kernel = load_kernel("course")
    kernel_np = kernel.numpy()
    ours = restorekit.create("wiener", snr=args.snr, clip=False)
    names, images, source = load_images(args.limit)
    degradation = Compose(Blur(kernel), Noise(args.sigma))

    print(f"Wiener SNR {args.snr:g} on {source}, course kernel, noise sigma {args.sigma:g}; "
          f"torch {torch.__version__} on {args.threads} thread(s), numpy {np.__version__}")
    print(f"Machine: {cpu_model()}, {torch.get_num_threads()} torch thread(s)\n")
    print("| image | size | restorekit s | skimage s | ratio | ratio (CPU time) | PSNR restorekit | PSNR skimage | max diff |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    for i, (name, x) in enumerate(zip(names, images)):
        y = degradation.apply(x, seed=i)
        a = ours(y, degradation)
        b = skimage_wiener(y, kernel_np, 1.0 / args.snr)
        times = {"ours": [], "sk": [], "ours_cpu": [], "sk_cpu": []}
        for _ in range(args.repeats):
            for key, call in (("ours", lambda: ours(y, degradation)),
                              ("sk", lambda: skimage_wiener(y, kernel_np, 1.0 / args.snr))):
                wall, cpu = time.perf_counter(), time.process_time()
                out = call()
                times[key].append(time.perf_counter() - wall)
                times[key + "_cpu"].append(time.process_time() - cpu)
                if key == "ours":
                    a = out
                else:
                    b = out
        med = {k: statistics.median(v) for k, v in times.items()}
        p_ours = psnr(a.clamp(0, 1), x)
        p_sk = psnr(np.clip(b, 0, 1), x[0].numpy())
        diff = float(np.abs(a[0].numpy() - b).max())
        rows.append((med["ours"], med["sk"], med["ours_cpu"], med["sk_cpu"], p_ours, p_sk, diff))
        size = "x".join(str(v) for v in x.shape[1:])
        print(f"| {name} | {size} | {med['ours']:.4f} | {med['sk']:.4f} | {med['sk'] / med['ours']:.2f}x "
              f"| {med['sk_cpu'] / med['ours_cpu']:.2f}x | {p_ours:.2f} | {p_sk:.2f} | {diff:.1e} |")
        sys.stdout.flush()
    mean = [sum(r[k] for r in rows) / len(rows) for k in range(6)]
    print(f"| **mean of {len(rows)}** | | **{mean[0]:.4f}** | **{mean[1]:.4f}** | **{mean[1] / mean[0]:.2f}x** "
          f"| **{mean[3] / mean[2]:.2f}x** | {mean[4]:.2f} | {mean[5]:.2f} | {max(r[6] for r in rows):.1e} |")
    print(f"\nrestorekit's wiener: {mean[0]:.4f} s per image, skimage.restoration.wiener: {mean[1]:.4f} s "
          f"(wall clock), ratio {mean[1] / mean[0]:.2f}x; in CPU time {mean[2]:.4f} vs {mean[3]:.4f} s, "
          f"ratio {mean[3] / mean[2]:.2f}x.")
    with open("/proc/loadavg", encoding="utf-8") as fh:
        print(f"load average during the run: {' '.join(fh.read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
