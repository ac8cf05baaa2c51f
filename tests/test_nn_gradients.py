"""Closed-form dL/dW1, dL/db1 of FullyConnectedNet against autograd."""

from __future__ import annotations

import pytest
import torch

from restorekit.errors import InputError
from restorekit.nn import FullyConnectedNet, first_layer_gradients, first_layer_gradients_closed_form


@pytest.mark.parametrize("backend", ["python", "compiled"])
@pytest.mark.parametrize("batch", [1, 7, 32])
def test_closed_form_matches_autograd(backend, batch):
    torch.manual_seed(batch)
    net = FullyConnectedNet(20, 11, 6, backend=backend).double()
    x = torch.randn(batch, 20, dtype=torch.float64)
    y = torch.randn(batch, 11, dtype=torch.float64)
    dW1, db1 = first_layer_gradients(net, x, y)
    loss = 0.5 * (net(x) - y).pow(2).sum()
    loss.backward()
    torch.testing.assert_close(dW1, net.fc1.weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(db1, net.fc1.bias.grad, rtol=1e-10, atol=1e-12)


def test_closed_form_course_size_float32():
    torch.manual_seed(0)
    net = FullyConnectedNet(784, 784, 32, backend="python")
    x = torch.rand(32, 784)
    dW1, db1 = first_layer_gradients(net, x, x)
    (0.5 * (net(x) - x).pow(2).sum()).backward()
    torch.testing.assert_close(dW1, net.fc1.weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(db1, net.fc1.bias.grad, rtol=1e-4, atol=1e-5)


def test_closed_form_per_sample_formula():
    """One sample: dL/dW1 = (G1 W2^T G2 W3^T e) x^T with G = diag(relu'(z))."""
    torch.manual_seed(3)
    x, e = torch.randn(1, 5, dtype=torch.float64), torch.randn(1, 4, dtype=torch.float64)
    W2, W3 = torch.randn(3, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    g1, g2 = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64), torch.tensor([[0.0, 1.0, 1.0]], dtype=torch.float64)
    delta = torch.diag(g1[0]) @ W2.t() @ torch.diag(g2[0]) @ W3.t() @ e[0]
    dW1, db1 = first_layer_gradients_closed_form(x, e, W2, W3, g1, g2)
    torch.testing.assert_close(dW1, torch.outer(delta, x[0]))
    torch.testing.assert_close(db1, delta)


def test_bad_shapes():
    net = FullyConnectedNet(5, 4, 3, backend="python")
    with pytest.raises(InputError, match=r"\(2, 4\)"):
        first_layer_gradients(net, torch.zeros(2, 5), torch.zeros(2, 5))
