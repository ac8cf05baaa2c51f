"""Check a compiled op against a reference function, the way restorekit checks its own ops.

:func:`check_op` runs, for every sample input:

1. **compare** -- outputs and gradients (for a fixed random upstream gradient) of ``op`` and
   ``reference`` match, in each dtype asked for, within :data:`DEFAULT_TOLERANCES`;
2. **gradcheck** -- ``torch.autograd.gradcheck`` of ``op`` (and of ``reference``) in float64;
3. **gradgradcheck** -- ``torch.autograd.gradgradcheck`` of ``op`` in float64, when asked;
4. **opcheck** -- ``torch.library.opcheck`` (schema, autograd registration, fake kernel,
   AOT dispatch) when ``op`` is a ``torch.ops`` operator.

:func:`run_suite` is the whole suite for restorekit's own ops (what ``restorekit gradcheck``
runs). Nothing here imports torch before it is called.

Examples
--------
A plugin author checking a compiled op ``torch.ops.myplugin.scale`` against a Python reference::

    import torch
    from restorekit.testing import Sample, check_op

    def samples(dtype, device):
        x = torch.randn(4, 3, dtype=dtype, device=device)
        yield Sample("4x3", (x, 2.0))
        yield Sample("transposed", (torch.randn(3, 4, dtype=dtype, device=device).t(), 2.0))

    check_op(torch.ops.myplugin.scale, lambda x, s: x * s, samples)   # raises OpCheckError on failure

A runnable version with a stand-in op (``torch.mul`` checked against a lambda):

>>> import torch
>>> from restorekit.testing import Sample, check_op
>>> def samples(dtype, device):
...     yield Sample("3x2", (torch.randn(3, 2, dtype=dtype, device=device), torch.randn(3, 2, dtype=dtype)))
>>> results = check_op(torch.mul, lambda a, b: a * b, samples, gradgradcheck=True)
>>> all(r.passed for r in results), sorted({r.check for r in results})
(True, ['compare', 'gradcheck', 'gradgradcheck', 'reference-gradcheck'])
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "CheckResult", "DEFAULT_TOLERANCES", "OpCheckError", "Sample", "check_op", "run_suite", "summarize",
]

#: (rtol, atol) used by the compare step, by dtype name. The atol of float16/bfloat16 is relative
#: to the largest magnitude of the expected tensor (their results are compared with a reference
#: computed in float32).
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-9),
    "float32": (1e-5, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (4e-2, 4e-2),
}


@dataclasses.dataclass
class Sample:
    """One set of arguments for an op: ``op(*args)``.

    Parameters
    ----------
    name : str
        Shown in reports (``"batch 0"``, ``"transposed x"``...).
    args : tuple
        Positional arguments; tensors among them are the op's inputs.
    requires_grad : sequence of bool, optional
        Which args get ``requires_grad`` (default: every floating-point tensor).
    """

    name: str
    args: tuple
    requires_grad: Sequence[bool] | None = None


@dataclasses.dataclass
class CheckResult:
    """The outcome of one check of one sample."""

    op: str
    sample: str
    check: str  # compare | gradcheck | gradgradcheck | opcheck | reference-gradcheck | analytic
    dtype: str
    device: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        status = "ok  " if self.passed else "FAIL"
        text = f"{status} {self.op:<22} {self.check:<19} {self.dtype:<9} {self.device:<5} {self.sample}"
        return text + (f"\n     {self.detail}" if self.detail and not self.passed else "")


class OpCheckError(AssertionError):
    """Raised by :func:`check_op` when a check fails; ``results`` holds every result."""

    def __init__(self, message: str, results: list[CheckResult]):
        super().__init__(message)
        self.results = results


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def _op_name(op) -> str:
    for attr in ("_qualified_op_name", "__name__"):
        if hasattr(op, attr):
            return str(getattr(op, attr))
    name = getattr(op, "name", None)
    if callable(name):
        return str(name())
    return repr(op)


def _is_torch_op(op) -> bool:
    import torch

    return isinstance(op, (torch._ops.OpOverload, torch._ops.OpOverloadPacket))


def _samples_for(samples, dtype, device) -> list[Sample]:
    import torch

    if callable(samples):
        out = list(samples(dtype, device))
    else:  # fixed samples: cast their floating tensors (layouts that are not dense become contiguous)
        out = []
        for s in samples:
            s = s if isinstance(s, Sample) else Sample(f"sample {len(out)}", tuple(s))
            args = tuple(a.to(device=device, dtype=dtype) if isinstance(a, torch.Tensor) and a.is_floating_point()
                         else a for a in s.args)
            out.append(Sample(s.name, args, s.requires_grad))
    return [s if isinstance(s, Sample) else Sample(f"sample {i}", tuple(s)) for i, s in enumerate(out)]


def _with_grad(sample: Sample) -> tuple[tuple, list[int]]:
    """The sample's args as fresh leaves (same strides) with requires_grad set; indices that need grad."""
    import torch

    args, idx = [], []
    for i, a in enumerate(sample.args):
        if isinstance(a, torch.Tensor):
            wants = a.is_floating_point() if sample.requires_grad is None else bool(sample.requires_grad[i])
            a = a.detach()
            if wants:
                a = a.requires_grad_(True)
                idx.append(i)
        args.append(a)
    return tuple(args), idx


