"""The compiled ops torch.ops.restorekit.*: against the reference Functions, opcheck, torch.compile,
NaN like torch, sizes BLAS cannot take, odd strides, and the extension-cpp loading order."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from restorekit.nn import FullyConnectedNet, LinearFunction, ReLUFunction, extension
from restorekit.testing import check_op
from restorekit.testing.ops import _linear_samples, _relu_samples

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
    assert {r.check for r in results} == {"compare", "gradcheck", "reference-gradcheck", "gradgradcheck", "opcheck",
                                          "backward-opcheck"}


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
    big = torch.zeros(1, 1, device="cuda").expand(1, 2**31)
    with pytest.raises(RuntimeError, match="in_features K = 2147483648 is above 2147483647"):
        R.linear(big, big, None)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("fused", [False, True])
def test_cuda_nan_like_cpu_without_synchronising(fused):
    """NaN propagates on CUDA exactly as on the CPU, and no op synchronises the host."""
    x0, w0, b0, up = _nan_inputs()
    results = []
    for device in ("cpu", "cuda"):
        x, w, b = (t.to(device).requires_grad_() for t in (x0, w0, b0))
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
        try:
            y = (R.linear_relu if fused else R.linear)(x, w, b)
            y.backward(up.to(device))
        finally:
            torch.cuda.set_sync_debug_mode("default")
        results.append([t.detach().cpu() for t in (y, x.grad, w.grad, b.grad)])
    for a, e in zip(*results):
        torch.testing.assert_close(a, e, equal_nan=True)


@pytest.mark.cuda
@needs_cuda
def test_cuda_graph_capture_of_forward_and_backward():
    torch.manual_seed(0)
    x = torch.randn(32, 64, device="cuda")
    w = torch.randn(48, 64, device="cuda", requires_grad=True)
    b = torch.randn(48, device="cuda", requires_grad=True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm up (cuBLAS workspace, autograd) outside the capture
        for _ in range(2):
            w.grad = b.grad = None
            R.linear_relu(x, w, b).sum().backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    w.grad = b.grad = None
    with torch.cuda.graph(graph):
        y = R.linear_relu(x, w, b)
        y.sum().backward()
    x.copy_(torch.randn(32, 64, device="cuda"))
    graph.replay()
    torch.cuda.synchronize()
    expected = torch.relu(F.linear(x, w.detach(), b.detach()))
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(b.grad, (expected > 0).float().sum(0), rtol=1e-4, atol=1e-4)


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


def test_the_extension_binds_no_functions_of_its_own_for_the_ops():
    """extension-cpp shape: Python calls torch.ops.restorekit.*; _C only defines the ops."""
    ext = extension.load()
    assert not any(hasattr(ext, name) for name in ("linear", "relu", "linear_relu"))
    assert set(ext.ops) == {"linear", "linear_backward", "relu", "relu_backward", "linear_relu", "linear_relu_backward"}


def _nan_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x, w, b = (torch.randn(*s, generator=g, dtype=torch.float64) for s in ((5, 3), (4, 3), (4,)))
    x[1, 2] = float("nan")
    w[2, 0] = float("nan")
    up = torch.randn(5, 4, generator=g, dtype=torch.float64)
    up[3, 1] = float("nan")
    return x, w, b, up


@pytest.mark.parametrize("fused", [False, True])
def test_nan_propagates_like_torch_with_both_backends(fused):
    """One documented behaviour: compiled, Python reference and torch agree element for element,
    NaN included, forward and backward (no error, no synchronisation)."""
    x0, w0, b0, up = _nan_inputs()
    results = {}
    for impl in ("torch", "python", "compiled"):
        x, w, b = (t.clone().requires_grad_() for t in (x0, w0, b0))
        if impl == "torch":
            y = F.linear(x, w, b)
            y = torch.relu(y) if fused else y
        elif impl == "python":
            y = LinearFunction.apply(x, w, b)
            y = ReLUFunction.apply(y) if fused else y
        else:
            y = (R.linear_relu if fused else R.linear)(x, w, b)
        y.backward(up)
        results[impl] = (y.detach(), x.grad, w.grad, b.grad)
    assert results["torch"][0].isnan().any() and results["torch"][1].isnan().any()
    for impl in ("python", "compiled"):
        for a, e in zip(results[impl], results["torch"]):
            torch.testing.assert_close(a, e, equal_nan=True, msg=impl)


def test_relu_nan_and_infinities_like_torch():
    x0 = torch.tensor([[float("nan"), -1.0, 0.0, 2.0, float("inf"), -float("inf")]], dtype=torch.float64)
    up = torch.tensor([[1.0, 2.0, 3.0, float("nan"), 5.0, 6.0]], dtype=torch.float64)
    outs = []
    for f in (torch.relu, ReLUFunction.apply, R.relu):
        x = x0.clone().requires_grad_()
        y = f(x)
        y.backward(up)
        outs.append((y.detach(), x.grad))
    for got in outs[1:]:
        for a, e in zip(got, outs[0]):
            torch.testing.assert_close(a, e, equal_nan=True)
    g = torch.tensor([[1.0, 1.0], [float("inf"), float("-inf")]], dtype=torch.float64)
    _, _, gb = R.linear_backward(g, torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64),
                                 [False, False, True])
    assert gb[0] == float("inf") and gb[1] == float("-inf")


def test_detect_nan_is_the_same_opt_in_check_for_both_backends():
    from restorekit.errors import InputError
    from restorekit.nn import detect_nan

    x = torch.randn(3, 6)
    x[1, 4] = float("nan")
    for backend in ("python", "compiled"):
        net = FullyConnectedNet(6, 2, 4, backend=backend)
        assert net(x).isnan().any()  # off by default: propagates
        with detect_nan(), pytest.raises(InputError, match=r"FullyConnectedNet fc1\+relu1: NaN in the result; "
                                                           r"NaN found in x\."):
            net(x)
        with torch.no_grad():
            net.fc2.weight[0, 0] = float("nan")
        with detect_nan(), pytest.raises(InputError, match=r"fc2\+relu2: .*NaN found in weight"):
            net(torch.randn(3, 6))


@pytest.mark.parametrize("which", ["N", "K", "M"])
def test_sizes_above_the_blas_int_are_refused_before_any_work(which):
    """x, weight of 2**31 columns as expanded views (nothing allocated): a clear error, not MKL's garbage."""
    big = 2**31
    n, k, m = (big if which == "N" else 2), (big if which == "K" else 3), (big if which == "M" else 2)
    x = torch.zeros(1, 1).expand(n, k)
    w = torch.zeros(1, 1).expand(m, k)
    name = {"N": "the batch size N", "K": "in_features K", "M": "out_features M"}[which]
    pattern = rf"{name} = 2147483648 is above 2147483647, the largest size BLAS takes.*split the product"
    for op in (R.linear, R.linear_relu):
        with pytest.raises(RuntimeError, match=pattern):
            op(x, w, None)
        with pytest.raises(RuntimeError, match=pattern):  # the fake kernel says the same (torch.compile)
            op(torch.empty(n, k, device="meta"), torch.empty(m, k, device="meta"), None)
    g = torch.zeros(1, 1).expand(n, m)
    with pytest.raises(RuntimeError, match=pattern):
        R.linear_backward(g, x, w, [True, True, True])
    with pytest.raises(RuntimeError, match=pattern):
        R.linear_relu_backward(g, x, w, g, [True, True, True])


