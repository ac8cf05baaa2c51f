"""``restorekit restore`` of one folder by one process and by ``torchrun`` with N processes, side by side.

Copies the first ``--images`` files of ``--data`` into a temporary folder, then runs, interleaved
round by round, the same command line

    restorekit restore IN -o OUT --method METHOD                          (1 process)
    torchrun --nproc-per-node N -m restorekit.cli.main restore IN -o OUT --method METHOD

each process on one thread (``OMP_NUM_THREADS=1``), and prints the wall time of every run (start
of the command to its end: interpreter start, imports and model load included, as a user waits
for it), the medians and their ratio, and checks that both wrote the same bytes.

Example::

    python benchmarks/bench_torchrun_restore.py --data ../shared/data/CBSD68 --images 8 --method dncnn
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/CBSD68", help="folder of images")
    parser.add_argument("--images", type=int, default=8, help="how many (first by name)")
    parser.add_argument("--method", default="dncnn")
    parser.add_argument("--nproc", type=int, default=2, help="processes for torchrun")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    bin_dir = Path(sys.executable).parent
    restorekit, torchrun = str(bin_dir / "restorekit"), str(bin_dir / "torchrun")
    names = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() == ".png")[: args.images]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"{len(names)} images from {args.data}, method {args.method}, 1 thread per process; CPU {cpu}, "
          f"{os.cpu_count()} logical CPUs; load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for p in names:
            shutil.copy(p, src / p.name)
        times: dict[str, list[float]] = {"1 process": [], f"torchrun {args.nproc}": []}
        for r in range(args.rounds):
            for label in times:
                out = Path(tmp) / f"out-{label.replace(' ', '-')}-{r}"
                if label == "1 process":
                    cmd = [restorekit, "restore", str(src), "-o", str(out), "--method", args.method]
                else:
                    cmd = [torchrun, "--nproc-per-node", str(args.nproc), "--master-port", str(_free_port()),
                           "-m", "restorekit.cli.main", "restore", str(src), "-o", str(out), "--method", args.method]
                seconds = _run(cmd)
                times[label].append(seconds)
                print(f"round {r + 1} {label}: {seconds:.1f} s")
        one, many = (Path(tmp) / f"out-{label.replace(' ', '-')}-0" for label in times)
        same = all((one / p.name).read_bytes() == (many / p.name).read_bytes() for p in names)
        medians = {label: statistics.median(v) for label, v in times.items()}
        for label, m in medians.items():
            print(f"{label}: median {m:.1f} s ({m / len(names):.2f} s per image)")
        a, b = medians.values()
        print(f"speed-up of torchrun {args.nproc} over 1 process: {a / b:.2f}x; identical outputs: {same}; "
              f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
