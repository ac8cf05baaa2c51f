"""Reference autograd Functions and the modules built on them (Linear, ReLU, FullyConnectedNet)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

from restorekit.errors import ExtensionMissingError, InputError, ParameterError
from restorekit.nn import FullyConnectedNet, Linear, LinearFunction, ReLU, ReLUFunction, extension


def _f64(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def test_linear_function_matches_torch_and_gradchecks():
    x, w, b = _f64(5, 3).requires_grad_(), _f64(4, 3, seed=1).requires_grad_(), _f64(4, seed=2).requires_grad_()
    torch.testing.assert_close(LinearFunction.apply(x, w, b), F.linear(x, w, b))
    torch.testing.assert_close(LinearFunction.apply(x, w, None), F.linear(x, w))
    assert torch.autograd.gradcheck(LinearFunction.apply, (x, w, b))
    assert torch.autograd.gradgradcheck(LinearFunction.apply, (x, w, b))
    assert torch.autograd.gradcheck(LinearFunction.apply, (x.t().contiguous().t(), w, None))


def test_linear_function_skips_unneeded_gradients():
    x, w = _f64(5, 3), _f64(4, 3, seed=1).requires_grad_()
    LinearFunction.apply(x, w, None).sum().backward()
    assert x.grad is None and w.grad is not None


def test_relu_function_derivative_at_zero_is_zero():
    x = torch.tensor([-1.0, 0.0, 0.5], dtype=torch.float64, requires_grad=True)
    y = ReLUFunction.apply(x)
    y.sum().backward()
    assert y.tolist() == [0.0, 0.0, 0.5]
    assert x.grad.tolist() == [0.0, 0.0, 1.0]  # same convention as torch.relu
    x2 = x.detach().clone().requires_grad_()
    torch.relu(x2).sum().backward()
    assert x2.grad.tolist() == x.grad.tolist()


def test_relu_function_gradchecks_away_from_zero():
    x = _f64(4, 6)
    x = (x + 0.1 * x.sign()).requires_grad_()
    assert torch.autograd.gradcheck(ReLUFunction.apply, (x,))
    assert torch.autograd.gradgradcheck(ReLUFunction.apply, (x,))


@pytest.mark.parametrize("args, fragment", [
    ((torch.zeros(2, 3, 4), torch.zeros(5, 4), None), "[2, 3, 4]"),
    ((torch.zeros(2, 3), torch.zeros(5, 4), None), "in_features mismatch"),
    ((torch.zeros(2, 4), torch.zeros(5, 4), torch.zeros(4)), "bias must be 1-D of length out_features=5"),
    ((torch.zeros(2, 4), torch.zeros(5, 4, dtype=torch.float64), None), "one dtype"),
    ((torch.zeros(2, 4, dtype=torch.long), torch.zeros(5, 4, dtype=torch.long), None), "floating point"),
])
def test_linear_function_bad_input_names_the_shapes(args, fragment):
    with pytest.raises(InputError) as info:
        LinearFunction.apply(*args)
    assert fragment in str(info.value)
    assert "x: [" in str(info.value)


@pytest.mark.parametrize("backend", ["python", "compiled"])
def test_modules_match_torch_nn(backend):
    torch.manual_seed(0)
    layer = Linear(6, 4, backend=backend)
    ref = torch.nn.Linear(6, 4)
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(3, 6)
    torch.testing.assert_close(layer(x), ref(x))
    torch.testing.assert_close(layer(x.reshape(3, 1, 6)), ref(x).reshape(3, 1, 4))  # (..., in) inputs
    torch.testing.assert_close(ReLU(backend=backend)(x), torch.relu(x))
    assert Linear(6, 4, bias=False, backend=backend)(x).shape == (3, 4)


def test_fully_connected_net_structure_and_state_dict():
    net = FullyConnectedNet(784, 784, 32, backend="python")
    kinds = [type(m).__name__ for m in net.children()]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert list(net.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    assert net.fc1.weight.shape == (32, 784) and net.fc2.weight.shape == (32, 32) and net.fc3.weight.shape == (784, 32)
    assert "backend='python'" in repr(net)


def test_fully_connected_net_backends_agree_float32():
    """Compiled vs Python in float32, course sizes: outputs rtol/atol 1e-5, gradients 1e-4."""
    torch.manual_seed(0)
    net = FullyConnectedNet(784, 784, 32, backend="python")
    x, y = torch.rand(32, 784), torch.rand(32, 784)
    results = {}
    for backend in ("python", "compiled"):
        net.backend = backend
        net.zero_grad()
        out = net(x)
        (0.5 * (out - y).pow(2).sum()).backward()
        results[backend] = [out.detach()] + [p.grad.clone() for p in net.parameters()]
    for a, b in zip(results["python"], results["compiled"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(results["python"][0], results["compiled"][0], rtol=1e-5, atol=1e-5)


def test_state_dict_moves_between_backends():
    a = FullyConnectedNet(10, 3, 4, backend="python")
    b = FullyConnectedNet(10, 3, 4, backend="compiled")
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 10)
    torch.testing.assert_close(a(x), b(x))


def test_backend_validation():
    with pytest.raises(ParameterError, match="backend must be one of"):
        FullyConnectedNet(4, 4, 4, backend="cuda")
    net = FullyConnectedNet(4, 4, 4)
    with pytest.raises(ParameterError):
        net.backend = "fast"
    with pytest.raises(InputError, match=r"\(\.\.\., 4\)"):
        net(torch.zeros(2, 5))


def test_auto_backend_uses_compiled_when_built():
    assert extension.available(), extension.status()
    net = FullyConnectedNet(8, 8, 4)  # auto
    x = torch.randn(2, 8, requires_grad=True)
    y = net(x)
    assert "LinearFn" in y.grad_fn.name()  # the C++ autograd node of restorekit::linear


@pytest.fixture
def no_extension(monkeypatch):
    """Pretend restorekit._C is not built."""
    def missing():
        raise ImportError("No module named 'restorekit._C'")

    monkeypatch.setattr(extension, "_import_compiled", missing)
    monkeypatch.setattr(extension, "_module", None)
    monkeypatch.setattr(extension, "_tried", False)
    monkeypatch.setattr(extension, "_error", None)
    monkeypatch.setattr(extension, "_warned", False)
    yield


def test_missing_extension_is_said_clearly(no_extension):
    assert not extension.available()
    info = extension.status()
    assert info["built"] is False and "pip install" in info["fix"] and "restorekit._C" in info["error"]
    with pytest.raises(ExtensionMissingError, match="not available.*pip install --no-build-isolation -e"):
        FullyConnectedNet(4, 4, 4, backend="compiled")(torch.zeros(1, 4))
    net = FullyConnectedNet(4, 4, 4, backend="auto")
    with pytest.warns(RuntimeWarning, match="Python reference backend"):
        y = net(torch.zeros(1, 4))
    assert y.shape == (1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net(torch.zeros(1, 4))  # warned once only


def test_importing_restorekit_nn_loads_nothing_compiled():
    code = ("import sys, restorekit; assert 'torch' not in sys.modules; import restorekit.nn; "
            "print('restorekit._C' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
