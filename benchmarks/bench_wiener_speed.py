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

    .venv/bin/python benchmarks/bench_wiener_speed.py              # one thread each (scipy.fft's default)
    .venv/bin/python benchmarks/bench_wiener_speed.py --threads 2  # two each: torch's + scipy.fft workers

Where restorekit saves: scikit-image computes the transfer functions of the
kernel and the regulariser again on every call (two more FFTs per channel)
and filters one channel per call; restorekit caches the filter per image
size and regularisation, filters all channels in one batched transform pair,
and lays the half spectrum along the axis where pocketfft is quicker (see
``restorekit.degrade.half_spectrum_axis``). With the same FFT library as
scikit-image (scipy's pocketfft) that is the whole difference; when the
optional ``ducc0`` (pocketfft's successor) is installed restorekit transforms
with it, and the table shows restorekit both ways, side by side.
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


def skimage_wiener(y, kernel, balance, workers=1):
    """scikit-image's Wiener filter channel by channel on a (1, C, H, W) tensor; returns numpy (C, H, W).

    scikit-image transforms with ``scipy.fft``; ``workers`` threads are given to it through
    ``scipy.fft.set_workers`` (its default is one), so both sides can use the same number of cores.
    """
    import numpy as np
    import scipy.fft
    from skimage.restoration import wiener

    identity = np.ones((1, 1))
    with scipy.fft.set_workers(workers):
        return np.stack([wiener(ch, kernel, balance, reg=identity, is_real=True, clip=False) for ch in y[0].numpy()])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=20, help="number of images (default 20)")
    parser.add_argument("--sigma", type=float, default=0.01, help="noise sigma, [0, 1] scale (default 0.01)")
    parser.add_argument("--snr", type=float, default=100.0, help="Wiener SNR, balance = 1/snr (default 100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per image and method (default 5)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for both sides: torch's (restorekit's FFTs use as many) and scipy.fft's "
                             "workers for scikit-image (default 1, scipy's default)")
    args = parser.parse_args(argv)

    import os

    import numpy as np
    import scipy
    import torch

    import restorekit
    from restorekit.bench import cpu_model
    from restorekit.degrade import Blur, Compose, Noise, cpu_fft_backend
    from restorekit.kernels import load_kernel
    from restorekit.metrics import psnr

    torch.set_num_threads(args.threads)
    kernel = load_kernel("course")
    kernel_np = kernel.numpy()
    ours = restorekit.create("wiener", snr=args.snr, clip=False)
    names, images, source = load_images(args.limit)
    degradation = Compose(Blur(kernel), Noise(args.sigma))
    backend = cpu_fft_backend()

    balance = 1.0 / args.snr
    # restorekit with its default FFT library, restorekit held to scipy's (when the default is another),
    # and scikit-image; each timed around the call only.
    methods = {"ours": lambda: ours(y, degradation)}
    if backend != "scipy":
        methods["ours_scipy"] = lambda: ours(y, degradation)
    methods["sk"] = lambda: skimage_wiener(y, kernel_np, balance, args.threads)
    versions = f"torch {torch.__version__}, scipy {scipy.__version__}, numpy {np.__version__}"
    if backend == "ducc0":
        import ducc0

        versions += f", ducc0 {ducc0.__version__}"
    print(f"Wiener SNR {args.snr:g} on {source}, course kernel, noise sigma {args.sigma:g}; {versions}; "
          f"{args.threads} thread(s) each")
    print(f"Machine: {cpu_model()}, {torch.get_num_threads()} torch thread(s); restorekit's CPU FFT: {backend}\n")
    scipy_cols = " restorekit (scipy FFT) s |" if "ours_scipy" in methods else ""
    scipy_ratio = " ratio, scipy FFT |" if "ours_scipy" in methods else ""
    print(f"| image | size | restorekit ({backend} FFT) s |{scipy_cols} skimage s | ratio |{scipy_ratio} "
          "ratio (CPU time) | PSNR restorekit | PSNR skimage | max diff |")
    print("| --- | --- | ---: |" + (" ---: |" if scipy_cols else "") + " ---: | ---: |"
          + (" ---: |" if scipy_cols else "") + " ---: | ---: | ---: | ---: |")
    rows = []
    for i, (name, x) in enumerate(zip(names, images)):
        y = degradation.apply(x, seed=i)
        outputs = {}
        times = {k: [] for k in methods} | {k + "_cpu": [] for k in methods}
        for repeat in range(args.repeats + 1):  # the first round is untimed (plans, caches)
            for key, call in methods.items():
                if key == "ours_scipy":
                    os.environ["RESTOREKIT_CPU_FFT"] = "scipy"
                wall, cpu = time.perf_counter(), time.process_time()
                outputs[key] = call()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                os.environ.pop("RESTOREKIT_CPU_FFT", None)
                if repeat:
                    times[key].append(wall)
                    times[key + "_cpu"].append(cpu)
        med = {k: statistics.median(v) for k, v in times.items()}
        a, b = outputs["ours"], outputs["sk"]
        p_ours = psnr(a.clamp(0, 1), x)
        p_sk = psnr(np.clip(b, 0, 1), x[0].numpy())
        diff = max(float(np.abs(outputs[k][0].numpy() - b).max()) for k in methods if k != "sk")
        row = {"ours": med["ours"], "sk": med["sk"], "ours_cpu": med["ours_cpu"], "sk_cpu": med["sk_cpu"],
               "ours_scipy": med.get("ours_scipy", 0.0), "p_ours": p_ours, "p_sk": p_sk, "diff": diff}
        rows.append(row)
        size = "x".join(str(v) for v in x.shape[1:])
        extra = f" {row['ours_scipy']:.4f} |" if scipy_cols else ""
        extra_ratio = f" {row['sk'] / row['ours_scipy']:.2f}x |" if scipy_cols else ""
        print(f"| {name} | {size} | {row['ours']:.4f} |{extra} {row['sk']:.4f} | {row['sk'] / row['ours']:.2f}x |"
              f"{extra_ratio} {row['sk_cpu'] / row['ours_cpu']:.2f}x | {p_ours:.2f} | {p_sk:.2f} | {diff:.1e} |")
        sys.stdout.flush()
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    extra = f" **{mean['ours_scipy']:.4f}** |" if scipy_cols else ""
    extra_ratio = f" **{mean['sk'] / mean['ours_scipy']:.2f}x** |" if scipy_cols else ""
    print(f"| **mean of {len(rows)}** | | **{mean['ours']:.4f}** |{extra} **{mean['sk']:.4f}** | "
          f"**{mean['sk'] / mean['ours']:.2f}x** |{extra_ratio} **{mean['sk_cpu'] / mean['ours_cpu']:.2f}x** | "
          f"{mean['p_ours']:.2f} | {mean['p_sk']:.2f} | {max(r['diff'] for r in rows):.1e} |")
    print(f"\nrestorekit's wiener ({backend} FFT): {mean['ours']:.4f} s per image, skimage.restoration.wiener: "
          f"{mean['sk']:.4f} s (wall clock), ratio {mean['sk'] / mean['ours']:.2f}x; in CPU time "
          f"{mean['ours_cpu']:.4f} vs {mean['sk_cpu']:.4f} s, ratio {mean['sk_cpu'] / mean['ours_cpu']:.2f}x.")
    if scipy_cols:
        print(f"restorekit's wiener held to scipy's FFT (the one scikit-image uses): {mean['ours_scipy']:.4f} s, "
              f"ratio {mean['sk'] / mean['ours_scipy']:.2f}x.")
    with open("/proc/loadavg", encoding="utf-8") as fh:
        print(f"load average during the run: {' '.join(fh.read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
