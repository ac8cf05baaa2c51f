r"""Closed-form gradients of the first layer of :class:`~restorekit.nn.FullyConnectedNet`.

For the network

.. math::

    z_1 = W_1 x + b_1,\; h_1 = \mathrm{relu}(z_1),\;
    z_2 = W_2 h_1 + b_2,\; h_2 = \mathrm{relu}(z_2),\;
    \hat y = W_3 h_2 + b_3

and the loss :math:`L = \tfrac12 \lVert \hat y - y \rVert^2`, write
:math:`g_k = \mathrm{relu}'(z_k) = [z_k > 0]` (0 at exactly 0, the library-wide convention),
:math:`G_k = \mathrm{diag}(g_k)` and :math:`e = \hat y - y`. The chain rule gives, per sample,

.. math::

    \frac{\partial L}{\partial b_1} = G_1 W_2^\top G_2 W_3^\top e, \qquad
    \frac{\partial L}{\partial W_1} = \left(G_1 W_2^\top G_2 W_3^\top e\right) x^\top .

For a batch (rows are samples, :math:`L = \tfrac12 \sum_i \lVert \hat y_i - y_i \rVert^2`, a sum,
not a mean) the per-sample terms add up; with :math:`E` (B, dout), :math:`X` (B, din) and the masks
:math:`g_1, g_2` as (B, n) arrays:

.. math::

    \Delta_2 = (E W_3) \odot g_2,\quad \Delta_1 = (\Delta_2 W_2) \odot g_1,\quad
    \frac{\partial L}{\partial W_1} = \Delta_1^\top X,\quad
    \frac{\partial L}{\partial b_1} = \textstyle\sum_i \Delta_{1,i}.

Examples
--------
>>> import torch
>>> from restorekit.nn import FullyConnectedNet, first_layer_gradients
>>> torch.manual_seed(0) and None
>>> net = FullyConnectedNet(6, 5, 4, backend="python").double()
>>> x, y = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
>>> dW1, db1 = first_layer_gradients(net, x, y)
>>> (0.5 * (net(x) - y).pow(2).sum()).backward()
>>> torch.allclose(dW1, net.fc1.weight.grad) and torch.allclose(db1, net.fc1.bias.grad)
True
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["first_layer_gradients", "first_layer_gradients_closed_form"]


def first_layer_gradients_closed_form(
    x: torch.Tensor,
    residual: torch.Tensor,
    W2: torch.Tensor,
    W3: torch.Tensor,
    g1: torch.Tensor,
    g2: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""dL/dW1 and dL/db1 from the closed form :math:`(G_1 W_2^\top G_2 W_3^\top e)\,x^\top`.

    Parameters
    ----------
    x : Tensor, shape (B, din)
        The batch of inputs.
    residual : Tensor, shape (B, dout)
        :math:`e = \hat y - y` for each sample.
    W2 : Tensor, shape (n, n)
    W3 : Tensor, shape (dout, n)
    g1, g2 : Tensor, shape (B, n)
        ReLU derivatives at the two hidden pre-activations, :math:`[z_k > 0]` (0 or 1).

    Returns
    -------
    dW1 : Tensor, shape (n, din)
    db1 : Tensor, shape (n,)
        Gradients of :math:`L = \tfrac12 \sum_i \lVert \hat y_i - y_i \rVert^2`.
    """
    if x.dim() != 2 or residual.dim() != 2 or residual.shape[0] != x.shape[0]:
        raise InputError(f"x must be (B, din) and residual (B, dout); got {list(x.shape)} and {list(residual.shape)}")
    delta2 = (residual @ W3) * g2  # (B, n): G2 W3^T e, one row per sample
    delta1 = (delta2 @ W2) * g1  # (B, n): G1 W2^T G2 W3^T e
    return delta1.t() @ x, delta1.sum(0)


def first_layer_gradients(net, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""dL/dW1 and dL/db1 of ``net`` (a :class:`FullyConnectedNet`) under :math:`L=\tfrac12\lVert\hat y-y\rVert^2`.

    Runs the forward pass without autograd to get :math:`g_1, g_2` and the residual, then
    applies :func:`first_layer_gradients_closed_form`.

    Parameters
    ----------
    net : FullyConnectedNet
    x : Tensor, shape (B, din)
    y : Tensor, shape (B, dout)
        Targets.

    Returns
    -------
    dW1 : Tensor, shape (n, din)
    db1 : Tensor, shape (n,)
    """
    if y.shape != (x.shape[0], net.dout):
        raise InputError(f"y must be (B, dout) = ({x.shape[0]}, {net.dout}); got {list(y.shape)}")
    W1, b1 = net.fc1.weight.detach(), net.fc1.bias.detach()
    W2, b2 = net.fc2.weight.detach(), net.fc2.bias.detach()
    W3, b3 = net.fc3.weight.detach(), net.fc3.bias.detach()
    with torch.no_grad():
        z1 = x @ W1.t() + b1
        h1 = z1.clamp(min=0)
        z2 = h1 @ W2.t() + b2
        h2 = z2.clamp(min=0)
        residual = h2 @ W3.t() + b3 - y
        g1 = (z1 > 0).to(x.dtype)
        g2 = (z2 > 0).to(x.dtype)
        return first_layer_gradients_closed_form(x, residual, W2, W3, g1, g2)
