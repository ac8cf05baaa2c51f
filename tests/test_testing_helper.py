"""restorekit.testing.check_op: the checker plugin authors use on their own compiled ops."""

from __future__ import annotations

import doctest

import pytest
import torch

import restorekit.nn.extension
import restorekit.nn.functions
import restorekit.nn.gradients
import restorekit.nn.modules
import restorekit.nn.ops
import restorekit.testing
from restorekit.testing import OpCheckError, Sample, check_op, summarize


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


def test_a_correct_op_passes():
    results = check_op(torch.sin, torch.sin, _samples, gradgradcheck=True)
    assert all(r.passed for r in results)
    assert len(results) == 2 * 2 + 2 * 3  # compare x2 dtypes x2 samples; 3 float64 checks x2 samples
    assert summarize(results).startswith("10 checks, 10 passed, 0 failed")


def test_a_wrong_backward_is_caught():
    with pytest.raises(OpCheckError) as info:
        check_op(WrongBackward.apply, torch.sin, _samples, name="bad_sin")
    failed = {(r.check, r.dtype) for r in info.value.results if not r.passed}
    assert ("gradcheck", "float64") in failed and ("compare", "float32") in failed
    assert ("reference-gradcheck", "float64") not in failed
    assert "bad_sin" in str(info.value) and "grad of arg 0" in str(info.value)


def test_a_wrong_forward_is_caught_without_raising_when_asked():
    results = check_op(lambda x: torch.sin(x) + 1e-3, torch.sin, _samples, gradcheck=False, raise_on_failure=False)
    assert [r.check for r in results if not r.passed] == ["compare"] * 4
    assert "output 0" in summarize(results)


def test_fixed_samples_are_cast_to_each_dtype():
    x = torch.randn(2, 5, dtype=torch.float64)
    results = check_op(torch.tanh, torch.tanh, [(x,), Sample("named", (x * 2,))], dtypes=[torch.float32])
    assert {r.sample for r in results} == {"sample 0", "named"}
    assert {r.dtype for r in results if r.check == "compare"} == {"float32"}


def test_custom_op_gets_opcheck():
    """A plugin author's own torch.library op: check_op runs opcheck on it too."""

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
    assert any(r.check == "opcheck" and r.passed for r in results)


@pytest.mark.parametrize("module", [restorekit.testing, restorekit.nn.functions, restorekit.nn.modules,
                                    restorekit.nn.gradients, restorekit.nn.extension, restorekit.nn.ops])
def test_docstring_examples_run(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
