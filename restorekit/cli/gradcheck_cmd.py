"""``restorekit gradcheck``: validate the compiled ops against the reference autograd Functions."""

from __future__ import annotations

import argparse
import time

HELP = "check the compiled Linear/ReLU/fused ops against the Python reference (gradcheck, opcheck)"
DESCRIPTION = """\
Run restorekit's validation suite of the compiled ops torch.ops.restorekit.{linear, relu,
linear_relu} and their backward ops:

  compare        outputs and gradients equal those of the Python reference Functions
                 (float32 and float64; float16 and bfloat16 too on CUDA)
  gradcheck      torch.autograd.gradcheck in float64 (the op, and the reference itself)
  gradgradcheck  double backward, float64
  opcheck        torch.library.opcheck: schema, autograd registration, fake kernel, AOT dispatch
  analytic       closed-form dL/dW1, dL/db1 of FullyConnectedNet against autograd

on shapes with batch 1 and 0, with and without bias, non-contiguous and transposed inputs. Runs on
the CPU, and on CUDA too when a GPU is visible and the CUDA kernels are built.
Exit status: 0 all passed, 1 a check failed, 2 the extension is missing (the message says how
to build it).

Example:
  restorekit gradcheck               # CPU (+ CUDA when present)
  restorekit gradcheck --quick -v    # skip gradgradcheck and opcheck, list every check"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to run: auto = cpu, plus cuda when available (default)")
    parser.add_argument("--quick", action="store_true", help="skip the slower gradgradcheck and opcheck steps")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check, not only failures")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import InputError
    from ..nn import extension
    from ..testing import run_suite, summarize

    extension.load()  # ExtensionMissingError (exit 2) with the fix when not built
    if args.device == "auto":
        devices = None
    elif args.device == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda: no GPU is visible to torch")
        if not extension.cuda_built():
            raise InputError("--device cuda: restorekit._C was built without CUDA kernels; "
                             "rebuild with RESTOREKIT_CUDA=1")
        devices = ["cuda"]
    else:
        devices = ["cpu"]

    def progress(result) -> None:
        if args.verbose or not result.passed:
            print(result.line(), flush=True)

    t0 = time.perf_counter()
    results = run_suite(devices, opcheck=not args.quick, gradgradcheck=not args.quick, progress=progress)
    ran_on = sorted({r.device for r in results})
    print(f"devices: {', '.join(ran_on)}"
          + ("" if "cuda" in ran_on else " (CUDA skipped: no GPU visible or CUDA kernels not built)"))
    print(summarize(results).splitlines()[0] + f" in {time.perf_counter() - t0:.1f} s")
    return 0 if all(r.passed for r in results) else 1