def _as_tuple(out) -> tuple:
    return out if isinstance(out, (tuple, list)) else (out,)


def _compare(op, reference, sample: Sample, dtype, seed: int, tolerances) -> str:
    """'' if outputs and gradients of op and reference agree, else what differs."""
    import torch

    rtol, atol = tolerances[_dtype_name(dtype)]
    low = dtype in (torch.float16, torch.bfloat16)
    args, idx = _with_grad(sample)
    # reference in float32 for the low-precision dtypes (their own rounding is what we measure)
    ref_args = tuple(a.detach().float().requires_grad_(a.requires_grad) if low and isinstance(a, torch.Tensor)
                     and a.is_floating_point() else a for a in args) if low else \
        tuple(a.detach().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a for a in args)
    out = _as_tuple(op(*args))
    ref = _as_tuple(reference(*ref_args))
    if len(out) != len(ref):
        return f"op returned {len(out)} outputs, reference {len(ref)}"
    problems = []

    def close(name, a, e):
        if a is None or e is None:
            if (a is None) != (e is None):
                problems.append(f"{name}: one is None")
            return
        if a.shape != e.shape:
            problems.append(f"{name}: shape {list(a.shape)} vs reference {list(e.shape)}")
            return
        e = e.to(a.dtype) if not low else e
        scale = max(1.0, float(e.abs().max())) if low and e.numel() else 1.0
        try:
            torch.testing.assert_close(a.to(e.dtype), e, rtol=rtol, atol=atol * scale, equal_nan=False)
        except AssertionError as exc:
            problems.append(f"{name}: " + " ".join(str(exc).split())[:300])

    for k, (a, e) in enumerate(zip(out, ref)):
        close(f"output {k}", a.detach(), e.detach())
    diff_out = [(o, r) for o, r in zip(out, ref) if o.requires_grad and r.requires_grad]
    if idx and diff_out:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        ups = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.device) for o, _ in diff_out]
        inputs = [args[i] for i in idx]
        ref_inputs = [ref_args[i] for i in idx]
        g = torch.autograd.grad([o for o, _ in diff_out], inputs, [u.to(o.dtype) for u, (o, _) in zip(ups, diff_out)],
                                allow_unused=True)
        gr = torch.autograd.grad([r for _, r in diff_out], ref_inputs,
                                 [u.to(r.dtype) for u, (_, r) in zip(ups, diff_out)], allow_unused=True)
        for i, a, e in zip(idx, g, gr):
            close(f"grad of arg {i}", a, e)
    return "; ".join(problems)


