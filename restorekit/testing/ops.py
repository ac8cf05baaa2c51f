"""Check a compiled op against a reference function, the way restorekit checks its own ops.

:func:`check_op` runs, for every sample input, the checks of :data:`CHECKS`:

``compare``
    outputs and gradients (for a fixed random upstream gradient) of ``op`` and ``reference``
    match, in each dtype asked for, within :data:`DEFAULT_TOLERANCES`;
``gradcheck`` / ``reference-gradcheck``
    ``torch.autograd.gradcheck`` of ``op`` (and of ``reference``) in float64;
``gradgradcheck``
    ``torch.autograd.gradgradcheck`` of ``op`` in float64, when asked;
``opcheck``
    ``torch.library.opcheck`` (schema, autograd registration, fake kernel, AOT dispatch) when
    ``op`` is a ``torch.ops`` operator;
``backward-opcheck``
    with ``opcheck``: the backward pass of ``op`` is run, every registered (non-``aten``) op it
    calls is recorded from the autograd graph's execution, and each is opchecked on the arguments it
    received, with its floating-point inputs requiring grad -- so a backward op without an autograd
    kernel (whose double backward would be silently wrong) fails.

Every check fails, too, when torch warns that "an autograd kernel was not registered" during it.
A mismatch is reported by its worst elements (index, got, expected, absolute and relative error),
for outputs, gradients and Jacobians alike. On a device torch cannot use (``"cuda"`` without a GPU)
every check is skipped with a message saying why (``pytest.skip`` inside a pytest run).

For pytest, :func:`parametrize_op_checks` gives one test case per (sample, check, dtype). For the
command line, a plugin registers :class:`OpCheckSpec` objects through the ``register_op_checks``
hook and ``restorekit gradcheck --plugin NAME`` runs them (:func:`run_op_checks`); restorekit's own
ops are registered the same way (:func:`restorekit_op_checks`). Nothing here imports torch before
it is called.

Examples
--------
A plugin author checking a compiled op ``torch.ops.myplugin.scale`` against a Python reference::

    import torch
    from restorekit.testing import Sample, check_op, parametrize_op_checks

    def samples(dtype, device):
        x = torch.randn(4, 3, dtype=dtype, device=device)
        yield Sample("4x3", (x, 2.0))
        yield Sample("transposed", (torch.randn(3, 4, dtype=dtype, device=device).t(), 2.0))

    check_op(torch.ops.myplugin.scale.default, lambda x, s: x * s, samples)  # OpCheckError on failure

    @parametrize_op_checks(torch.ops.myplugin.scale.default, lambda x, s: x * s, samples)
    def test_scale(op_check):          # one test per (sample, check, dtype)
        op_check()

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
import importlib
import math
import sys
import time
import warnings
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = [
    "CHECKS", "CheckResult", "DEFAULT_TOLERANCES", "OpCheckCase", "OpCheckError", "OpCheckSpec", "Sample",
    "check_op", "device_unavailable", "op_check_cases", "parametrize_op_checks", "restorekit_op_checks",
    "run_op_checks", "run_suite", "summarize", "worst_elements",
]

#: The checks, in the order they run for each sample.
CHECKS = ("compare", "gradcheck", "reference-gradcheck", "gradgradcheck", "opcheck", "backward-opcheck")

#: (rtol, atol) used by the compare step, by dtype name. The atol of float16/bfloat16 is relative
#: to the largest magnitude of the expected tensor (their results are compared with a reference
#: computed in float32).
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-9),
    "float32": (1e-5, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (4e-2, 4e-2),
}

#: torch's warning when an op without an autograd kernel is differentiated (silently wrong).
NO_AUTOGRAD_WARNING = "autograd kernel was not registered"
#: gradcheck's own tolerances, used to report the worst Jacobian elements.
_GRADCHECK_RTOL, _GRADCHECK_ATOL, _GRADCHECK_EPS = 1e-3, 1e-5, 1e-6
_WORST = 5  # elements shown for a mismatch


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
    """The outcome of one check of one sample (``skipped``: not run, ``detail`` says why)."""

    op: str
    sample: str
    check: str  # one of CHECKS
    dtype: str
    device: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0
    skipped: bool = False

    def line(self) -> str:
        status = "skip" if self.skipped else "ok  " if self.passed else "FAIL"
        text = f"{status} {self.op:<22} {self.check:<19} {self.dtype:<9} {self.device:<5} {self.sample}"
        return text + (f"\n     {self.detail}" if self.detail and (self.skipped or not self.passed) else "")


class OpCheckError(AssertionError):
    """Raised by :func:`check_op` when a check fails; ``results`` holds every result."""

    def __init__(self, message: str, results: list[CheckResult]):
        super().__init__(message)
        self.results = results


# ---- small helpers -----------------------------------------------------------------------------
def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def _op_name(op) -> str:
    schema = getattr(op, "_schema", None)  # a torch.ops overload: "namespace::name"
    if schema is not None and getattr(schema, "name", None):
        overload = getattr(schema, "overload_name", "")
        return schema.name + (f".{overload}" if overload else "")
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


def device_unavailable(device: str) -> str:
    """Why torch cannot use ``device`` here ('' when it can): ``"cuda"`` without a GPU, say."""
    import torch

    kind = str(device).split(":")[0]
    if kind == "cpu" or kind == "meta":
        return ""
    if kind == "cuda":
        if not torch.cuda.is_available():
            return f"device {device!r} is not available: no CUDA GPU is visible to torch"
        index = int(str(device).split(":")[1]) if ":" in str(device) else 0
        if index >= torch.cuda.device_count():
            return f"device {device!r} is not available: torch sees {torch.cuda.device_count()} CUDA GPU(s)"
        return ""
    module = getattr(torch, kind, None)
    is_available = getattr(module, "is_available", None)
    if callable(is_available) and not is_available():
        return f"device {device!r} is not available to torch"
    return ""


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
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _index(flat: int, shape) -> str:
    idx = []
    for size in reversed(list(shape)):
        idx.append(flat % size if size else 0)
        flat //= size if size else 1
    return "[" + ", ".join(map(str, reversed(idx))) + "]"


def worst_elements(actual, expected, rtol: float, atol: float, k: int = _WORST,
                   label: Callable[[int], str] | None = None) -> str:
    """'' when ``actual`` matches ``expected`` (NaN only where expected has NaN), else the worst elements.

    Each listed element: its index, the value got and expected, the absolute and relative error.
    """
    import torch

    a = actual.detach().to(torch.float64).reshape(-1).cpu()
    e = expected.detach().to(torch.float64).reshape(-1).cpu()
    diff = (a - e).abs()
    allowed = atol + rtol * e.abs()
    same = (a == e) | (a.isnan() & e.isnan())  # equal infinities and NaN where expected is NaN pass
    excess = torch.where(same, torch.zeros_like(diff), torch.nan_to_num(diff - allowed, nan=float("inf")))
    bad = excess > 0
    count = int(bad.sum())
    if count == 0:
        return ""
    order = torch.argsort(excess, descending=True)[: min(k, count)]
    label = label or (lambda i: _index(i, actual.shape))
    lines = []
    for i in order.tolist():
        got, exp, err = float(a[i]), float(e[i]), float(diff[i])
        rel = err / abs(exp) if exp != 0 and math.isfinite(exp) else float("inf")
        lines.append(f"{label(i)}: got {got:.6g}, expected {exp:.6g}, abs err {err:.3g}, rel err {rel:.3g}")
    return (f"{count} of {a.numel()} elements differ (rtol={rtol:g}, atol={atol:g}); worst: " + "; ".join(lines))


# ---- the checks --------------------------------------------------------------------------------
def _compare(op, reference, sample: Sample, dtype, seed: int, tolerances) -> str:
    """'' if outputs and gradients of op and reference agree, else the worst elements."""
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
                problems.append(f"{name}: {'op' if a is None else 'reference'} gave None")
            return
        if a.shape != e.shape:
            problems.append(f"{name}: shape {list(a.shape)} vs reference {list(e.shape)}")
            return
        scale = max(1.0, float(e.detach().abs().max())) if low and e.numel() else 1.0
        report = worst_elements(a, e, rtol, atol * scale)
        if report:
            problems.append(f"{name}: {report}")

    for k, (a, e) in enumerate(zip(out, ref)):
        close(f"output {k}", a, e)
    diff_out = [(o, r) for o, r in zip(out, ref)
                if o is not None and r is not None and o.requires_grad and r.requires_grad]
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


def _jacobian_mismatch(fn, args: tuple, idx: list[int], what: str) -> str:
    """The worst elements of analytical against numerical Jacobians of ``fn`` (float64 args)."""
    import torch

    inputs = [args[i].detach() for i in idx]

    def outputs(*xs):
        full = list(args)
        for i, x in zip(idx, xs):
            full[i] = x
        return tuple(o for o in _as_tuple(fn(*full)) if isinstance(o, torch.Tensor) and o.is_floating_point())

    base = outputs(*inputs)
    analytical = torch.autograd.functional.jacobian(lambda *xs: outputs(*xs), tuple(inputs))
    for k, o in enumerate(base):
        for j, x in enumerate(inputs):
            numerical = torch.zeros(o.numel(), x.numel(), dtype=torch.float64)
            flat = x.detach().clone().reshape(-1)
            for col in range(x.numel()):
                def at(delta, col=col):
                    shifted = flat.clone()
                    shifted[col] += delta
                    xs = [t.detach().requires_grad_() for t in inputs]  # a gradient function needs them
                    xs[j] = shifted.reshape(x.shape).requires_grad_()
                    return outputs(*xs)[k].detach().reshape(-1).to(torch.float64)
                numerical[:, col] = (at(_GRADCHECK_EPS) - at(-_GRADCHECK_EPS)) / (2 * _GRADCHECK_EPS)
            got = analytical[k][j].reshape(o.numel(), x.numel())

            def label(i, o=o, x=x, k=k, j=j):
                r, c = divmod(i, max(x.numel(), 1))
                return f"d {what} {k}{_index(r, o.shape)} / d arg {idx[j]}{_index(c, x.shape)}"

            report = worst_elements(got, numerical, _GRADCHECK_RTOL, _GRADCHECK_ATOL, label=label)
            if report:
                return f"analytical vs numerical Jacobian: {report}"
    return "analytical and numerical Jacobians differ (not within the reported elements)"


def _gradcheck(fn, sample: Sample) -> str:
    import torch

    args, idx = _with_grad(sample)
    if torch.autograd.gradcheck(fn, args, raise_exception=False):
        return ""
    return _jacobian_mismatch(fn, args, idx, "output")


def _gradgradcheck(fn, sample: Sample, seed: int) -> str:
    import torch

    args, idx = _with_grad(sample)
    if torch.autograd.gradgradcheck(fn, args, raise_exception=False):
        return ""
    # the Jacobian of the gradient function, for fixed upstream gradients
    outs = [o for o in _as_tuple(fn(*args)) if isinstance(o, torch.Tensor) and o.requires_grad]
    gen = torch.Generator().manual_seed(seed)
    ups = tuple(torch.randn(o.shape, generator=gen, dtype=o.dtype).to(o.device) for o in outs)

    def grads(*full):
        inputs = [full[i] for i in idx]
        o = [t for t in _as_tuple(fn(*full)) if isinstance(t, torch.Tensor) and t.requires_grad]
        return torch.autograd.grad(o, inputs, ups, create_graph=True, allow_unused=True)

    return _jacobian_mismatch(grads, args, idx, "gradient")


def _opcheck(op, args) -> str:
    import torch

    report = torch.library.opcheck(op, args, raise_exception=False)
    bad = {k: v for k, v in report.items() if v != "SUCCESS"}
    return "; ".join(f"{k}: {' '.join(str(v).split())[:300]}" for k, v in bad.items())


def _backward_ops(op, sample: Sample, seed: int) -> list[tuple[Any, tuple]]:
    """The registered (non-aten) ops the backward pass of ``op(*sample.args)`` calls, with their args."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: dict[Any, tuple] = {}

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.namespace not in ("aten", "prim", "prims") and func not in seen:
                seen[func] = tuple(a.detach().clone() if isinstance(a, torch.Tensor) else
                                   list(a) if isinstance(a, list) else a for a in args)
            return func(*args, **(kwargs or {}))

    args, idx = _with_grad(sample)
    outs = [o for o in _as_tuple(op(*args)) if isinstance(o, torch.Tensor) and o.requires_grad]
    if not idx or not outs:
        return []
    gen = torch.Generator().manual_seed(seed)
    ups = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(device=o.device, dtype=o.dtype) for o in outs]
    with Record():
        torch.autograd.grad(outs, [args[i] for i in idx], ups, allow_unused=True)
    return list(seen.items())


