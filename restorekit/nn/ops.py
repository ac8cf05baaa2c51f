"""The compiled ops from Python: their fake kernels for ``torch.compile`` and thin wrappers.

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
backward ops are differentiable too, so double backward works).

Loading, in the shape of pytorch/extension-cpp: :func:`restorekit.nn.extension.load` imports
``restorekit._C`` (which defines the ops), then this module, whose import registers the fake
kernels (``torch.library.register_fake`` at module level), so ``torch.compile(fullgraph=True)``
traces the ops. This module imports nothing of restorekit's: the loader imports it, never the
reverse. Imported before the ops are defined, it raises ``ImportError`` saying to load them.

Conventions
-----------
* ReLU derivative at exactly 0 is **0**: the gradient passes where ``not out <= 0`` (same as
  ``torch.relu``, the Python reference Functions, and the CPU and CUDA kernels).
* NaN and infinities propagate as in torch's own ops: ``relu(NaN)`` is NaN, a NaN in ``x`` makes
  its rows of ``linear`` NaN, a NaN in ``grad_out`` reaches the gradients. No op checks values, so
  none reads anything back from the GPU (no synchronisation; CUDA-graph capture works). The opt-in
  check is :func:`restorekit.nn.detect_nan` (or ``RESTOREKIT_DETECT_NAN=1``), the same for both
  backends.
* Bad arguments (wrong rank, mismatched sizes, mixed dtypes or devices, integer dtypes, a size
  above 2**31 - 1 that BLAS cannot take) raise ``RuntimeError`` naming every argument's shape,
  dtype and device.

Examples
--------
>>> import torch
>>> from restorekit.nn import extension
>>> _ = extension.load()                # restorekit._C, then this module
>>> from restorekit.nn import ops
>>> x, w, b = torch.randn(4, 3), torch.randn(2, 3), torch.randn(2)
>>> y = ops.linear_relu(x, w, b)
>>> torch.allclose(y, torch.relu(x @ w.T + b), atol=1e-6)
True
>>> torch.ops.restorekit.linear(torch.empty(8, 3, device="meta"), w.to("meta")).shape  # fake kernel
torch.Size([8, 2])
"""

from __future__ import annotations

import torch

__all__ = ["linear", "relu", "linear_relu", "OPS"]

#: The forward ops and their backward ops, by name in the ``restorekit`` namespace.
OPS = {
    "linear": "linear_backward",
    "relu": "relu_backward",
    "linear_relu": "linear_relu_backward",
}

#: The largest size (batch, in_features, out_features) a BLAS product takes: 32-bit integers.
BLAS_INT_MAX = 2**31 - 1


def _ops_defined() -> bool:
    try:
        torch.ops.restorekit.linear_relu.default
    except (AttributeError, RuntimeError):
        return False
    return True


if not _ops_defined():
    raise ImportError(
        "restorekit.nn.ops registers the fake kernels of the compiled ops, which are not loaded yet; "
        "call restorekit.nn.extension.load() (it imports restorekit._C, then this module) instead of "
        "importing this module directly"
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Compiled ``x @ weight.T + bias`` (``torch.ops.restorekit.linear``); x (N, K), weight (M, K)."""
    return torch.ops.restorekit.linear.default(x, weight, bias)


def relu(x: torch.Tensor) -> torch.Tensor:
    """Compiled ``max(x, 0)`` (``torch.ops.restorekit.relu``), derivative 0 at 0, NaN kept."""
    return torch.ops.restorekit.relu.default(x)


def linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Compiled fused ``max(x @ weight.T + bias, 0)`` (``torch.ops.restorekit.linear_relu``).

    Saves ``x``, ``weight`` and its output for backward, never the pre-activation.
    """
    return torch.ops.restorekit.linear_relu.default(x, weight, bias)


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


def _check_blas_sizes(op: str, args: str, n, k, m) -> None:
    for what, size in (("the batch size N", n), ("in_features K", k), ("out_features M", m)):
        torch._check(size <= BLAS_INT_MAX, lambda: (
            f"restorekit::{op}: {what} = {size} is above {BLAS_INT_MAX}, the largest size BLAS takes (32-bit "
            f"integers); split the product into parts below that size, or use torch.nn.functional.linear; got {args}"))


def _check_linear(op: str, x, weight, bias) -> None:
    args = _describe(x=x, weight=weight, bias=bias)
    _check_common(op, args, x, x, weight, *(() if bias is None else (bias,)))
    torch._check(x.dim() == 2, lambda: f"restorekit::{op}: x must be 2-D (batch, in_features); got {args}")
    torch._check(weight.dim() == 2, lambda: f"restorekit::{op}: weight must be 2-D (out_features, in_features); got {args}")
    torch._check(x.shape[1] == weight.shape[1], lambda: f"restorekit::{op}: in_features mismatch; got {args}")
    _check_blas_sizes(op, args, x.shape[0], x.shape[1], weight.shape[0])
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
    _check_blas_sizes(op, args, x.shape[0], x.shape[1], weight.shape[0])
    if out is not None:
        torch._check(out.shape == grad_out.shape, lambda: f"restorekit::{op}: out must have the shape of grad_out; got {args}")


@torch.library.register_fake("restorekit::linear")
def _linear_fake(x, weight, bias=None):
    _check_linear("linear", x, weight, bias)
    return x.new_empty((x.shape[0], weight.shape[0]))


@torch.library.register_fake("restorekit::linear_relu")
def _linear_relu_fake(x, weight, bias=None):
    _check_linear("linear_relu", x, weight, bias)
    return x.new_empty((x.shape[0], weight.shape[0]))


def _grads_fake(x, weight, output_mask):
    return (
        x.new_empty(x.shape) if output_mask[0] else None,
        weight.new_empty(weight.shape) if output_mask[1] else None,
        weight.new_empty((weight.shape[0],)) if output_mask[2] else None,
    )


@torch.library.register_fake("restorekit::linear_backward")
def _linear_backward_fake(grad_out, x, weight, output_mask):
    _check_linear_backward("linear_backward", grad_out, x, weight)
    return _grads_fake(x, weight, output_mask)


@torch.library.register_fake("restorekit::linear_relu_backward")
def _linear_relu_backward_fake(grad_out, x, weight, out, output_mask):
    _check_linear_backward("linear_relu_backward", grad_out, x, weight, out)
    return _grads_fake(x, weight, output_mask)


@torch.library.register_fake("restorekit::relu")
def _relu_fake(x):
    _check_common("relu", _describe(x=x), x, x)
    return x.new_empty(x.shape)


@torch.library.register_fake("restorekit::relu_backward")
def _relu_backward_fake(grad_out, out):
    args = _describe(grad_out=grad_out, out=out)
    _check_common("relu_backward", args, out, grad_out, out)
    torch._check(grad_out.shape == out.shape, lambda: f"restorekit::relu_backward: shapes differ; got {args}")
    return out.new_empty(out.shape)
