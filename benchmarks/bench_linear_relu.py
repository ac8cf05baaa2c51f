"""Forward+backward time and activation memory of the fused compiled Linear+ReLU, side by side.

Three implementations of the same computation, timed interleaved in one run (so machine load
hits them alike; the median of the rounds is reported):

  fused    torch.ops.restorekit.linear_relu / linear: the compiled ops as restorekit.nn calls them
           (C++ kernels and C++ autograd; what torch.compile traces too)
  python   restorekit.nn.LinearFunction / ReLUFunction (hand-written Python autograd Functions)
  torch    torch.relu(torch.nn.functional.linear(...))  (plain PyTorch)

Sizes:
  course   the course MLP, batch 32, 784 -> 32 -> 32 -> 784 (Linear+ReLU, Linear+ReLU, Linear)
  large    one Linear+ReLU layer, batch 4096, 1024 -> 1024

Each step is forward, then backward of a fixed upstream gradient, with .grad reset to None between
steps. Every parameter needs a gradient; the input does in the large case (a hidden layer), not in
the course case (the network's input is data). "saved" is the memory autograd keeps for backward
beyond the inputs and parameters (unique storages of the saved tensors, measured with
torch.autograd.graph.saved_tensors_hooks). Timings are interleaved round by round; the table gives
the median and the minimum over rounds (on a shared machine the minimum is the less disturbed
figure), and ratios of both.

Run:  python benchmarks/bench_linear_relu.py [--rounds 41] [--threads N] [--only course|large]
CPU only: a GPU, if present, is not benchmarked here.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from restorekit.nn import LinearFunction, ReLUFunction, extension


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def make_layers(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for din, dout in zip(sizes[:-1], sizes[1:]):
        bound = 1 / din ** 0.5
        w = ((torch.rand(dout, din, generator=g) * 2 - 1) * bound).requires_grad_()
        b = ((torch.rand(dout, generator=g) * 2 - 1) * bound).requires_grad_()
        layers.append((w, b))
    return layers


def _fused(x, layers, linear, linear_relu):
    for i, (w, b) in enumerate(layers):
        last = i == len(layers) - 1 and len(layers) > 1
        x = linear(x, w, b) if last else linear_relu(x, w, b)
    return x


def forward_fused(x, layers):
    """What restorekit.nn.FullyConnectedNet runs: torch.ops.restorekit.*."""
    R = torch.ops.restorekit
    return _fused(x, layers, R.linear.default, R.linear_relu.default)


def forward_python(x, layers):
    for i, (w, b) in enumerate(layers):
        x = LinearFunction.apply(x, w, b)
        if not (i == len(layers) - 1 and len(layers) > 1):
            x = ReLUFunction.apply(x)
    return x


def forward_torch(x, layers):
    for i, (w, b) in enumerate(layers):
        x = F.linear(x, w, b)
        if not (i == len(layers) - 1 and len(layers) > 1):
            x = torch.relu(x)
    return x


VARIANTS = {"fused": forward_fused, "python": forward_python, "torch": forward_torch}


def step(forward, x, layers, upstream):
    x.grad = None
    for w, b in layers:
        w.grad = None
        b.grad = None
    forward(x, layers).backward(upstream)


def saved_bytes(forward, x, layers) -> tuple[int, int]:
    """(bytes saved beyond the input, the parameters and the result; all saved bytes), unique storages.

    The first figure is the activation memory autograd holds only because of backward: the input,
    the parameters and the returned result are alive anyway.
    """
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward(x, layers)
    mine = {x.untyped_storage().data_ptr(), out.untyped_storage().data_ptr()}
    mine |= {p.untyped_storage().data_ptr() for wb in layers for p in wb}
    del out
    extra = sum(n for ptr, n in storages.items() if ptr not in mine)
    return extra, sum(storages.values())


def gemm_floor(x, layers, upstream, rounds, iters) -> float:
    """Minimum time of just the forward and backward matrix products of the same step."""
    xs = x.detach()
    g = upstream
    with torch.no_grad():
        def products():
            h, hs = xs, []
            for w, _ in layers:
                hs.append(h)
                h = torch.mm(h, w.t())
            gr = g
            for i in reversed(range(len(layers))):
                w = layers[i][0]
                torch.mm(gr.t(), hs[i])
                if i > 0 or x.requires_grad:
                    gr = torch.mm(gr, w)
                else:
                    break
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(iters):
                products()
            best = min(best, (time.perf_counter() - t) / iters)
    return best


def bench(name, sizes, batch, rounds, min_time, input_grad):
    torch.manual_seed(0)
    layers = make_layers(sizes)
    x = torch.randn(batch, sizes[0], requires_grad=input_grad)
    upstream = torch.randn(batch, sizes[-1])
    # correctness first: the three agree
    outs = {}
    for v, fwd in VARIANTS.items():
        step(fwd, x, layers, upstream)
        outs[v] = ([x.grad.clone()] if input_grad else []) + [p.grad.clone() for wb in layers for p in wb]
    for v in ("python", "torch"):
        for a, e in zip(outs["fused"], outs[v]):
            torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)
    # warm up, then choose the steps per timing from the fastest of a few probes (a probe that
    # lands in a stall on a busy machine must not decide it)
    for fwd in VARIANTS.values():
        for _ in range(5):
            step(fwd, x, layers, upstream)
    probes = []
    for _ in range(7):
        t0 = time.perf_counter()
        step(forward_torch, x, layers, upstream)
        probes.append(time.perf_counter() - t0)
    iters = max(1, round(min_time / min(probes)))
    times = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for v, fwd in VARIANTS.items():
            t = time.perf_counter()
            for _ in range(iters):
                step(fwd, x, layers, upstream)
            times[v].append((time.perf_counter() - t) / iters)
    med = {v: statistics.median(ts) for v, ts in times.items()}
    floor = gemm_floor(x, layers, upstream, rounds, iters)
    mem = {v: saved_bytes(fwd, x, layers) for v, fwd in VARIANTS.items()}
    arch = " -> ".join(str(s) for s in sizes)
    low = {v: min(ts) for v, ts in times.items()}
    print(f"\n[{name}] batch {batch}, {arch}, input grad {'yes' if input_grad else 'no'}: forward+backward, "
          f"{rounds} rounds x {iters} steps")
    print(f"  {'variant':<9} {'median':>11} {'min':>11}   saved for backward: beyond input, params, result / all")
    for v in VARIANTS:
        extra, total = mem[v]
        scale, label = (1e6, "us") if med[v] < 1e-2 else (1e3, "ms")
        print(f"  {v:<9} {med[v] * scale:>8.1f} {label} {low[v] * scale:>8.1f} {label}"
              f"   {extra / 2**20:>9.3f} MiB / {total / 2**20:>8.3f} MiB")
    for peer in ("torch", "python"):
        print(f"  fused vs {peer:<6}: {med[peer] / med['fused']:.2f}x faster (median), "
              f"{low[peer] / low['fused']:.2f}x (min)")
    print(f"  the bare matrix products alone (torch.mm, same shapes, min): {floor * 1e3:.3f} ms = "
          f"{floor / low['fused']:.0%} of the fused step's min")
    print(f"  activation memory saved for backward: fused {mem['fused'][0] / 2**20:.3f} MiB, "
          f"python {mem['python'][0] / 2**20:.3f} MiB, torch {mem['torch'][0] / 2**20:.3f} MiB")
    return med, mem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=41, help="timing rounds of the course case (large: a sixth)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--only", choices=("course", "large"), default=None)
    parser.add_argument("--min-time", type=float, default=0.02,
                        help="seconds per timing of the course case (default 0.02: short timings, many rounds)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    extension.load()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    torch.set_grad_enabled(True)
    if args.only in (None, "course"):
        bench("course", [784, 32, 32, 784], 32, args.rounds, args.min_time, input_grad=False)
    if args.only in (None, "large"):
        bench("large", [1024, 1024], 4096, max(5, args.rounds // 6), 0.0, input_grad=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
