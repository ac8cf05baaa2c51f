"""The compiled ops from Python: fake kernels for ``torch.compile`` and thin callable wrappers.

The ops themselves (schemas, CPU and CUDA kernels, autograd) are C++ in ``csrc/``; importing
``restorekit._C`` registers them as

=====================================  ==================================================
``torch.ops.restorekit.linear``        ``x @ weight.T + bias``
``torch.ops.restorekit.relu``          ``max(x, 0)`` (any shape)
``torch.ops.restorekit.linear_relu``   ``max(x @ weight.T + bias, 0)``, fused
``..._backward``                       their derivatives, each a registered op of its own
=====================================  ==================================================

with ``x`` of shape (N, K), ``weight`` (M, K), ``bias`` (M,) or None, in float32 or float64
(CUDA also float16 and bfloat16). They are differentiable (autograd is registered in C++; the
backward ops are differentiable too, so double backward works), and this module registers their
fake kernels, so ``torch.compile(fullgraph=True)`` traces them.

Conventions
-----------
* ReLU derivative at exactly 0 is **0**: the mask is ``out > 0`` (same as ``torch.relu``, the
  Python reference Functions, and the CPU and CUDA kernels).
* Bad arguments (wrong rank, mismatched sizes, mixed dtypes or devices, integer dtypes, a NaN that
  reaches the result, NaN in ``grad_out``) raise ``RuntimeError`` naming every argument's shape,
  dtype and device. A NaN found on CUDA synchronises the stream to raise.

Examples
--------
>>> import torch
>>> from restorekit.nn import ops
>>> x, w, b = torch.randn(4, 3), torch.randn(2, 3), torch.randn(2)
>>> y = ops.linear_relu(x, w, b)
>>> torch.allclose(y, torch.relu(x @ w.T + b), atol=1e-6)
True
"""

from __future__ import annotations

import torch

from . import extension

__all__ = ["linear", "relu", "linear_relu", "OPS"]

#: The forward ops and their backward ops, by name in the ``restorekit`` namespace.
OPS = {
    "linear": "linear_backward",
    "relu": "relu_backward",
    "linear_relu": "linear_relu_backward",
}

_registered = False


@torch.compiler.assume_constant_result
def _loaded() -> bool:
    """Load the extension; under torch.compile this runs at trace time, outside the graph."""
    extension.load()
    return True


def _op(name: str):
    # torch.compile traces torch.ops.restorekit.*; eager calls take the extension's direct entry
    # points to the same dispatcher ops (see restorekit.nn.modules.compiled_ops)
    if torch.compiler.is_compiling():
        _loaded()
        return getattr(torch.ops.restorekit, name).default
    return getattr(extension.load(), name)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Compiled ``x @ weight.T + bias`` (``torch.ops.restorekit.linear``); x (N, K), weight (M, K)."""
    return _op("linear")(x, weight, bias)


def relu(x: torch.Tensor) -> torch.Tensor:
    """Compiled ``max(x, 0)`` (``torch.ops.restorekit.relu``), derivative 0 at 0."""
    return _op("relu")(x)


def linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Compiled fused ``max(x @ weight.T + bias, 0)`` (``torch.ops.restorekit.linear_relu``).

    Saves ``x``, ``weight`` and its output for backward, never the pre-activation.
    """
    return _op("linear_relu")(x, weight, bias)


# ---- fake kernels (shapes, dtypes and devices only; same checks as csrc/checks.h) -------------
def _describe(**tensors) -> str:
    return ", ".join(
        f"{k}: None" if t is None else f"{k}: {list(t.shape)} {str(t.dtype).replace('torch.', '')} {t.device}"
        for k, t in tensors.items()
    )


def _check_common(op: str, args: str, ref: torch.Tensor, *tensors: torch.Tensor) -> None:
    for t in tensors:
        torch._check(t.layout == torch.strided, lambda: f"restorekit::{op}: only dense tensors; got {args}")
        torch._check(t.device == ref.device, lambda: f"restorekit::{op}: all tensors must be on the same device; got {args}")
        torch._check(t.dtype == ref.dtype, lambda: f"restorekit::{op}: all tensors must have the same dtype; got {args}")
        allowed = (torch.float32, torch.float64) + ((torch.float16, torch.bfloat16) if t.device.type == "cuda" else ())
        torch._check(t.dtype in allowed, lambda: f"restorekit::{op}: dtype {t.dtype} is not supported on {t.device.type}; got {args}")


