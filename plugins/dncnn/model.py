"""The course DnCNN: a plain stack of 3x3 convolutions that predicts the noise.

Layout (Zhang et al. 2017, as taught in the course)::

    conv(C -> F) + ReLU
    hidden_layers x [conv(F -> F) + ReLU]
    conv(F -> C)

and the output is the residual ``x - net(x)``: the network estimates the
noise and the restorer subtracts it. All convolutions are 3x3 with padding 1,
so the output has the input's size; ``hidden_channels`` (F) and
``hidden_layers`` set width and depth, so deeper or wider variants are the
same class. ``use_bias=False`` removes every bias (the course's "bias-free"
variant, which generalises better to noise levels not seen in training).

Initialisation: Kaiming-normal weights (fan-in, ReLU gain) and zero biases,
with the last convolution set to zero so that a new network is the identity
``x -> x``. With PyTorch's default initialisation a 10-layer plain stack
sits for hundreds of steps on the plateau "predict no noise" (the loss stays
at sigma^2); started this way it leaves it within tens of steps.
"""

from __future__ import annotations

import torch
from torch import nn

from restorekit.learned import conv_relu_stack, start_as_identity

KERNEL_SIZE = 3


class DnCNN(nn.Module):
    """Residual denoising CNN.

    Parameters
    ----------
    channels : int
        Image channels in and out (3 for colour, 1 for grayscale).
    hidden_layers : int
        Number of hidden ``conv + ReLU`` blocks between the first and last convolution.
    hidden_channels : int
        Feature maps of every hidden convolution.
    use_bias : bool
        Whether the convolutions have biases.

    Examples
    --------
    >>> import torch
    >>> net = DnCNN(channels=1, hidden_layers=2, hidden_channels=8)
    >>> net(torch.rand(1, 1, 16, 16)).shape
    torch.Size([1, 1, 16, 16])
    >>> net.receptive_field
    9
    """

    def __init__(self, channels: int = 3, hidden_layers: int = 8, hidden_channels: int = 64,
                 use_bias: bool = True) -> None:
        super().__init__()
        if channels < 1 or hidden_layers < 0 or hidden_channels < 1:
            raise ValueError("channels and hidden_channels must be >= 1 and hidden_layers >= 0")
        self.channels = int(channels)
        self.hidden_layers = int(hidden_layers)
        self.hidden_channels = int(hidden_channels)
        self.use_bias = bool(use_bias)
        self.net = conv_relu_stack(channels, hidden_channels, hidden_layers, channels, bias=use_bias,
                                   kernel_size=KERNEL_SIZE)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal hidden weights, zero biases, a zero last layer (the identity map)."""
        start_as_identity(self.net)

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input window that one output pixel sees."""
        return (KERNEL_SIZE - 1) * (self.hidden_layers + 2) + 1

    def arch(self) -> dict:
        """The constructor's arguments (stored with shipped weights)."""
        return {"channels": self.channels, "hidden_layers": self.hidden_layers,
                "hidden_channels": self.hidden_channels, "use_bias": self.use_bias}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.net(x)