def _backward_opcheck(op, sample: Sample, seed: int) -> str:
    problems = []
    for func, args in _backward_ops(op, sample, seed):
        grad_args = tuple(a.detach().requires_grad_(True) if hasattr(a, "is_floating_point") and a.is_floating_point()
                          else a for a in args)
        report = _opcheck(func, grad_args)
        if report:
            problems.append(f"{func.name()}: {report}")
    return "; ".join(problems)


def _guarded(fn: Callable[[], str]) -> str:
    """Run a check; torch's "autograd kernel was not registered" warnings make it fail."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        detail = fn()
    missing, others = [], []
    for w in caught:
        (missing if NO_AUTOGRAD_WARNING in str(w.message) else others).append(w)
    for w in others:  # not ours to judge: pass them on
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if missing:
        first = " ".join(str(missing[0].message).split())[:300]
        detail = "; ".join(filter(None, [detail, f"torch warned {len(missing)} time(s): {first}"]))
    return detail


# ---- one runnable check ------------------------------------------------------------------------
@dataclasses.dataclass
class OpCheckCase:
    """One check of one sample in one dtype on one device; calling it runs it.

    ``case()`` returns the :class:`CheckResult`, raises :class:`OpCheckError` when the check fails,
    and skips (``pytest.skip`` in a pytest run, else a result with ``skipped=True``) when the device
    is absent. ``case.run()`` returns the result without raising or skipping.
    """

    op: str
    sample: str
    check: str
    dtype: str
    device: str
    _fn: Callable[[], str] = dataclasses.field(repr=False, compare=False)

    @property
    def id(self) -> str:
        """A pytest id: ``op-check-dtype-device-sample``."""
        return f"{self.op}-{self.check}-{self.dtype}-{self.device}-{self.sample}".replace(" ", "_")

    def run(self) -> CheckResult:
        why = device_unavailable(self.device)
        if why:
            return CheckResult(self.op, self.sample, self.check, self.dtype, self.device, True,
                               f"skipped: {why}", 0.0, skipped=True)
        t0 = time.perf_counter()
        try:
            detail = _guarded(self._fn)
            passed = not detail
        except Exception as exc:  # a failing check is a result, not a crash
            passed, detail = False, f"{type(exc).__name__}: " + " ".join(str(exc).split())[:500]
        return CheckResult(self.op, self.sample, self.check, self.dtype, self.device, passed, detail or "",
                           time.perf_counter() - t0)

    def __call__(self) -> CheckResult:
        result = self.run()
        if result.skipped:
            _skip(f"check_op {self.op}: {result.detail}")
        if not result.passed:
            raise OpCheckError(f"{self.check} of {self.op} failed:\n{result.line()}", [result])
        return result


def _skip(message: str) -> None:
    if "pytest" in sys.modules and "_pytest" in sys.modules:
        import pytest

        pytest.skip(message)


def op_check_cases(
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
) -> list[OpCheckCase]:
    """The checks :func:`check_op` runs, each an :class:`OpCheckCase` (same parameters).

    On an absent device the samples are built on the CPU to name the cases, which then skip.
    """
    import torch

    dtypes = list(dtypes) if dtypes is not None else [torch.float32, torch.float64]
    tol = dict(DEFAULT_TOLERANCES, **(tolerances or {}))
    op_name = name or _op_name(op)
    if opcheck is None:
        opcheck = _is_torch_op(op)
    dev = str(device)
    build_on = "cpu" if device_unavailable(dev) else dev
    cases: list[OpCheckCase] = []

    def add(sample, check, dtype, fn):
        cases.append(OpCheckCase(op_name, sample.name, check, _dtype_name(dtype), dev, fn))

    for dtype in dtypes:
        for s in _samples_for(samples, dtype, build_on):
            add(s, "compare", dtype, lambda s=s, dtype=dtype: _compare(op, reference, s, dtype, seed, tol))
    for s in _samples_for(samples, torch.float64, build_on):
        if gradcheck:
            add(s, "gradcheck", torch.float64, lambda s=s: _gradcheck(op, s))
            if check_reference:
                add(s, "reference-gradcheck", torch.float64, lambda s=s: _gradcheck(reference, s))
        if gradgradcheck:
            add(s, "gradgradcheck", torch.float64, lambda s=s: _gradgradcheck(op, s, seed))
        if opcheck:
            add(s, "opcheck", torch.float64, lambda s=s: _opcheck(op, _with_grad(s)[0]))
            add(s, "backward-opcheck", torch.float64, lambda s=s: _backward_opcheck(op, s, seed))
    return cases


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
    """Check ``op`` against ``reference`` on every sample (the checks of :data:`CHECKS`).

    Parameters
    ----------
    op : callable
        The op under test, e.g. ``torch.ops.myplugin.myop.default`` (then ``opcheck`` runs too).
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
        Where the tensors live (``"cpu"``, ``"cuda"``). A device torch cannot use skips every
        check: ``pytest.skip`` with the reason inside a pytest run, else results with
        ``skipped=True``.
    tolerances : dict, optional
        ``{dtype name: (rtol, atol)}`` overriding :data:`DEFAULT_TOLERANCES`.
    gradcheck, gradgradcheck : bool
        Run ``torch.autograd.gradcheck`` / ``gradgradcheck`` on ``op`` (float64).
        ReLU-like kinks make numerical derivatives wrong within ``eps`` (1e-6) of the kink: keep
        samples away from them.
    opcheck : bool, optional
        Run ``torch.library.opcheck`` on ``op`` and on every registered op its backward calls
        (default: when ``op`` is a ``torch.ops`` operator).
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

    Raises
    ------
    OpCheckError
        When a check fails (an ``AssertionError``), listing each failure with its worst elements.
    """
    cases = op_check_cases(op, reference, samples, dtypes=dtypes, device=device, tolerances=tolerances,
                           gradcheck=gradcheck, gradgradcheck=gradgradcheck, opcheck=opcheck,
                           check_reference=check_reference, seed=seed, name=name)
    why = device_unavailable(str(device))
    if why:
        _skip(f"check_op {name or _op_name(op)}: {why}")
    results = [case.run() for case in cases]
    failed = [r for r in results if not r.passed]
    if failed and raise_on_failure:
        raise OpCheckError(f"{len(failed)} of {len(results)} checks of {results[0].op} failed:\n"
                           + "\n".join(r.line() for r in failed), results)
    return results


def parametrize_op_checks(op: Callable, reference: Callable, samples, **options):
    """A ``pytest.mark.parametrize`` giving one test per (sample, check, dtype) of :func:`check_op`.

    The test takes one argument, ``op_check`` (an :class:`OpCheckCase`), and calls it; it fails
    with the check's report, or skips when the device is absent. ``options`` are those of
    :func:`op_check_cases` (``dtypes``, ``device``, ``gradgradcheck``, ...).

    Examples
    --------
    ::

        @parametrize_op_checks(torch.ops.myplugin.scale.default, lambda x, s: x * s, samples,
                               gradgradcheck=True)
        def test_scale(op_check):
            op_check()
    """
    import pytest

    cases = op_check_cases(op, reference, samples, **options)
    return pytest.mark.parametrize("op_check", [pytest.param(c, id=c.id) for c in cases])


def summarize(results: Sequence[CheckResult]) -> str:
    """'N checks, N passed, N failed' (and skipped, if any) plus the failures."""
    failed = [r for r in results if not r.passed]
    skipped = [r for r in results if r.skipped]
    head = f"{len(results)} checks, {len(results) - len(failed) - len(skipped)} passed, {len(failed)} failed"
    if skipped:
        head += f", {len(skipped)} skipped"
    return "\n".join([head] + [r.line() for r in failed])


# ---- op checks registered by plugins -----------------------------------------------------------
def _resolve(obj: Any) -> Any:
    """``"package.module:attr.path"`` or ``"torch.ops.ns.op.overload"`` to the object; others as they are."""
    if not isinstance(obj, str):
        return obj
    if ":" in obj:
        module, _, path = obj.partition(":")
        target: Any = importlib.import_module(module)
    elif obj.startswith("torch.ops."):
        import torch

        target, path = torch.ops, obj[len("torch.ops."):]
    else:
        from ..errors import PluginError

        raise PluginError(f"cannot resolve {obj!r}: write 'package.module:attribute' or 'torch.ops.NS.OP.overload'")
    for part in filter(None, path.split(".")):
        target = getattr(target, part)
    return target


#: The keyword arguments of check_op an OpCheckSpec may set in ``options``.
_SPEC_OPTIONS = ("gradcheck", "gradgradcheck", "opcheck", "check_reference", "tolerances", "seed")


@dataclasses.dataclass
class OpCheckSpec:
    """An op's checks as a plugin registers them (hook ``register_op_checks``).

    Parameters
    ----------
    name : str
        Shown in reports, e.g. ``"myplugin::scale"``.
    op, reference : callable or str
        The op under test and its trusted reference, or ``"package.module:attribute"`` /
        ``"torch.ops.NS.OP.overload"`` strings resolved when the checks run (after ``setup``),
        so registering imports nothing heavy.
    samples : callable, iterable or str
        As for :func:`check_op`: ``samples(dtype, device)`` yielding :class:`Sample`.
    dtypes : sequence or mapping, optional
        Dtypes of the compare step (torch dtypes or their names, ``"float32"``), or
        ``{device type: dtypes}`` (e.g. float16 on CUDA only).
    devices : sequence of str, callable or str
        Where to run, or a callable (``"module:attribute"``) returning that, called after
        ``setup``; devices torch cannot use are skipped. Default ``("cpu", "cuda")``.
    setup : callable or str, optional
        Called (no arguments) before the checks run, e.g. the loader of the plugin's compiled
        extension; a :class:`~restorekit.errors.RestorekitError` it raises stops the run with its
        message.
    options : dict
        Further keyword arguments of :func:`check_op` (``gradgradcheck``, ``tolerances``,
        ``opcheck``, ``check_reference``, ``seed``).

    Examples
    --------
    >>> from restorekit import hookimpl
    >>> from restorekit.testing import OpCheckSpec
    >>> @hookimpl
    ... def register_op_checks(register):
    ...     register(OpCheckSpec(name="myplugin::scale", op="torch.ops.myplugin.scale.default",
    ...                          reference="my_package.reference:scale", samples="my_package.tests:samples",
    ...                          setup="my_package:load_extension", options={"gradgradcheck": True}))
    """

    name: str
    op: Any
    reference: Any
    samples: Any
    dtypes: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None
    devices: Sequence[str] | Callable[[], Sequence[str]] | str = ("cpu", "cuda")
    setup: Any = None
    options: dict = dataclasses.field(default_factory=dict)

    def problems(self) -> list[str]:
        """What makes this spec unusable ('' list when it is fine)."""
        out = []
        if not isinstance(self.name, str) or not self.name.strip():
            out.append("name must be a non-empty string")
        for field in ("op", "reference", "samples"):
            if getattr(self, field) is None:
                out.append(f"{field} is required")
        unknown = set(self.options) - set(_SPEC_OPTIONS)
        if unknown:
            out.append(f"unknown options {sorted(unknown)}; allowed: {', '.join(_SPEC_OPTIONS)}")
        return out

    def _dtypes_for(self, device: str):
        import torch

        dtypes = self.dtypes.get(device.split(":")[0]) if isinstance(self.dtypes, Mapping) else self.dtypes
        return None if dtypes is None else [getattr(torch, d) if isinstance(d, str) else d for d in dtypes]

    def prepare(self) -> list[str]:
        """Run ``setup``; the devices to check on (``devices``, resolved)."""
        if self.setup is not None:
            _resolve(self.setup)()
        devices = _resolve(self.devices)
        return list(devices() if callable(devices) else devices)

    def cases(self, device: str) -> list[OpCheckCase]:
        """The :class:`OpCheckCase` list on ``device`` (after :meth:`prepare`; resolves the strings)."""
        return op_check_cases(_resolve(self.op), _resolve(self.reference), _resolve(self.samples),
                              dtypes=self._dtypes_for(device), device=device, name=self.name, **self.options)


def run_op_checks(specs: Iterable[OpCheckSpec], devices: Sequence[str] | None = None, *,
                  quick: bool = False, progress: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Run every spec's checks on each of its devices torch can use (``restorekit gradcheck``).

    Parameters
    ----------
    specs : iterable of OpCheckSpec
        Usually ``restorekit.registry.default_registry().op_checks()``.
    devices : sequence of str, optional
        Only these devices (default: each spec's own ``devices``); absent ones are left out.
    quick : bool
        Leave out the slower ``gradgradcheck``, ``opcheck`` and ``backward-opcheck``.
    progress : callable, optional
        Called with each result as it is produced.

    Raises
    ------
    RestorekitError
        From a spec's ``setup`` (e.g. :class:`~restorekit.errors.ExtensionMissingError`).
    """
    results: list[CheckResult] = []
    slow = {"gradgradcheck", "opcheck", "backward-opcheck"}
    for spec in specs:
        for device in spec.prepare():
            if (devices is not None and device not in devices) or device_unavailable(device):
                continue
            for case in spec.cases(device):
                if quick and case.check in slow:
                    continue
                result = case.run()
                results.append(result)
                if progress:
                    progress(result)
    return results


