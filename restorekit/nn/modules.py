"""Modules on the reference Functions or the compiled ops: ``Linear``, ``ReLU``, ``FullyConnectedNet``.

Every module takes ``backend``:

``"auto"`` (default)
    the compiled ops when ``restorekit._C`` is built and supports the input's device and dtype,
    otherwise the Python Functions (with a one-time ``RuntimeWarning`` when the extension is
    missing, saying how to build it);
``"compiled"``
    always the compiled ops; raises :class:`~restorekit.errors.ExtensionMissingError` if the
    extension (or its CUDA kernels, for CUDA inputs) is not built;
``"python"``
    always :class:`~restorekit.nn.LinearFunction` / :class:`~restorekit.nn.ReLUFunction`.

The backend changes how the result is computed, never the parameters: a state dict saved with
one backend loads into the other, and NaN behaves the same in both (it propagates as in torch;
:func:`~restorekit.nn.detect_nan` is the opt-in check).

Examples
--------
>>> import torch
>>> from restorekit.nn import FullyConnectedNet
>>> net = FullyConnectedNet(784, 784, 32)           # 784 -> 32 -> 32 -> 784, the course MLP
>>> y = net(torch.rand(8, 784))
>>> y.shape
torch.Size([8, 784])
>>> net.backend = "python"                          # same weights, reference Functions
>>> torch.allclose(net(torch.zeros(1, 784)), net.fc3.bias + net.fc3.weight @ torch.relu(
...     net.fc2.weight @ torch.relu(net.fc1.bias) + net.fc2.bias), atol=1e-5)
True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ExtensionMissingError, ParameterError
from . import extension, nan_check
from .functions import LinearFunction, ReLUFunction

__all__ = ["Linear", "ReLU", "FullyConnectedNet", "BACKENDS", "compiled_ops", "resolve_backend"]

BACKENDS = ("auto", "python", "compiled")
_COMPILED_DTYPES = {"cpu": (torch.float32, torch.float64),
                    "cuda": (torch.float32, torch.float64, torch.float16, torch.bfloat16)}


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return backend


@torch.compiler.assume_constant_result
def _extension_state() -> tuple[bool, bool]:
    """(built, CUDA kernels built). Under torch.compile this runs once at trace time and is a
    constant in the graph, so tracing a module never traces the import of the extension."""
    return extension.available(), extension.cuda_built()


def resolve_backend(backend: str, x: torch.Tensor) -> str:
    """The backend (``"python"`` or ``"compiled"``) that ``backend`` means for input ``x``.

    Raises
    ------
    ExtensionMissingError
        For ``backend="compiled"`` when the extension, or its CUDA kernels for a CUDA ``x``, is
        not built.
    """
    _check_backend(backend)
    if backend == "python":
        return "python"
    device = x.device.type
    built, cuda_built = _extension_state()
    if backend == "compiled":
        if not built:
            extension.load()  # raises ExtensionMissingError with the reason and the fix
        if device == "cuda" and not cuda_built:
            raise ExtensionMissingError(
                "restorekit._C was built without its CUDA kernels, so backend='compiled' cannot run on "
                f"{x.device}. Rebuild with RESTOREKIT_CUDA=1 (needs nvcc and a CUDA build of torch), "
                "or use backend='python'."
            )
        return "compiled"
    if not built:
        extension.warn_missing_once(stacklevel=5)
        return "python"
    if x.dtype not in _COMPILED_DTYPES.get(device, ()) or (device == "cuda" and not cuda_built):
        return "python"
    return "compiled"


def compiled_ops():
    """(linear, linear_relu, relu): the compiled ops ``torch.ops.restorekit.*`` (call after
    :func:`resolve_backend` chose them, which loads the extension); ``torch.compile`` traces them
    through their fake kernels."""
    ops = torch.ops.restorekit
    return ops.linear.default, ops.linear_relu.default, ops.relu.default


def _flatten(x: torch.Tensor, features: int, what: str) -> torch.Tensor:
    if x.dim() < 1 or x.shape[-1] != features:
        from ..errors import InputError

        raise InputError(f"{what}: expected input of shape (..., {features}); got {list(x.shape)}")
    return x if x.dim() == 2 else x.reshape(-1, features)


class Linear(nn.Module):
    """Fully connected layer ``y = x @ W.T + b`` on the reference Function or the compiled op.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of each input and output sample.
    bias : bool
        Whether to learn an additive bias (default True).
    backend : {"auto", "python", "compiled"}
        See the module docstring.
    device, dtype
        Of the parameters.

    Notes
    -----
    Parameters ``weight`` (out_features, in_features) and ``bias`` (out_features,) are initialised
    as in :class:`torch.nn.Linear`. Inputs of shape (..., in_features) are accepted; the compiled
    op works on their (N, in_features) view.

    Examples
    --------
    >>> import torch
    >>> from restorekit.nn import Linear
    >>> layer = Linear(3, 2, backend="python")
    >>> layer(torch.randn(4, 3)).shape
    torch.Size([4, 2])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, backend: str = "auto",
                 device=None, dtype=None) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.backend = _check_backend(backend)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features, **factory))
        self.bias = nn.Parameter(torch.empty(self.out_features, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weight and uniform bias, as :class:`torch.nn.Linear`."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
        """``x @ W.T + b``, or ``max(x @ W.T + b, 0)`` (fused when compiled) if ``relu``."""
        x2 = _flatten(x, self.in_features, "Linear")
        if resolve_backend(self.backend, x2) == "compiled":
            linear, linear_relu, _ = compiled_ops()
            y = (linear_relu if relu else linear)(x2, self.weight, self.bias)
        else:
            y = LinearFunction.apply(x2, self.weight, self.bias)
            if relu:
                y = ReLUFunction.apply(y)
        if nan_check.enabled():
            nan_check.check(f"Linear(in_features={self.in_features}, out_features={self.out_features})", y,
                            x=x2, weight=self.weight, bias=self.bias)
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, backend={self.backend!r}")


class ReLU(nn.Module):
    """``max(x, 0)`` on the reference Function or the compiled op (derivative 0 at 0).

    Examples
    --------
    >>> import torch
    >>> from restorekit.nn import ReLU
    >>> ReLU(backend="python")(torch.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """

    def __init__(self, backend: str = "auto") -> None:
        super().__init__()
        self.backend = _check_backend(backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = compiled_ops()[2](x) if resolve_backend(self.backend, x) == "compiled" else ReLUFunction.apply(x)
        if nan_check.enabled():
            nan_check.check("ReLU", y, x=x)
        return y

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}"


class FullyConnectedNet(nn.Module):
    """The course network: Linear, ReLU, Linear, ReLU, Linear.

    ``din -> n -> n -> dout``; with the compiled backend each Linear+ReLU pair runs as one fused op
    (``torch.ops.restorekit.linear_relu``), which saves its output rather than the pre-activation
    for backward.

    Parameters
    ----------
    din : int
        Input features (784 for flattened 28x28 MNIST digits).
    dout : int
        Output features.
    n : int
        Hidden width of both hidden layers.
    backend : {"auto", "python", "compiled"}
        ``"auto"`` (default) uses the compiled ops when the extension is built (see the module
        docstring); settable later through the ``backend`` attribute.

    Attributes
    ----------
    fc1, relu1, fc2, relu2, fc3 : Linear, ReLU, Linear, ReLU, Linear
        The layers, in order; ``fc1.weight`` is W1 (n, din), ``fc3.weight`` is W3 (dout, n).

    Notes
    -----
    ``from restorekit.nn import FullyConnectedNet`` is the stable import path. The state dict keys
    are ``fc1.weight, fc1.bias, fc2.weight, fc2.bias, fc3.weight, fc3.bias``, whatever the backend.

    Examples
    --------
    >>> import torch
    >>> from restorekit.nn import FullyConnectedNet
    >>> torch.manual_seed(0) and None
    >>> net = FullyConnectedNet(784, 784, 32, backend="python")
    >>> x = torch.rand(32, 784)
    >>> loss = 0.5 * (net(x) - x).pow(2).sum()
    >>> loss.backward()
    >>> net.fc1.weight.grad.shape
    torch.Size([32, 784])
    """

    def __init__(self, din: int, dout: int, n: int, backend: str = "auto") -> None:
        super().__init__()
        self.din, self.dout, self.n = int(din), int(dout), int(n)
        self.fc1 = Linear(din, n, backend=backend)
        self.relu1 = ReLU(backend=backend)
        self.fc2 = Linear(n, n, backend=backend)
        self.relu2 = ReLU(backend=backend)
        self.fc3 = Linear(n, dout, backend=backend)
        self._backend = _check_backend(backend)

    @property
    def backend(self) -> str:
        """``"auto"``, ``"python"`` or ``"compiled"``; setting it sets every layer's backend."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = _check_backend(value)
        for layer in (self.fc1, self.relu1, self.fc2, self.relu2, self.fc3):
            layer.backend = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (..., din) to (..., dout)."""
        x2 = _flatten(x, self.din, "FullyConnectedNet")
        if resolve_backend(self._backend, x2) == "compiled":
            linear, linear_relu, _ = compiled_ops()
            h1 = linear_relu(x2, self.fc1.weight, self.fc1.bias)
            h2 = linear_relu(h1, self.fc2.weight, self.fc2.bias)
            y = linear(h2, self.fc3.weight, self.fc3.bias)
        else:
            h1 = ReLUFunction.apply(LinearFunction.apply(x2, self.fc1.weight, self.fc1.bias))
            h2 = ReLUFunction.apply(LinearFunction.apply(h1, self.fc2.weight, self.fc2.bias))
            y = LinearFunction.apply(h2, self.fc3.weight, self.fc3.bias)
        if nan_check.enabled():  # the first layer whose result holds NaN is named
            for name, inp, out, fc in (("fc1+relu1", x2, h1, self.fc1), ("fc2+relu2", h1, h2, self.fc2),
                                       ("fc3", h2, y, self.fc3)):
                nan_check.check(f"FullyConnectedNet {name}", out, x=inp, weight=fc.weight, bias=fc.bias)
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], self.dout)

    def extra_repr(self) -> str:
        return f"din={self.din}, dout={self.dout}, n={self.n}, backend={self._backend!r}"
