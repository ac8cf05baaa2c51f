"""The compiled ops torch.ops.restorekit.*: against the reference Functions, opcheck, torch.compile."""

from __future__ import annotations

import pytest
import torch

from restorekit.nn import FullyConnectedNet, LinearFunction, ReLUFunction, extension
from restorekit.testing import _backward_op_samples, _linear_samples, _opcheck, _relu_samples, check_op

pytestmark = pytest.mark.skipif(not extension.available(), reason="restorekit._C is not built")
R = torch.ops.restorekit if extension.available() else None
needs_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and extension.available() and extension.cuda_built()),
    reason="needs a CUDA GPU and the CUDA kernels")


def _linear_relu_ref(x, w, b=None):
    return ReLUFunction.apply(LinearFunction.apply(x, w, b))


CASES = {
    "linear": (lambda: R.linear.default, LinearFunction.apply, _linear_samples),
    "relu": (lambda: R.relu.default, ReLUFunction.apply, _relu_samples),
    "linear_relu": (lambda: R.linear_relu.default, _linear_relu_ref, _linear_samples),
}


@pytest.mark.parametrize("name", list(CASES))
def test_op_against_reference_cpu(name):
    """compare (float32: rtol=atol=1e-5; float64: rtol 1e-7, atol 1e-9), gradcheck, gradgradcheck,
    opcheck, on batch 1 / 0, bias / none, non-contiguous and transposed inputs."""
    op, ref, samples = CASES[name]
    results = check_op(op(), ref, samples, gradgradcheck=True, name=name)
    assert {r.check for r in results} == {"compare", "gradcheck", "reference-gradcheck", "gradgradcheck", "opcheck"}


@pytest.mark.parametrize("case", range(7))
def test_backward_ops_opcheck(case):
    sample, op, args = _backward_op_samples("cpu")[case]
    assert _opcheck(op, args) == "", (op, sample)


def test_backward_ops_return_none_for_masked_gradients():
    x, w, g = torch.randn(3, 5), torch.randn(4, 5), torch.randn(3, 4)
    gx, gw, gb = R.linear_backward(g, x, w, [False, True, False])
    assert gx is None and gb is None
    torch.testing.assert_close(gw, g.t() @ x)
    out = R.linear_relu(x, w, None)
    gx, gw, gb = R.linear_relu_backward(g, x, w, out, [True, False, True])
    gp = g * (out > 0)
    torch.testing.assert_close(gx, gp @ w)
    torch.testing.assert_close(gb, gp.sum(0))
    assert gw is None


def test_relu_derivative_at_zero_is_zero_everywhere():
    x = torch.tensor([[-1.0, 0.0, 2.0]], dtype=torch.float64, requires_grad=True)
    R.relu(x).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 1.0]]
    # fused op: pre-activation exactly 0 in column 1 -> no gradient flows through it
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    R.linear_relu(x, w, b).sum().backward()
    assert b.grad.tolist() == [1.0, 0.0, 0.0]