# ---- restorekit's own ops ----------------------------------------------------------------------
def _linear_samples(dtype, device, seed: int = 0) -> list[Sample]:
    """Shapes the compiled linear ops are checked on: batch 1 and 0, bias and none, strided, transposed,
    1x1 operands with odd strides, and inputs that need no gradient."""
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
        Sample("1x1 x and weight, strides (6, 2)", (t(3, 3)[::2, ::2][:1, :1], t(3, 3)[::2, ::2][:1, :1], t(1))),
        Sample("weight and bias grads only", (t(3, 5), t(4, 5), t(4)), requires_grad=(False, True, True)),
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


def _linear_relu_reference(x, w, b=None):
    from ..nn import LinearFunction, ReLUFunction

    return ReLUFunction.apply(LinearFunction.apply(x, w, b))


def _first_layer_net(backend: str, device, dtype):
    import torch

    from ..nn import FullyConnectedNet

    gen = torch.Generator().manual_seed(0)
    net = FullyConnectedNet(12, 7, 5, backend=backend)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return net.to(device=device, dtype=dtype)


def _first_layer_closed_form(x, y, backend: str):
    """dL/dW1, dL/db1 of FullyConnectedNet from the closed form (restorekit.nn.gradients)."""
    from ..nn import first_layer_gradients

    return first_layer_gradients(_first_layer_net(backend, x.device, x.dtype), x, y)


