"""Course experiment: deblurring with the MNIST-digit 7x7 kernel, Wiener vs UNet vs Wiener+UNet.

The first 20 images of ``CBSD68`` (sorted by name; 20 rather than 68 to fit a
2-core CPU, the count the other deblurring rows use) are blurred circularly
by the course kernel (``restorekit.kernels.load_kernel("course")``) and get
Gaussian noise of sigma 0.005, 0.01 and 0.02 ([0, 1] scale), seeded per
image. ``restorekit.bench`` makes each degraded image once and gives it to
every method: ``wiener`` at SNR 100 (the course's setting), ``unet``,
``wiener+unet``, and scikit-image's ``unsupervised-wiener`` (the target's
anchor) when the example plugin ``restorekit-skimage`` is installed.

Run::

    .venv/bin/python benchmarks/course_deblur.py            # prints a markdown table

The course reported 32.2 / 28.1 / 22.9 (Wiener), 29.2 / 28.6 / 25.4 (UNet) and
31.0 / 30.4 / 27.6 dB (Wiener+UNet) at noise 0.005 / 0.01 / 0.02.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIGMAS = (0.005, 0.01, 0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = os.environ.get("RESTOREKIT_DATA", str(HERE.parents[1] / "shared" / "data"))
    parser.add_argument("--images", default=str(Path(data) / "CBSD68"), help="image folder (default CBSD68)")
    parser.add_argument("--limit", type=int, default=20, help="first N images, sorted by name (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="", help="also write the rows as JSON here")
    args = parser.parse_args(argv)

    import restorekit
    from restorekit.bench import run_benchmark

    methods = ["wiener:snr=100", "unet", "wiener+unet"]
    if "unsupervised-wiener" in restorekit.registry.default_registry().names():
        methods.append("unsupervised-wiener")
    else:
        print("unsupervised-wiener not registered (pip install -e examples/restorekit-skimage); left out",
              file=sys.stderr)
    result = run_benchmark(
        images=args.images, task="deblur", methods=methods, sigmas=list(SIGMAS), kernel="course",
        seed=args.seed, limit=args.limit, progress=True,
    )
    print(result.to_markdown())
    for skipped in result.skipped:
        print(f"skipped {skipped.method}: {skipped.reason}", file=sys.stderr)
    if args.json:
        result.write_json(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
