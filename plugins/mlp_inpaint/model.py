"""The course's MLP inpainter: ``FullyConnectedNet(784, 784, n=32)`` on MNIST digits.

A 28x28 digit is flattened to 784 values, normalised by MNIST's mean and
standard deviation, its lower half (rows 14-27) set to 0 (the normalised
mean), and passed through Linear(784, 32) - ReLU - Linear(32, 32) - ReLU -
Linear(32, 784), built from restorekit's own Linear/ReLU autograd functions
(:mod:`restorekit.nn`; the compiled kernels when the extension is built).
The output, un-normalised, is the whole digit; its lower half fills the
missing rows.
"""

from __future__ import annotations

import torch

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
SIDE = 28
PIXELS = SIDE * SIDE
HIDDEN = 32


def lower_half_mask(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The course mask, ``(28, 28)``: 1 on the observed upper 14 rows, 0 on the lower 14."""
    m = torch.ones(SIDE, SIDE, dtype=dtype)
    m[SIDE // 2 :, :] = 0
    return m


def build_net(backend: str = "auto") -> torch.nn.Module:
    """``FullyConnectedNet(784, 784, n=32)`` on the requested backend (``auto``, ``python`` or ``compiled``)."""
    from restorekit.nn import FullyConnectedNet

    return FullyConnectedNet(PIXELS, PIXELS, n=HIDDEN, backend=backend)


def network_input(digits: torch.Tensor) -> torch.Tensor:
    """Digits ``(N, 1, 28, 28)`` in [0, 1] -> normalised, lower half zeroed, flattened ``(N, 784)``."""
    x = (digits.reshape(-1, SIDE, SIDE) - MNIST_MEAN) / MNIST_STD
    x = x * lower_half_mask(x.dtype).to(x.device)
    return x.reshape(-1, PIXELS)


def network_target(digits: torch.Tensor) -> torch.Tensor:
    """Digits ``(N, 1, 28, 28)`` in [0, 1] -> the normalised, flattened ``(N, 784)`` target."""
    return ((digits - MNIST_MEAN) / MNIST_STD).reshape(-1, PIXELS)


def to_image(output: torch.Tensor) -> torch.Tensor:
    """Network output ``(N, 784)`` -> digits ``(N, 1, 28, 28)`` on the [0, 1] scale (not clipped)."""
    return (output * MNIST_STD + MNIST_MEAN).reshape(-1, 1, SIDE, SIDE)