def _first_layer_autograd(x, y, backend: str):
    """dL/dW1, dL/db1 of FullyConnectedNet by autograd through the chosen backend."""
    net = _first_layer_net(backend, x.device, x.dtype)
    (0.5 * (net(x) - y).pow(2).sum()).backward()
    return net.fc1.weight.grad, net.fc1.bias.grad


def _first_layer_samples(dtype, device):
    import torch

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(9, 12, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    y = torch.randn(9, 7, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    return [Sample(f"batch 9 ({backend} backend)", (x, y, backend), requires_grad=(False, False, False))
            for backend in ("python", "compiled")]


def restorekit_op_checks() -> list[OpCheckSpec]:
    """The :class:`OpCheckSpec` of restorekit's compiled ops (registered by the ``mlp_inpaint`` plugin).

    ``linear``, ``relu`` and ``linear_relu`` against the reference Functions (compare in float32 and
    float64, plus float16 and bfloat16 on CUDA; gradcheck, gradgradcheck, opcheck and the backward
    ops' opcheck in float64), and the closed-form first-layer gradients of ``FullyConnectedNet``
    against autograd with both backends. Their ``setup`` loads the extension.
    """
    setup = "restorekit.nn.extension:load"
    dtypes = {"cpu": ("float32", "float64"), "cuda": ("float32", "float64", "float16", "bfloat16")}
    devices = "restorekit.testing.ops:_restorekit_devices"
    common = dict(dtypes=dtypes, devices=devices, setup=setup, options={"gradgradcheck": True})
    here = "restorekit.testing.ops"
    return [
        OpCheckSpec("restorekit::linear", "torch.ops.restorekit.linear.default",
                    "restorekit.nn:LinearFunction.apply", f"{here}:_linear_samples", **common),
        OpCheckSpec("restorekit::relu", "torch.ops.restorekit.relu.default",
                    "restorekit.nn:ReLUFunction.apply", f"{here}:_relu_samples", **common),
        OpCheckSpec("restorekit::linear_relu", "torch.ops.restorekit.linear_relu.default",
                    f"{here}:_linear_relu_reference", f"{here}:_linear_samples", **common),
        OpCheckSpec("FullyConnectedNet dW1,db1", f"{here}:_first_layer_closed_form",
                    f"{here}:_first_layer_autograd", f"{here}:_first_layer_samples",
                    dtypes=("float64",), devices=devices, setup=setup,
                    options={"gradcheck": False, "opcheck": False,
                             "tolerances": {"float64": (1e-10, 1e-12)}}),
    ]


def _restorekit_devices() -> list[str]:
    """The CPU, and CUDA when the extension has its CUDA kernels (absent devices are skipped later)."""
    from ..nn import extension

    return ["cpu"] + (["cuda"] if extension.cuda_built() else [])


def run_suite(devices: Sequence[str] | None = None, *, opcheck: bool = True, gradgradcheck: bool = True,
              progress: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Run :func:`restorekit_op_checks` (restorekit's compiled ops) through :func:`run_op_checks`.

    ``opcheck=False`` or ``gradgradcheck=False`` runs the quick set (neither). The CUDA checks run
    where a GPU is visible and the CUDA kernels are built.

    Raises
    ------
    ExtensionMissingError
        When ``restorekit._C`` is not built (with what to do).
    """
    from ..nn import extension

    extension.load()
    return run_op_checks(restorekit_op_checks(), devices, quick=not (opcheck and gradgradcheck), progress=progress)
