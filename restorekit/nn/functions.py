"""Reference autograd Functions with hand-written backward passes: Linear and ReLU.

These are the readable, pure-PyTorch definitions the compiled ops (``torch.ops.restorekit.*``)
are validated against. Their backward passes are written with differentiable torch operations,
so double backward (``gradgradcheck``) works through them too.

Conventions (shared with the compiled ops)
-------------------------------------------
* ``LinearFunction``: ``y = x @ W.T + b`` with x (N, in), W (out, in), b (out,) or None.
* ``ReLUFunction``: ``y = max(x, 0)``; its derivative at exactly 0 is **0** (the gradient passes
  where ``not x <= 0``), as in ``torch.relu``, the C++ and the CUDA kernels.
* NaN propagates as in torch: ``relu(NaN)`` is NaN and passes the gradient, as ``torch.relu`` does;
  nothing checks values (:func:`restorekit.nn.detect_nan` is the opt-in check, for both backends).

Examples
--------
>>> import torch
>>> from restorekit.nn import LinearFunction, ReLUFunction
>>> x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
>>> w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
>>> b = torch.randn(4, dtype=torch.float64, requires_grad=True)
>>> y = ReLUFunction.apply(LinearFunction.apply(x, w, b))
>>> y.shape
torch.Size([5, 4])
>>> torch.autograd.gradcheck(LinearFunction.apply, (x, w, b))
True
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["LinearFunction", "ReLUFunction", "check_linear_inputs"]


def _desc(t: torch.Tensor | None) -> str:
    return "None" if t is None else f"{list(t.shape)} {str(t.dtype).replace('torch.', '')} {t.device}"


def check_linear_inputs(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
    """Raise :class:`~restorekit.errors.InputError` naming the shapes if ``x W^T + b`` is ill-posed."""
    args = f"x: {_desc(x)}, weight: {_desc(weight)}, bias: {_desc(bias)}"
    tensors = [x, weight] + ([] if bias is None else [bias])
    if any(not t.is_floating_point() for t in tensors):
        raise InputError(f"linear: x, weight and bias must be floating point; got {args}")
    if len({t.dtype for t in tensors}) > 1 or len({t.device for t in tensors}) > 1:
        raise InputError(f"linear: x, weight and bias must share one dtype and one device; got {args}")
    if x.dim() != 2 or weight.dim() != 2:
        raise InputError(f"linear: x must be (batch, in_features) and weight (out_features, in_features); got {args}")
    if x.shape[1] != weight.shape[1]:
        raise InputError(f"linear: in_features mismatch ({x.shape[1]} vs {weight.shape[1]}); got {args}")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != weight.shape[0]):
        raise InputError(f"linear: bias must be 1-D of length out_features={weight.shape[0]}; got {args}")


class LinearFunction(torch.autograd.Function):
    """``y = x @ W.T + b`` with a hand-written backward.

    Forward saves ``x`` and ``W`` (not ``b``). Backward, for an upstream gradient ``g`` (N, out)::

        dL/dx = g @ W        dL/dW = g.T @ x        dL/db = g.sum(0)

    each computed only when that input requires a gradient.

    Parameters (of ``apply``)
    -------------------------
    x : Tensor, shape (N, in_features)
    weight : Tensor, shape (out_features, in_features)
    bias : Tensor, shape (out_features,), or None

    Examples
    --------
    >>> import torch
    >>> from restorekit.nn import LinearFunction
    >>> LinearFunction.apply(torch.ones(2, 3), torch.ones(4, 3), torch.zeros(4))
    tensor([[3., 3., 3., 3.],
            [3., 3., 3., 3.]])
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        check_linear_inputs(x, weight, bias)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out = x.mm(weight.t())
        if bias is not None:
            out = out + bias
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_w = grad_out.t().mm(x)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(0)
        return grad_x, grad_w, grad_b


class ReLUFunction(torch.autograd.Function):
    """``y = max(x, 0)`` elementwise, with a hand-written backward.

    Forward saves its input ``x`` (the textbook version; the compiled fused op saves its output
    instead). Backward: ``dL/dx = g`` where ``not x <= 0``, else 0 -- the derivative at exactly 0 is
    0, and a NaN input passes the gradient (as ``torch.relu``).

    Examples
    --------
    >>> import torch
    >>> from restorekit.nn import ReLUFunction
    >>> x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    >>> ReLUFunction.apply(x).sum().backward()
    >>> x.grad
    tensor([0., 0., 1.])
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise InputError(f"relu: x must be floating point; got x: {_desc(x)}")
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return torch.where(x <= 0, 0.0, grad_out)
