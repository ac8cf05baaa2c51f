"""bfloat16 autocast against float32 for the shipped prior, training and restoring, side by side in one run.

``--bf16 auto`` trains under bfloat16 autocast where the CPU computes
bfloat16 natively (AMX-BF16 or AVX512-BF16, :mod:`restorekit.training.machine`),
and ``precision=bfloat16`` restores with it. This script measures both claims
on this machine, one thread:

* **training**: one Adam step of the shipped ``drunet`` architecture on a
  batch of ``--batch`` random ``--patch`` x ``--patch`` crops (the forward
  under autocast, the loss in float32), float32 and bfloat16 alternating,
  ``--repeats`` times each after one untimed step; the median per step;
* **restoring**: ``drunet`` (the shipped weights) on ``(1, 3, 321, 481)``
  noisy crops of scikit-image's ``astronaut`` photo (or ``--image``), sigma
  ``--sigma``, ``precision=float32`` against ``precision=bfloat16``,
  alternating; the median seconds and the PSNR of each.

It prints the CPU, whether it has AMX-BF16 / AVX512-BF16, and each ratio
(float32 time over bfloat16 time). Where the CPU emulates bfloat16 the ratio
is below 1: that is why ``auto`` keeps float32 there.

Run::

    .venv/bin/python benchmarks/bench_bf16.py
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each variant (default 5)")
    parser.add_argument("--batch", type=int, default=16, help="training batch (default 16, the preset's)")
    parser.add_argument("--patch", type=int, default=96, help="training crop side (default 96)")
    parser.add_argument("--sigma", type=float, default=0.1, help="noise sigma when restoring (default 0.1)")
    args = parser.parse_args(argv)

    import numpy as np
    import skimage.data
    import torch

    import restorekit
    from restorekit.degrade import Noise
    from restorekit.metrics import psnr
    from restorekit.training.machine import cpu_has_amx_bf16, cpu_has_avx512_bf16, cpu_name
    from restorekit_plugins.drunet.model import DRUNet

    torch.set_num_threads(1)
    print(f"CPU: {cpu_name()}; AMX-BF16: {cpu_has_amx_bf16()}; AVX512-BF16: {cpu_has_avx512_bf16()}; "
          f"torch {torch.__version__}, 1 thread")

    # ---------------------------------------------------------------- training step
    torch.manual_seed(0)
    net = DRUNet(3, (16, 32, 64, 128), 2)
    optimizer = torch.optim.Adam(net.parameters(), 1e-4)
    inputs = torch.rand(args.batch, 4, args.patch, args.patch)
    targets = torch.rand(args.batch, 3, args.patch, args.patch)

    def step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(inputs)
        loss = ((out.float() - targets) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    times: dict[bool, list[float]] = {False: [], True: []}
    for bf16 in (False, True):
        step(bf16)
    for _ in range(args.repeats):
        for bf16 in (False, True):
            start = time.perf_counter()
            step(bf16)
            times[bf16].append(time.perf_counter() - start)
    f32, bf = statistics.median(times[False]), statistics.median(times[True])
    print(f"training step (batch {args.batch} of {args.patch}x{args.patch}): float32 {f32:.3f} s, "
          f"bfloat16 {bf:.3f} s: bfloat16 {f32 / bf:.2f}x faster")

    # ---------------------------------------------------------------- restoring
    photo = skimage.data.astronaut()[:321, :481].astype(np.float32) / 255
    clean = torch.from_numpy(photo).permute(2, 0, 1)[None].contiguous()
    noisy = Noise(args.sigma).apply(clean, seed=0)
    restorers = {p: restorekit.create("drunet", precision=p) for p in ("float32", "bfloat16")}
    seconds: dict[str, list[float]] = {p: [] for p in restorers}
    scores = {}
    for p, r in restorers.items():
        scores[p] = float(psnr(r(noisy, Noise(args.sigma)), clean))
    for _ in range(args.repeats):
        for p, r in restorers.items():
            start = time.perf_counter()
            r(noisy, Noise(args.sigma))
            seconds[p].append(time.perf_counter() - start)
    f32, bf = statistics.median(seconds["float32"]), statistics.median(seconds["bfloat16"])
    print(f"drunet, 481x321, sigma {args.sigma}: float32 {f32:.3f} s ({scores['float32']:.3f} dB), bfloat16 "
          f"{bf:.3f} s ({scores['bfloat16']:.3f} dB): bfloat16 {f32 / bf:.2f}x faster, "
          f"{scores['bfloat16'] - scores['float32']:+.3f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
