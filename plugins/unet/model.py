"""A small encoder-decoder UNet for image restoration.

The network sees a damaged colour image and predicts a correction that is
added to it (residual learning: ``x_hat = y + net(y)``), which is easier to
learn than the image itself when the input is already close to the answer
(a blurred photo, or a Wiener estimate with amplified noise).

Layout for ``depth=2`` (``c = base_channels``)::

    in ─ conv c ─ conv c ───────────────────────────── cat ─ conv c ─ conv c ─ conv out (+ in)
                  └ down ─ conv 2c ─ conv 2c ─── cat ─ up ┘
                           └ down ─ conv 4c ─ conv 4c ─ up ┘

``down`` is a stride-2 3x3 convolution, ``up`` a stride-2 transposed
convolution; every conv is 3x3 followed by ReLU. Height and width must be
multiples of ``2 ** depth``; :meth:`UNet.forward_padded` pads any size
(by reflection) and crops the result back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Encoder-decoder with skip connections and a residual output.

    Parameters
    ----------
    channels : int
        Image channels in and out (3 for colour).
    base_channels : int
        Feature maps at full resolution; doubled at each level down.
    depth : int
        Number of down-sampling steps (the image must be at least
        :attr:`min_size` pixels high and wide).

    Examples
    --------
    >>> import torch
    >>> net = UNet(channels=3, base_channels=8, depth=2)
    >>> net(torch.rand(1, 3, 32, 32)).shape
    torch.Size([1, 3, 32, 32])
    """

    def __init__(self, channels: int = 3, base_channels: int = 32, depth: int = 2) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.channels = channels
        self.base_channels = base_channels
        self.depth = depth
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.inc = _block(channels, widths[0])
        self.downs = nn.ModuleList(nn.Conv2d(widths[i], widths[i], 3, stride=2, padding=1) for i in range(depth))
        self.encs = nn.ModuleList(_block(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth))
        self.decs = nn.ModuleList(_block(2 * widths[i], widths[i]) for i in range(depth))
        self.out = nn.Conv2d(widths[0], channels, 1)

    @property
    def multiple(self) -> int:
        """Height and width must be multiples of this (``2 ** depth``)."""
        return 2**self.depth

    @property
    def min_size(self) -> int:
        """The smallest height/width restored: 4 pixels at the coarsest level."""
        return 4 * 2**self.depth

    def arch(self) -> dict:
        """The architecture parameters (stored with shipped weights)."""
        return {"channels": self.channels, "base_channels": self.base_channels, "depth": self.depth}

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        skips = []
        h = self.inc(y)
        for down, enc in zip(self.downs, self.encs):
            skips.append(h)
            h = enc(F.relu(down(h)))
        for i in reversed(range(self.depth)):
            h = self.decs[i](torch.cat([self.ups[i](h), skips[i]], dim=1))
        return y + self.out(h)

    def forward_padded(self, y: torch.Tensor) -> torch.Tensor:
        """Run on any height/width >= :attr:`min_size`: reflect-pad to a multiple, then crop."""
        h, w = y.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            y = F.pad(y, (0, pw, 0, ph), mode="reflect")
        return self.forward(y)[..., :h, :w]