def _run(results: list[CheckResult], op_name: str, sample: str, check: str, dtype: str, device: str, fn) -> None:
    t0 = time.perf_counter()
    try:
        detail = fn()
        passed = not detail
    except Exception as exc:  # a failing check is a result, not a crash
        passed, detail = False, f"{type(exc).__name__}: " + " ".join(str(exc).split())[:500]
    results.append(CheckResult(op_name, sample, check, dtype, device, passed, detail or "",
                               time.perf_counter() - t0))


def check_op(
    op: Callable,
    reference: Callable,
    samples: Callable[[Any, Any], Iterable[Sample]] | Iterable[Sample | tuple],
    *,
    dtypes: Sequence[Any] | None = None,
    device: str = "cpu",
    tolerances: dict[str, tuple[float, float]] | None = None,
    gradcheck: bool = True,
    gradgradcheck: bool = False,
    opcheck: bool | None = None,
    check_reference: bool = True,
    seed: int = 0,
    name: str | None = None,
    raise_on_failure: bool = True,
) -> list[CheckResult]:
    """Check ``op`` against ``reference`` on every sample: compare, gradcheck, gradgradcheck, opcheck.

    Parameters
    ----------
    op : callable
        The op under test, e.g. ``torch.ops.myplugin.myop`` (then ``opcheck`` runs too).
    reference : callable
        A trusted implementation with the same signature (e.g. an ``autograd.Function.apply``).
    samples : callable or iterable
        ``samples(dtype, device)`` yielding :class:`Sample` (preferred: it can build
        non-contiguous or transposed inputs in each dtype), or fixed samples whose floating
        tensors are cast with ``.to(device, dtype)``.
    dtypes : sequence of torch.dtype, optional
        Dtypes for the compare step (default float32 and float64). gradcheck, gradgradcheck and
        opcheck always run in float64.
    device : str
        Where the tensors live (``"cpu"``, ``"cuda"``).
    tolerances : dict, optional
        ``{dtype name: (rtol, atol)}`` overriding :data:`DEFAULT_TOLERANCES`.
    gradcheck, gradgradcheck : bool
        Run ``torch.autograd.gradcheck`` / ``gradgradcheck`` on ``op`` (float64).
        ReLU-like kinks make numerical derivatives wrong within ``eps`` (1e-6) of the kink: keep
        samples away from them.
    opcheck : bool, optional
        Run ``torch.library.opcheck`` (default: when ``op`` is a ``torch.ops`` operator).
    check_reference : bool
        Also gradcheck ``reference`` itself (so a wrong reference cannot vouch for ``op``).
    seed : int
        Seeds the upstream gradients of the compare step.
    name : str, optional
        Name used in the results (default: the op's name).
    raise_on_failure : bool
        Raise :class:`OpCheckError` listing the failures (default), or just return the results.

    Returns
    -------
    list of CheckResult
    """
    import torch

    dtypes = list(dtypes) if dtypes is not None else [torch.float32, torch.float64]
    tol = dict(DEFAULT_TOLERANCES, **(tolerances or {}))
    op_name = name or _op_name(op)
    if opcheck is None:
        opcheck = _is_torch_op(op)
    results: list[CheckResult] = []
    dev = str(device)
    for dtype in dtypes:
        for s in _samples_for(samples, dtype, device):
            _run(results, op_name, s.name, "compare", _dtype_name(dtype), dev,
                 lambda s=s, dtype=dtype: _compare(op, reference, s, dtype, seed, tol))
    f64 = _samples_for(samples, torch.float64, device)
    for s in f64:
        if gradcheck:
            _run(results, op_name, s.name, "gradcheck", "float64", dev,
                 lambda s=s: "" if torch.autograd.gradcheck(op, _with_grad(s)[0]) else "gradcheck returned False")
            if check_reference:
                _run(results, op_name, s.name, "reference-gradcheck", "float64", dev,
                     lambda s=s: "" if torch.autograd.gradcheck(reference, _with_grad(s)[0]) else "returned False")
        if gradgradcheck:
            _run(results, op_name, s.name, "gradgradcheck", "float64", dev,
                 lambda s=s: "" if torch.autograd.gradgradcheck(op, _with_grad(s)[0]) else "returned False")
        if opcheck:
            _run(results, op_name, s.name, "opcheck", "float64", dev,
                 lambda s=s: _opcheck(op, _with_grad(s)[0]))
    failed = [r for r in results if not r.passed]
    if failed and raise_on_failure:
        raise OpCheckError(f"{len(failed)} of {len(results)} checks of {op_name} failed:\n"
                           + "\n".join(r.line() for r in failed), results)
    return results


