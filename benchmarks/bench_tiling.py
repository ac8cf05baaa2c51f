"""Tiled against whole-image restoration with ``dncnn`` and ``unet``: peak memory, time, PSNR difference.

Each case runs the real command line, ``restorekit restore IN.npy -o OUT.npy
--method M ...``, in a child process of its own, and reads that child's peak
resident memory (``ru_maxrss`` from ``os.wait4``: everything the process
held, torch and the plugins included, not only tensors) and its wall time.
The input is scikit-image's astronaut resized to the size asked for,
degraded as each model was trained (``dncnn``: Gaussian noise sigma 0.1;
``unet``: the course kernel, circular, and noise 0.01), stored as float
``.npy`` so that outputs compare without rounding. Modes:

``tiled``  the default, tiles sized from ``max_memory`` (768 MiB on the CPU)
``small``  ``--max-memory 256MiB``: more, smaller tiles
``tile256`` ``--tile 256``: tiles forced to 256x256
``whole``  ``--max-memory 1TiB``: one pass over the whole image (run only
           when its estimated need fits in the memory free now, with 2 GiB
           to spare, so the benchmark never pushes the machine into swap)

PSNR is measured against the clean image; the difference tiled - whole is
the number the issue bounds (0.05 dB). A ``startup`` case (a 64x64 image)
gives the fixed cost of starting the command, to read the times against.

Usage (one thread, as recorded in benchmarks/RESULTS.md)::

    OMP_NUM_THREADS=1 python benchmarks/bench_tiling.py --sizes 4000x3000,1600x1200 --out /tmp/tiling
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make_case(method: str, width: int, height: int, folder: Path) -> tuple[Path, Path, list[str]]:
    """Write the clean and degraded images; return their paths and the restore options."""
    import torch
    from skimage import data, transform

    from restorekit.degrade import Blur, Compose, Noise
    from restorekit.kernels import load_kernel

    clean_path = folder / f"clean-{width}x{height}.npy"
    if not clean_path.is_file():
        img = transform.resize(data.astronaut(), (height, width), anti_aliasing=True).astype("float32")
        np.save(clean_path, np.clip(img, 0, 1))
    clean = torch.from_numpy(np.load(clean_path)).permute(2, 0, 1)[None]
    if method == "dncnn":
        degradation, options = Noise(0.1), ["--sigma", "0.1"]
    else:
        degradation = Compose(Blur(load_kernel("course")), Noise(0.01))
        options = ["--kernel", "course", "--boundary", "circular", "--sigma", "0.01"]
    noisy_path = folder / f"{method}-in-{width}x{height}.npy"
    if not noisy_path.is_file():
        y = degradation.apply(clean, seed=0)[0].permute(1, 2, 0).numpy()
        np.save(noisy_path, y.astype("float32"))
    return clean_path, noisy_path, options


def run_child(command: list[str]) -> tuple[float, int, int]:
    """``(seconds, peak RSS bytes, exit status)`` of one child process."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    err = child.stderr.read().decode(errors="replace") if child.stderr else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        print(f"  failed ({child.returncode}): {err.strip().splitlines()[-1] if err.strip() else ''}", file=sys.stderr)
    return seconds, usage.ru_maxrss * 1024, child.returncode


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1).astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1.0 / mse)


_RESTORERS: dict = {}


def _restorer(method: str):
    import restorekit

    if method not in _RESTORERS:
        _RESTORERS[method] = restorekit.create(method)
    return _RESTORERS[method]


def whole_need(method: str, width: int, height: int) -> int:
    """The base's estimate of one whole-image pass (working memory only)."""
    r = _restorer(method)
    return int(r.bytes_per_pixel(r.net, 3) * width * height)


