"""Peak memory of pnp's data step and solver state, per restored value (the figures of
``restorekit_plugins.pnp.restorer.DATA_STEP_BYTES_PER_VALUE``).

Each case runs in its own process (peak RSS cannot be reset): a 2-iteration ``pnp`` with an
identity denoiser (so only the data step and the solver's tensors count), after a small warm-up
call; the growth of the peak RSS over the call, divided by the restored values (3 x size^2).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pnp_data_step_memory.py [--sizes 1024 2048]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys

KINDS = ("closed", "padded", "cg", "sr")


def one(kind: str, size: int) -> float:
    import torch

    from restorekit import Restorer, hookimpl
    from restorekit.degrade import Blur, Compose, Downsample, Noise
    from restorekit.kernels import load_kernel
    from restorekit.registry import Registry
    from restorekit_plugins import pnp as pnp_plugin

    torch.set_num_threads(1)

    class Ident(Restorer):
        name = "ident"
        tasks = frozenset({"denoise"})
        uses_noise_level = True

        def restore(self, image, degradation=None):
            return image.clone()

    class Plugin:
        @hookimpl
        def register_restorers(self, register):
            register(Ident)

    reg = Registry(entry_points=False)
    reg.add_plugin(pnp_plugin, name="pnp")
    reg.add_plugin(Plugin(), name="ident")
    if kind == "sr":  # x2, the closed form of Zhao et al.
        d, shape = Compose(Downsample(2), Noise(0.0)), (1, 3, size // 2, size // 2)
    else:
        d = Compose(Blur(load_kernel("levin:1"), "circular" if kind == "closed" else "reflect"), Noise(0.01))
        shape = (1, 3, size, size)
    pnp = reg.create("pnp", denoiser="ident", iterations=2, progress=False,
                     reflect_step="cg" if kind == "cg" else "pad")
    y = torch.rand(shape)
    pnp(y[..., :32, :32].contiguous(), d)  # warm-up: allocator and FFT plans
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    pnp(y, d)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return (after - before) / (3 * size * size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--one", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(f"{one(args.one[0], int(args.one[1])):.1f}")
        return
    print("| data step | " + " | ".join(f"{s}x{s} (B / value)" for s in args.sizes) + " |")
    print("|---|" + "---|" * len(args.sizes))
    for kind in KINDS:
        row = [subprocess.run([sys.executable, __file__, "--one", kind, str(s)], capture_output=True, text=True,
                              check=True).stdout.strip() for s in args.sizes]
        print(f"| {kind} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