def _strided(rows, cols, strides, seed):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(rows * abs(strides[0]) + cols * abs(strides[1]) + 3, generator=g, dtype=torch.float64)
    return base.as_strided((rows, cols), strides)


def test_1x1_operands_with_odd_strides():
    """A 1x1 (or 1-row, 1-column) operand keeps any strides (torch calls it contiguous): no assert."""
    x = torch.rand(3, 3, dtype=torch.float64)[::2, ::2][:1, :1].detach().requires_grad_()
    w = torch.rand(3, 3, dtype=torch.float64)[::2, ::2][:1, :1].detach().requires_grad_()
    assert x.stride() == (6, 2) and x.is_contiguous()  # torch calls it contiguous: .contiguous() is a no-op
    for op, act in ((R.linear, lambda v: v), (R.linear_relu, torch.relu)):
        xg, wg = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
        y = op(x, w, None)
        y.backward(torch.ones(1, 1, dtype=torch.float64))
        act(F.linear(xg, wg)).backward(torch.ones(1, 1, dtype=torch.float64))
        torch.testing.assert_close((y, x.grad, w.grad), (act(F.linear(xg, wg)), xg.grad, wg.grad))
        x.grad = w.grad = None
    combos = itertools.product(itertools.product([1, 2], repeat=3), [(0, 0), (6, 2), (1, 3), (2, 1)],
                               [(0, 0), (7, 5), (1, 1)], [(0, 0), (3, 5)])
    for (n, k, m), sx, sw, sg in combos:
        g = _strided(n, m, sg, 2)
        for op, act in ((R.linear, lambda v: v), (R.linear_relu, torch.relu)):
            xa, xb = (_strided(n, k, sx, 0).requires_grad_() for _ in range(2))
            wa, wb = (_strided(m, k, sw, 1).requires_grad_() for _ in range(2))
            ya, yb = op(xa, wa, None), act(F.linear(xb, wb))
            ga = torch.autograd.grad(ya, (xa, wa), g)
            gb = torch.autograd.grad(yb, (xb, wb), g)
            torch.testing.assert_close((ya, *ga), (yb, *gb), msg=f"{n}x{k}x{m} strides {sx} {sw} {sg}")


def test_ops_module_imports_nothing_from_the_loader():
    """No loader -> ops -> loader loop: ops.py imports torch only; extension.py imports ops after _C."""
    nn_dir = Path(extension.__file__).parent
    tree = ast.parse((nn_dir / "ops.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"torch", "__future__"}, imported


def test_loading_order_in_a_fresh_process():
    code = (
        "import sys, torch\n"
        "try:\n"
        "    import restorekit.nn.ops\n"
        "except ImportError as e:\n"
        "    print('refused:', 'restorekit.nn.extension.load()' in str(e))\n"
        "from restorekit.nn import extension\n"
        "m = extension.load()\n"
        "print('ops loaded:', 'restorekit.nn.ops' in sys.modules)\n"
        "print(torch.ops.restorekit.linear_relu(torch.empty(5, 3, device='meta'), torch.empty(2, 3, device='meta')).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:3] == ["refused: True", "ops loaded: True", "torch.Size([5, 2])"]


def test_importing_the_extension_alone_names_the_module_of_the_fake_kernels():
    """_C names restorekit.nn.ops with set_python_module, so torch says what to import."""
    code = ("import torch, restorekit._C\n"
            "torch.ops.restorekit.relu(torch.empty(2, 3, device='meta'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "import the 'restorekit.nn.ops' Python module" in out.stderr


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
