"""``restorekit gradcheck``: run the op checks plugins register (restorekit's compiled ops among them)."""

from __future__ import annotations

import argparse
import time

HELP = "check compiled ops against their Python references (gradcheck, opcheck); --plugin for one plugin's"
DESCRIPTION = """\
Run the op checks that plugins register through the register_op_checks hook: restorekit's own
compiled ops torch.ops.restorekit.{linear, relu, linear_relu} (registered by the built-in
mlp_inpaint plugin, whose network runs on them) and any plugin's own ops. For each op and sample:

  compare           outputs and gradients equal those of the Python reference
                    (float32 and float64; float16 and bfloat16 too on CUDA)
  gradcheck         torch.autograd.gradcheck in float64 (the op, and the reference itself)
  gradgradcheck     double backward, float64
  opcheck           torch.library.opcheck: schema, autograd registration, fake kernel, AOT dispatch
  backward-opcheck  opcheck of every registered op the backward pass calls

A check fails, too, when torch warns that an op has no autograd kernel; a mismatch is shown by
its worst elements. restorekit's ops are checked on shapes with batch 1 and 0, with and without
bias, non-contiguous, transposed and 1x1 strided inputs, and the closed-form dL/dW1, dL/db1 of
FullyConnectedNet against autograd. Runs on the CPU, and on CUDA too when a GPU is visible.
Exit status: 0 all passed, 1 a check failed, 2 nothing to check or a setup problem (a missing
extension: the message says how to build it).

Examples:
  restorekit gradcheck                       # every plugin's op checks, CPU (+ CUDA when present)
  restorekit gradcheck --quick -v            # skip gradgradcheck and opcheck, list every check
  restorekit gradcheck --plugin myplugin     # only the op checks myplugin registers"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", metavar="NAME", default=None,
                        help="only the op checks this plugin registers (its entry-point name, as in "
                             "'restorekit plugins'; restorekit's own ops: mlp_inpaint)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to run: auto = cpu, plus cuda when available (default)")
    parser.add_argument("--quick", action="store_true",
                        help="skip the slower gradgradcheck, opcheck and backward-opcheck steps")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check, not only failures")


def _specs(plugin: str | None) -> list:
    from ..errors import InputError
    from ..registry import default_registry

    registry = default_registry()
    found = registry.op_checks(plugin)
    failed = {f.plugin: f.error for f in registry.failures if plugin is None or f.plugin == plugin}
    for name, error in failed.items():
        print(f"warning: plugin {name!r} failed: {error} (see 'restorekit plugins')")
    if plugin is not None and not found:
        loaded = {p.name for p in registry.plugins}
        with_checks = sorted({name for name, _ in registry.op_checks()})
        if plugin in failed:
            raise InputError(f"--plugin {plugin}: the plugin failed, so its op checks cannot run: {failed[plugin]}")
        if plugin not in loaded:
            raise InputError(f"--plugin {plugin}: no plugin of that name is loaded; plugins: "
                             f"{', '.join(sorted(loaded)) or 'none'} (see 'restorekit plugins')")
        raise InputError(f"--plugin {plugin}: that plugin registers no op checks (hook register_op_checks); "
                         f"plugins that do: {', '.join(with_checks) or 'none'}")
    if not found:
        raise InputError("no plugin registers op checks (hook register_op_checks); see 'restorekit plugins'")
    bad = [(name, spec) for name, spec in found if not hasattr(spec, "problems") or spec.problems()]
    if bad:
        name, spec = bad[0]
        why = "; ".join(spec.problems()) if hasattr(spec, "problems") else "not a restorekit.testing.OpCheckSpec"
        raise InputError(f"plugin {name!r} registered an unusable op check {spec!r}: {why}")
    return [spec for _, spec in found]


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import InputError
    from ..testing import run_op_checks, summarize

    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no GPU is visible to torch; run on the CPU (--device cpu or auto)")
    devices = None if args.device == "auto" else [args.device]
    specs = _specs(args.plugin)

    def progress(result) -> None:
        if args.verbose or not result.passed:
            print(result.line(), flush=True)

    t0 = time.perf_counter()
    results = run_op_checks(specs, devices, quick=args.quick, progress=progress)
    if not results:
        raise InputError(f"no op check ran on {args.device}: the registered checks name no device torch can use "
                         "here (or, for restorekit's CUDA checks, the extension lacks its CUDA kernels: rebuild "
                         "with RESTOREKIT_CUDA=1)")
    ran_on = sorted({r.device for r in results})
    print(f"devices: {', '.join(ran_on)}"
          + ("" if "cuda" in ran_on else " (CUDA skipped: no GPU visible or CUDA kernels not built)"))
    print(summarize(results).splitlines()[0] + f" in {time.perf_counter() - t0:.1f} s")
    return 0 if all(r.passed for r in results) else 1
