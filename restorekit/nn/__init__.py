"""Neural-network building blocks: reference autograd Functions, modules and the compiled ops.

Stable import paths (used by plugins such as ``mlp_inpaint``)::

    from restorekit.nn import FullyConnectedNet, Linear, ReLU
    from restorekit.nn import LinearFunction, ReLUFunction
    from restorekit.nn import first_layer_gradients

* :mod:`~restorekit.nn.functions` -- ``LinearFunction``, ``ReLUFunction``: hand-written backward
  passes, the reference for the compiled ops.
* :mod:`~restorekit.nn.modules` -- ``Linear``, ``ReLU``, ``FullyConnectedNet(din, dout, n,
  backend="auto")``; ``backend`` picks the Python Functions or the compiled ops.
* :mod:`~restorekit.nn.gradients` -- closed-form dL/dW1, dL/db1 of ``FullyConnectedNet``.
* :mod:`~restorekit.nn.ops` -- ``torch.ops.restorekit.{linear, relu, linear_relu}`` wrappers and
  their fake kernels for ``torch.compile`` (imported by the loader once the ops are defined).
* :mod:`~restorekit.nn.extension` -- loading ``restorekit._C`` then ``ops`` (the extension-cpp
  order); ``status()`` for ``restorekit doctor``; ``load_jit()`` to compile ``csrc/`` just in time.
* :mod:`~restorekit.nn.nan_check` -- ``detect_nan()``: the opt-in NaN check of every layer (NaN
  otherwise propagates as in torch, with either backend).

Importing this package builds and loads nothing: the extension is imported on first use.

Examples
--------
>>> import torch
>>> from restorekit.nn import FullyConnectedNet
>>> net = FullyConnectedNet(784, 784, 32)            # compiled ops when restorekit._C is built
>>> net(torch.rand(2, 784)).shape
torch.Size([2, 784])
"""

from __future__ import annotations

from .functions import LinearFunction, ReLUFunction
from .gradients import first_layer_gradients, first_layer_gradients_closed_form
from .modules import BACKENDS, FullyConnectedNet, Linear, ReLU
from .nan_check import detect_nan

__all__ = [
    "BACKENDS", "FullyConnectedNet", "Linear", "LinearFunction", "ReLU", "ReLUFunction", "detect_nan",
    "first_layer_gradients", "first_layer_gradients_closed_form",
]