def _opcheck(op, args) -> str:
    import torch

    report = torch.library.opcheck(op, args, raise_exception=False)
    bad = {k: v for k, v in report.items() if v != "SUCCESS"}
    return "; ".join(f"{k}: {' '.join(str(v).split())[:300]}" for k, v in bad.items())


def summarize(results: Sequence[CheckResult]) -> str:
    """'N checks, N passed, N failed' plus the failures."""
    failed = [r for r in results if not r.passed]
    head = f"{len(results)} checks, {len(results) - len(failed)} passed, {len(failed)} failed"
    return "\n".join([head] + [r.line() for r in failed])


# ---- restorekit's own suite ---------------------------------------------------------------------
def _linear_samples(dtype, device, seed: int = 0) -> list[Sample]:
    """Shapes the compiled linear ops are checked on: batch 1 and 0, bias and none, strided, transposed."""
    import torch

    gen = torch.Generator().manual_seed(seed)

    def t(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)

    return [
        Sample("batch 3, bias", (t(3, 5), t(4, 5), t(4))),
        Sample("batch 1, bias", (t(1, 5), t(4, 5), t(4))),
        Sample("batch 0, bias", (t(0, 5), t(4, 5), t(4))),
        Sample("batch 3, no bias", (t(3, 5), t(4, 5), None)),
        Sample("non-contiguous x, weight, bias", (t(3, 10)[:, ::2], t(4, 10)[:, 1::2], t(8)[::2])),
        Sample("transposed x and weight", (t(5, 3).t(), t(5, 4).t(), t(4))),
        Sample("1 input feature", (t(6, 1), t(2, 1), t(2))),
    ]


def _relu_samples(dtype, device, seed: int = 1) -> list[Sample]:
    import torch

    gen = torch.Generator().manual_seed(seed)

    def t(*shape):  # kept at least 0.05 away from the kink at 0
        v = torch.randn(*shape, generator=gen, dtype=torch.float64)
        v = v + 0.05 * torch.where(v >= 0, 1.0, -1.0).to(torch.float64)
        return v.to(device=device, dtype=dtype)

    return [
        Sample("4x6", (t(4, 6),)),
        Sample("batch 0", (t(0, 6),)),
        Sample("non-contiguous", (t(4, 12)[:, ::2],)),
        Sample("transposed", (t(6, 4).t(),)),
        Sample("3-D", (t(2, 3, 4),)),
    ]


def _backward_op_samples(device) -> list[tuple[str, Any, tuple]]:
    import torch

    gen = torch.Generator().manual_seed(2)

    def t(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device)

    x, w, g = t(3, 5), t(4, 5), t(3, 4)
    out = torch.relu(t(3, 4))
    R = torch.ops.restorekit
    return [
        ("all grads", R.linear_backward.default, (g, x, w, [True, True, True])),
        ("weight grad only", R.linear_backward.default, (g, x, w, [False, True, False])),
        ("transposed grad_out", R.linear_backward.default, (t(4, 3).t(), x, w, [True, True, True])),
        ("all grads", R.linear_relu_backward.default, (g, x, w, out, [True, True, True])),
        ("no bias grad", R.linear_relu_backward.default, (g, x, w, out, [True, True, False])),
        ("batch 0", R.linear_relu_backward.default, (t(0, 4), t(0, 5), w, t(0, 4), [True, True, True])),
        ("4x3", R.relu_backward.default, (g, out)),
    ]