def test_fused_op_saves_output_not_preactivation():
    x = torch.randn(6, 5, requires_grad=True)
    w = torch.randn(4, 5, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = R.linear_relu(x, w, b)
    ptrs = sorted(t.untyped_storage().data_ptr() for t in saved)
    expected = sorted(t.untyped_storage().data_ptr() for t in (x, w, out))
    assert ptrs == expected  # x, weight and the output: nothing else, no pre-activation
    assert sum(t.numel() for t in saved) == x.numel() + w.numel() + out.numel()


def test_expanded_and_transposed_grad_out():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    for make_loss in (lambda y: y.sum(), lambda y: (y.t() * torch.arange(5.0, dtype=torch.float64)).sum()):
        grads = []
        for f in (R.linear_relu, _linear_relu_ref):
            (gx, gw, gb) = torch.autograd.grad(make_loss(f(x, w, b)), (x, w, b))
            grads.append((gx, gw, gb))
        for a, e in zip(*grads):
            torch.testing.assert_close(a, e)


def test_no_grad_for_inputs_that_do_not_need_it():
    x = torch.randn(5, 3)
    w = torch.randn(4, 3, requires_grad=True)
    R.linear_relu(x, w, None).sum().backward()
    assert x.grad is None and w.grad is not None
    with torch.no_grad():
        assert R.linear_relu(x, w, None).grad_fn is None


def test_double_backward_through_the_network():
    """A gradient penalty (create_graph=True) agrees between compiled and Python backends."""
    torch.manual_seed(0)
    net = FullyConnectedNet(6, 3, 5, backend="python").double()
    x0 = torch.randn(4, 6, dtype=torch.float64)
    out = []
    for backend in ("python", "compiled"):
        net.backend = backend
        net.zero_grad()
        x = x0.clone().requires_grad_()
        (gx,) = torch.autograd.grad(net(x).pow(2).sum(), x, create_graph=True)
        gx.pow(2).sum().backward()
        out.append([p.grad.clone() for p in net.parameters()])
    for a, e in zip(*out):
        torch.testing.assert_close(a, e)


def test_torch_compile_fullgraph():
    """torch.compile traces the ops (fake kernels + registered autograd), forward and backward."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    net = FullyConnectedNet(12, 7, 5, backend="compiled")
    x, y = torch.randn(8, 12), torch.randn(8, 7)

    def loss_fn(x, y):
        return 0.5 * (net(x) - y).pow(2).sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend="aot_eager")
    loss_c = compiled(x, y)
    loss_c.backward()
    grads_c = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    loss_e = loss_fn(x, y)
    loss_e.backward()
    torch.testing.assert_close(loss_c, loss_e)
    for a, e in zip(grads_c, [p.grad for p in net.parameters()]):
        torch.testing.assert_close(a, e)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("name", list(CASES))
def test_op_against_reference_cuda(name):
    op, ref, samples = CASES[name]
    check_op(op(), ref, samples, device="cuda", gradgradcheck=True, name=name,
             dtypes=[torch.float32, torch.float64, torch.float16, torch.bfloat16])


@pytest.mark.cuda
@needs_cuda
def test_cuda_network_matches_cpu():
    torch.manual_seed(0)
    net = FullyConnectedNet(784, 784, 32, backend="compiled")
    x = torch.rand(32, 784)
    y_cpu = net(x)
    y_cuda = net.cuda()(x.cuda())
    torch.testing.assert_close(y_cuda.cpu(), y_cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.cuda
@needs_cuda
def test_cuda_bad_input_is_an_error_not_a_crash():
    x, w = torch.randn(3, 5, device="cuda"), torch.randn(4, 6, device="cuda")
    with pytest.raises(RuntimeError, match=r"in_features mismatch.*\[3, 5\]"):
        R.linear_relu(x, w, None)
    with pytest.raises(RuntimeError, match="same device"):
        R.linear_relu(x, torch.randn(4, 5), None)
    with pytest.raises(RuntimeError, match="NaN"):
        R.linear_relu(x.index_fill(1, torch.tensor([0], device="cuda"), float("nan")), w[:, :5], None)


def _layouts(n, k, m, seed=0):
    g = torch.Generator().manual_seed(seed)

    def t(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    yield "contiguous", t(n, k), t(m, k), t(m)
    yield "transposed", t(k, n).t(), t(k, m).t(), t(m)
    yield "strided", t(n, 2 * k)[:, ::2], t(m, 3 * k)[:, ::3], t(2 * m)[::2]


@pytest.mark.parametrize("row_parallel", [True, False])
def test_blocked_paths_match_torch(row_parallel):
    """Sizes big enough to split rows over threads (and the whole-matrix fallback path)."""
    ext = extension.load()
    ext._set_row_parallel(row_parallel)
    try:
        for name, x, w, b in _layouts(67, 300, 129):
            for op, act in ((R.linear_relu, torch.relu), (R.linear, lambda v: v)):
                xg, wg, bg = (t.detach().requires_grad_() for t in (x, w, b))
                xr, wr, br = (t.detach().requires_grad_() for t in (x, w, b))
                up = torch.randn(67, 129, dtype=torch.float64)
                y, yr = op(xg, wg, bg), act(torch.nn.functional.linear(xr, wr, br))
                torch.testing.assert_close(y, yr, msg=name)
                y.backward(up)
                yr.backward(up)
                for a, e in ((xg, xr), (wg, wr), (bg, br)):
                    torch.testing.assert_close(a.grad, e.grad, msg=name)
    finally:
        ext._set_row_parallel(True)


def test_bias_gradient_is_deterministic():
    x = torch.randn(513, 64)
    w = torch.randn(96, 64, requires_grad=True)
    b = torch.randn(96, requires_grad=True)
    grads = []
    for _ in range(3):
        b.grad = None
        R.linear_relu(x, w, b).backward(torch.ones(513, 96))
        grads.append(b.grad.clone())
    assert all(torch.equal(grads[0], g) for g in grads[1:])


def test_eager_entry_points_are_the_same_ops():
    ext = extension.load()
    x, w, b = torch.randn(3, 5, requires_grad=True), torch.randn(4, 5), torch.randn(4)
    for fast, op in ((ext.linear, R.linear), (ext.linear_relu, R.linear_relu)):
        y1, y2 = fast(x, w, b), op(x, w, b)
        torch.testing.assert_close(y1, y2)
        assert y1.grad_fn.name() == y2.grad_fn.name()
    torch.testing.assert_close(ext.relu(x), R.relu(x))
    torch.testing.assert_close(ext.linear(x, w), R.linear(x, w, None))


def test_nan_is_an_error_but_infinities_are_not():
    x, w, b = torch.randn(4, 3), torch.randn(2, 3), torch.randn(2)
    g = torch.randn(4, 2)
    g[0, 1], g[1, 1] = float("inf"), float("-inf")  # column sum is NaN, but no input is
    _, _, gb = R.linear_backward(g, x, w, [False, False, True])
    assert gb[1].isnan() and not gb[0].isnan()
    g[2, 0] = float("nan")
    for mask in ([False, False, True], [True, True, False]):
        with pytest.raises(RuntimeError, match=r"grad_out contains NaN.*grad_out: \[4, 2\]"):
            R.linear_backward(g, x, w, mask)
    with pytest.raises(RuntimeError, match=r"NaN found in weight\. Arguments: x: \[4, 3\]"):
        R.linear_relu(x, w.index_fill(0, torch.tensor([1]), float("nan")), b)


def test_torch_compile_in_a_fresh_process():
    """Tracing FullyConnectedNet before anything loaded the extension (the import happens outside
    the graph) works with fullgraph=True."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from restorekit.nn import FullyConnectedNet\n"
        "net = FullyConnectedNet(6, 4, 5)\n"
        "f = torch.compile(lambda x: net(x).sum(), fullgraph=True, backend='aot_eager')\n"
        "f(torch.randn(3, 6)).backward()\n"
        "print(net.fc1.weight.grad.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch.Size([5, 6])" in out.stdout
