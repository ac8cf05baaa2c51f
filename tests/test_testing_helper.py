"""restorekit.testing.check_op: the checker plugin authors use on their own compiled ops."""

from __future__ import annotations

import doctest

import pytest
import torch

import restorekit.nn.extension
import restorekit.nn.functions
import restorekit.nn.gradients
import restorekit.nn.modules
import restorekit.nn.nan_check
import restorekit.testing
import restorekit.testing.ops
from restorekit.testing import (CHECKS, OpCheckError, OpCheckSpec, Sample, check_op, op_check_cases,
                                parametrize_op_checks, run_op_checks, summarize, worst_elements)


def _samples(dtype, device):
    g = torch.Generator().manual_seed(0)
    yield Sample("3x4", (torch.randn(3, 4, generator=g, dtype=torch.float64).to(device=device, dtype=dtype),))
    yield Sample("transposed", (torch.randn(4, 3, generator=g, dtype=torch.float64).to(device=device, dtype=dtype).t(),))


class WrongBackward(torch.autograd.Function):
    """sin(x) with a wrong derivative (forgets the cos)."""

    @staticmethod
    def forward(ctx, x):
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        return g


# ---- an op whose backward is a registered op without an autograd kernel ------------------------
_LIB = torch.library.Library("restorekit_testing_nobwd", "DEF")
_LIB.define("square(Tensor x) -> Tensor")
_LIB.define("square_backward(Tensor grad, Tensor x) -> Tensor")
_LIB.impl("square", lambda x: x * x, "CPU")
_LIB.impl("square_backward", lambda grad, x: 2 * grad * x, "CPU")
torch.library.register_fake("restorekit_testing_nobwd::square", lambda x: torch.empty_like(x), lib=_LIB)
torch.library.register_fake("restorekit_testing_nobwd::square_backward", lambda grad, x: torch.empty_like(x), lib=_LIB)


def _square_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _square_backward(ctx, grad):
    (x,) = ctx.saved_tensors
    return torch.ops.restorekit_testing_nobwd.square_backward(grad, x)  # has no autograd kernel


torch.library.register_autograd("restorekit_testing_nobwd::square", _square_backward, setup_context=_square_setup,
                                lib=_LIB)
SQUARE = torch.ops.restorekit_testing_nobwd.square.default


def test_a_correct_op_passes():
    results = check_op(torch.sin, torch.sin, _samples, gradgradcheck=True)
    assert all(r.passed for r in results)
    assert len(results) == 2 * 2 + 2 * 3  # compare x2 dtypes x2 samples; 3 float64 checks x2 samples
    assert summarize(results).startswith("10 checks, 10 passed, 0 failed")


def test_a_wrong_backward_is_caught_and_shown_by_its_worst_elements():
    with pytest.raises(OpCheckError) as info:
        check_op(WrongBackward.apply, torch.sin, _samples, name="bad_sin")
    failed = {(r.check, r.dtype) for r in info.value.results if not r.passed}
    assert ("gradcheck", "float64") in failed and ("compare", "float32") in failed
    assert ("reference-gradcheck", "float64") not in failed
    text = str(info.value)
    assert "bad_sin" in text and "grad of arg 0" in text
    grad = next(r for r in info.value.results if r.check == "gradcheck" and not r.passed)
    # the worst Jacobian elements, each named and measured, not the whole Jacobian
    assert "d output 0[" in grad.detail and "/ d arg 0[" in grad.detail
    assert "got " in grad.detail and "expected " in grad.detail and "abs err" in grad.detail
    assert "rel err" in grad.detail and "numerical" in grad.detail
    assert grad.detail.count("got ") == 5 and "tensor(" not in grad.detail


def test_worst_elements_names_index_values_and_errors():
    expected = torch.zeros(3, 4, dtype=torch.float64)
    actual = expected.clone()
    actual[1, 2], actual[2, 0] = 0.5, -0.25
    report = worst_elements(actual, expected, rtol=1e-5, atol=1e-5)
    assert report.startswith("2 of 12 elements differ")
    assert report.index("[1, 2]: got 0.5, expected 0") < report.index("[2, 0]: got -0.25")
    assert worst_elements(expected, expected, 1e-5, 1e-5) == ""
    nan = torch.tensor([float("nan"), 1.0])
    assert worst_elements(nan, nan, 0, 0) == ""  # NaN where NaN is expected is a match
    assert "1 of 2" in worst_elements(nan, torch.tensor([0.0, 1.0]), 0, 0)


def test_a_wrong_forward_is_caught_without_raising_when_asked():
    results = check_op(lambda x: torch.sin(x) + 1e-3, torch.sin, _samples, gradcheck=False, raise_on_failure=False)
    assert [r.check for r in results if not r.passed] == ["compare"] * 4
    assert "output 0: 12 of 12 elements differ" in summarize(results)


def test_fixed_samples_are_cast_to_each_dtype():
    x = torch.randn(2, 5, dtype=torch.float64)
    results = check_op(torch.tanh, torch.tanh, [(x,), Sample("named", (x * 2,))], dtypes=[torch.float32])
    assert {r.sample for r in results} == {"sample 0", "named"}
    assert {r.dtype for r in results if r.check == "compare"} == {"float32"}