def run_suite(devices: Sequence[str] | None = None, *, opcheck: bool = True, gradgradcheck: bool = True,
              progress: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Check restorekit's compiled ops against the reference Functions (``restorekit gradcheck``).

    For each device: ``linear``, ``relu`` and ``linear_relu`` through :func:`check_op` on the
    shapes of ``_linear_samples`` / ``_relu_samples`` (compare in float32 and float64, plus
    float16 and bfloat16 on CUDA; gradcheck, gradgradcheck, opcheck in float64); opcheck of the
    three backward ops; and the closed-form first-layer gradients of ``FullyConnectedNet`` against
    autograd, with the compiled and the Python backends.

    Parameters
    ----------
    devices : sequence of str, optional
        Default ``["cpu"]``, plus ``"cuda"`` when a GPU is visible and the CUDA kernels are built.
    opcheck, gradgradcheck : bool
        Include these (slower) checks.
    progress : callable, optional
        Called with each result as it is produced.

    Raises
    ------
    ExtensionMissingError
        When ``restorekit._C`` is not built (with what to do).
    """
    import torch

    from .nn import LinearFunction, ReLUFunction, extension

    extension.load()
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and extension.cuda_built() else [])
    R = torch.ops.restorekit

    def linear_relu_ref(x, w, b=None):
        return ReLUFunction.apply(LinearFunction.apply(x, w, b))

    results: list[CheckResult] = []

    def extend(new):
        for r in new:
            results.append(r)
            if progress:
                progress(r)

    for device in devices:
        dtypes = [torch.float32, torch.float64]
        if device.startswith("cuda"):
            dtypes += [torch.float16, torch.bfloat16]
        for name, op, ref, samples in [
            ("restorekit::linear", R.linear.default, LinearFunction.apply, _linear_samples),
            ("restorekit::relu", R.relu.default, ReLUFunction.apply, _relu_samples),
            ("restorekit::linear_relu", R.linear_relu.default, linear_relu_ref, _linear_samples),
        ]:
            extend(check_op(op, ref, samples, dtypes=dtypes, device=device, gradgradcheck=gradgradcheck,
                            opcheck=opcheck, name=name, raise_on_failure=False))
        if opcheck:
            for sample, op, args in _backward_op_samples(device):
                new: list[CheckResult] = []
                _run(new, f"restorekit::{op._opname}", sample, "opcheck", "float64", device,
                     lambda op=op, args=args: _opcheck(op, args))
                extend(new)
        extend(_analytic_checks(device))
    return results


def _analytic_checks(device: str) -> list[CheckResult]:
    import torch

    from .nn import FullyConnectedNet, first_layer_gradients

    out: list[CheckResult] = []
    for backend in ("python", "compiled"):
        def check(backend=backend):
            torch.manual_seed(0)
            net = FullyConnectedNet(12, 7, 5, backend=backend).double().to(device)
            x = torch.randn(9, 12, dtype=torch.float64, device=device)
            y = torch.randn(9, 7, dtype=torch.float64, device=device)
            dW1, db1 = first_layer_gradients(net, x, y)
            (0.5 * (net(x) - y).pow(2).sum()).backward()
            problems = []
            if not torch.allclose(dW1, net.fc1.weight.grad, rtol=1e-10, atol=1e-12):
                problems.append("dL/dW1 differs from autograd")
            if not torch.allclose(db1, net.fc1.bias.grad, rtol=1e-10, atol=1e-12):
                problems.append("dL/db1 differs from autograd")
            return "; ".join(problems)

        _run(out, "FullyConnectedNet", f"closed-form dW1, db1 vs autograd ({backend})", "analytic", "float64",
             device, check)
    return out