def _check_linear(op: str, x, weight, bias) -> None:
    args = _describe(x=x, weight=weight, bias=bias)
    _check_common(op, args, x, x, weight, *(() if bias is None else (bias,)))
    torch._check(x.dim() == 2, lambda: f"restorekit::{op}: x must be 2-D (batch, in_features); got {args}")
    torch._check(weight.dim() == 2, lambda: f"restorekit::{op}: weight must be 2-D (out_features, in_features); got {args}")
    torch._check(x.shape[1] == weight.shape[1], lambda: f"restorekit::{op}: in_features mismatch; got {args}")
    if bias is not None:
        torch._check(bias.dim() == 1 and bias.shape[0] == weight.shape[0],
                     lambda: f"restorekit::{op}: bias must be 1-D of length out_features; got {args}")


def _check_linear_backward(op: str, grad_out, x, weight, out=None) -> None:
    args = _describe(grad_out=grad_out, x=x, weight=weight, **({} if out is None else {"out": out}))
    _check_common(op, args, x, grad_out, x, weight, *(() if out is None else (out,)))
    torch._check(grad_out.dim() == 2 and x.dim() == 2 and weight.dim() == 2,
                 lambda: f"restorekit::{op}: grad_out, x and weight must be 2-D; got {args}")
    torch._check(x.shape[1] == weight.shape[1], lambda: f"restorekit::{op}: in_features mismatch; got {args}")
    torch._check(grad_out.shape[0] == x.shape[0] and grad_out.shape[1] == weight.shape[0],
                 lambda: f"restorekit::{op}: grad_out must be (batch, out_features); got {args}")
    if out is not None:
        torch._check(out.shape == grad_out.shape, lambda: f"restorekit::{op}: out must have the shape of grad_out; got {args}")


def _linear_fake(x, weight, bias=None):
    _check_linear("linear", x, weight, bias)
    return x.new_empty((x.shape[0], weight.shape[0]))


def _linear_relu_fake(x, weight, bias=None):
    _check_linear("linear_relu", x, weight, bias)
    return x.new_empty((x.shape[0], weight.shape[0]))


def _grads_fake(x, weight, output_mask):
    return (
        x.new_empty(x.shape) if output_mask[0] else None,
        weight.new_empty(weight.shape) if output_mask[1] else None,
        weight.new_empty((weight.shape[0],)) if output_mask[2] else None,
    )


def _linear_backward_fake(grad_out, x, weight, output_mask):
    _check_linear_backward("linear_backward", grad_out, x, weight)
    return _grads_fake(x, weight, output_mask)


def _linear_relu_backward_fake(grad_out, x, weight, out, output_mask):
    _check_linear_backward("linear_relu_backward", grad_out, x, weight, out)
    return _grads_fake(x, weight, output_mask)


def _relu_fake(x):
    _check_common("relu", _describe(x=x), x, x)
    return x.new_empty(x.shape)


def _relu_backward_fake(grad_out, out):
    args = _describe(grad_out=grad_out, out=out)
    _check_common("relu_backward", args, out, grad_out, out)
    torch._check(grad_out.shape == out.shape, lambda: f"restorekit::relu_backward: shapes differ; got {args}")
    return out.new_empty(out.shape)


def _register() -> None:
    """Register the fake kernels (once; called by :func:`restorekit.nn.extension.load`)."""
    global _registered
    if _registered:
        return
    torch.library.register_fake("restorekit::linear", _linear_fake)
    torch.library.register_fake("restorekit::linear_relu", _linear_relu_fake)
    torch.library.register_fake("restorekit::relu", _relu_fake)
    torch.library.register_fake("restorekit::linear_backward", _linear_backward_fake)
    torch.library.register_fake("restorekit::linear_relu_backward", _linear_relu_backward_fake)
    torch.library.register_fake("restorekit::relu_backward", _relu_backward_fake)
    _registered = True


def _ops_defined() -> bool:
    try:
        torch.ops.restorekit.linear_relu.default
    except (AttributeError, RuntimeError):
        return False
    return True


# torch imports this module itself (the C++ library names it with set_python_module) when it needs
# a fake kernel; the ops are loaded then, so register at once.
if _ops_defined():
    _register()