def test_custom_op_gets_opcheck_and_backward_opcheck():
    """A plugin author's own torch.library op with a Python backward: both opchecks pass."""

    @torch.library.custom_op("restorekit_testing::cube", mutates_args=())
    def cube(x: torch.Tensor) -> torch.Tensor:
        return x * x * x

    @cube.register_fake
    def _(x):
        return torch.empty_like(x)

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g

    cube.register_autograd(backward, setup_context=setup_context)
    results = check_op(torch.ops.restorekit_testing.cube.default, lambda x: x ** 3, _samples)
    assert {r.check for r in results if r.passed} >= {"opcheck", "backward-opcheck"}


def test_an_op_whose_backward_has_no_autograd_kernel_fails():
    """First-order gradients are right, so gradcheck passes; the backward op's opcheck and torch's
    'autograd kernel was not registered' warning during gradgradcheck make check_op fail."""
    with pytest.raises(OpCheckError) as info:
        check_op(SQUARE, lambda x: x * x, _samples, gradgradcheck=True, dtypes=[torch.float64])
    failed = {r.check: r for r in info.value.results if not r.passed}
    assert set(failed) == {"backward-opcheck", "gradgradcheck"}, summarize(info.value.results)
    assert "restorekit_testing_nobwd::square_backward" in failed["backward-opcheck"].detail
    assert "test_autograd_registration" in failed["backward-opcheck"].detail
    assert "autograd kernel was not registered" in failed["gradgradcheck"].detail
    assert all(r.passed for r in info.value.results if r.check in ("compare", "gradcheck", "opcheck"))


def test_absent_device_skips_with_a_clear_message():
    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU")
    with pytest.raises(pytest.skip.Exception, match=r"device 'cuda' is not available: no CUDA GPU"):
        check_op(torch.sin, torch.sin, _samples, device="cuda")
    cases = op_check_cases(torch.sin, torch.sin, _samples, device="cuda")
    assert len(cases) == 2 * 2 + 2 * 2  # named from CPU samples
    result = cases[0].run()  # outside pytest's skip: a skipped result saying why
    assert result.skipped and result.passed and "no CUDA GPU" in result.detail
    assert summarize([result]).startswith("1 checks, 0 passed, 0 failed, 1 skipped")
    with pytest.raises(pytest.skip.Exception, match="no CUDA GPU"):
        cases[0]()


def test_cases_cover_every_sample_check_and_dtype():
    cases = op_check_cases(SQUARE, lambda x: x * x, _samples, gradgradcheck=True)
    assert {(c.check, c.dtype) for c in cases} == (
        {("compare", "float32"), ("compare", "float64")} | {(c, "float64") for c in CHECKS[1:]})
    assert len(cases) == 2 * (2 + 5) and len({c.id for c in cases}) == len(cases)
    ok = op_check_cases(torch.sin, torch.sin, _samples)[0]
    assert ok().passed
    bad = next(c for c in cases if c.check == "backward-opcheck")
    with pytest.raises(OpCheckError, match="backward-opcheck of restorekit_testing_nobwd::square failed"):
        bad()


@parametrize_op_checks(torch.sin, torch.sin, _samples, gradgradcheck=True)
def test_parametrize_op_checks_gives_one_test_per_case(op_check):
    assert op_check().passed


def test_parametrize_op_checks_ids(request):
    mark = parametrize_op_checks(torch.sin, torch.sin, _samples)
    argname, params = mark.args[0], mark.args[1]
    assert argname == "op_check" and len(params) == 8
    assert params[0].id == "sin-compare-float32-cpu-3x4"


def test_spec_resolves_strings_and_runs():
    spec = OpCheckSpec("sin", "torch:sin", "torch:sin", "restorekit.testing.ops:_relu_samples", dtypes=("float64",),
                       devices=("cpu", "cuda"), options={"gradgradcheck": True})
    assert spec.problems() == []
    results = run_op_checks([spec])
    assert {r.device for r in results} == {"cpu"} | ({"cuda"} if torch.cuda.is_available() else set())
    assert all(r.passed for r in results) and {r.check for r in results} >= {"compare", "gradgradcheck"}
    quick = run_op_checks([spec], quick=True)
    assert "gradgradcheck" not in {r.check for r in quick}
    assert OpCheckSpec("", None, "x:y", "x:y", options={"gradgradchek": True}).problems() == [
        "name must be a non-empty string", "op is required",
        "unknown options ['gradgradchek']; allowed: gradcheck, gradgradcheck, opcheck, check_reference, "
        "tolerances, seed"]


@pytest.mark.parametrize("module", [restorekit.testing.ops, restorekit.nn.functions, restorekit.nn.modules,
                                    restorekit.nn.gradients, restorekit.nn.extension, restorekit.nn.nan_check])
def test_docstring_examples_run(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0


def test_ops_module_docstring_examples_run():
    if not restorekit.nn.extension.available():
        pytest.skip("restorekit._C is not built")
    import importlib

    ops = importlib.import_module("restorekit.nn.ops")
    failures, tried = doctest.testmod(ops, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