def tiles_used(method: str, width: int, height: int, option: str | None = None, value: str | None = None) -> str:
    """The tile size the base picks for this case (``whole`` when none), as the child will."""
    import torch

    from restorekit.tiling import parse_memory

    r = _restorer(method)
    saved = dict(r.config)
    if option == "--max-memory":
        r.config["max_memory"] = parse_memory(value)
    elif option == "--tile":
        r.config["tile"] = int(value)
    try:
        plan = r.plan(r.net, torch.empty(1, 3, height, width))
    finally:
        r.config.clear()
        r.config.update(saved)
    return "whole" if plan is None else f"{plan[1]}x{plan[0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="4000x3000,1600x1200", help="WIDTHxHEIGHT list")
    parser.add_argument("--methods", default="dncnn,unet")
    parser.add_argument("--modes", default="whole,tiled,small")
    parser.add_argument("--out", default="/tmp/restorekit-bench-tiling", help="scratch folder for the images")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    from restorekit.bench import cpu_model
    from restorekit.tiling import available_memory, format_bytes

    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "restorekit.cli.main"]
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    print(f"CPU: {cpu_model()}; {threads} thread(s) (OMP_NUM_THREADS); {os.cpu_count()} logical CPUs on the machine")
    tiny = folder / "tiny.npy"
    np.save(tiny, np.random.default_rng(0).random((64, 64, 3)).astype("float32"))
    rows = []
    for method in args.methods.split(","):
        seconds, peak, code = run_child(exe + ["restore", str(tiny), "-o", str(folder / "tiny-out.npy"),
                                               "--method", method, "--sigma", "0.1"] +
                                        (["--kernel", "course", "--boundary", "circular"] if method == "unet" else []))
        rows.append({"method": method, "size": "64x64", "mode": "startup", "seconds": round(seconds, 1),
                     "peak_gib": round(peak / 2**30, 3), "status": code})
        print(f"{method:6s} {'64x64':>10s} {'startup':8s} {seconds:7.1f} s  peak {format_bytes(peak)}")
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            clean_path, noisy_path, options = make_case(method, width, height, folder)
            clean = None
            whole_out = None
            for mode in args.modes.split(","):
                out = folder / f"{method}-{mode}-{width}x{height}.npy"
                extra = {"whole": ["--max-memory", "1TiB"], "tiled": [], "small": ["--max-memory", "256MiB"],
                         "tile256": ["--tile", "256"]}[mode]
                if mode == "whole":
                    need = whole_need(method, width, height) + 2**30  # the process itself besides
                    free = available_memory() or 0
                    if need + 2 * 2**30 > free:
                        print(f"{method:6s} {size:>10s} {mode:8s} not run: needs about {format_bytes(need)}, "
                              f"{format_bytes(free)} free")
                        rows.append({"method": method, "size": size, "mode": mode, "status": "not run",
                                     "need_gib": round(need / 2**30, 2), "free_gib": round(free / 2**30, 2)})
                        continue
                seconds, peak, code = run_child(exe + ["restore", str(noisy_path), "-o", str(out), "--method", method]
                                                + options + extra)
                row = {"method": method, "size": size, "mode": mode, "seconds": round(seconds, 1),
                       "peak_gib": round(peak / 2**30, 3), "status": code,
                       "tiles": tiles_used(method, width, height, *extra[:2])}
                if code == 0:
                    if clean is None:
                        clean = np.load(clean_path)
                    result = np.load(out)
                    row["psnr_db"] = round(psnr(result, clean), 4)
                    if mode == "whole":
                        whole_out = result
                    elif whole_out is not None:
                        row["psnr_minus_whole_db"] = round(row["psnr_db"] - psnr(whole_out, clean), 4)
                        row["max_abs_diff_to_whole"] = float(np.abs(result - whole_out).max())
                    out.unlink()
                rows.append(row)
                diff = f"  tiled-whole {row['psnr_minus_whole_db']:+.4f} dB" if "psnr_minus_whole_db" in row else ""
                print(f"{method:6s} {size:>10s} {mode:8s} {seconds:7.1f} s  peak {format_bytes(peak)}"
                      f"  tiles {row['tiles']}  PSNR {row.get('psnr_db', float('nan')):.3f} dB{diff}")
            whole_out = None
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_model(), "threads": threads, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
