"""FFDNet-style denoiser that takes the noise level as an input (Zhang, Zuo and Zhang, 2018).

The network reads the noisy image *and a map of its noise sigma*, FFDNet's idea, so one
model serves every level in its training range and can be asked for more or less
smoothing than the image holds (what plug-and-play solvers do). Two layouts:

``downscale=1`` (the shipped model): a DnCNN-style residual stack at full resolution
whose first convolution also reads the sigma map::

    conv(C + 1 -> F) + ReLU, hidden_layers x [conv(F -> F) + ReLU], conv(F -> C);
    output = image - that noise estimate

``downscale=2``: FFDNet's own layout, on 2x2 pixel blocks::

    image (N, C, H, W) ──pixel_unshuffle(2)──▶ (N, 4C, H/2, W/2) ─┐
    sigma map (N, 1, H, W) ──average over 2x2──▶ (N, 1, H/2, W/2) ─┴▶ concat (4C + 1 channels)
        conv(4C + 1 -> F) + ReLU, hidden_layers x [conv(F -> F) + ReLU], conv(F -> 4C)
        ──pixel_shuffle(2)──▶ noise estimate (N, C, H, W);  output = image - noise estimate

Working at half resolution makes a layer four times cheaper and doubles the
receptive field, but on this project's CPU training budget it learned far more
slowly: after 200 Adam steps on 32x32 CBSD432 crops at sigma 0.1, a 4x32
``downscale=2`` network had a training loss of 0.0071 against 0.0021 for a blind DnCNN
of the same depth and width at full resolution (4x64: 0.0060; 4x96 had not left
the identity), so the
shipped model uses ``downscale=1``. Odd heights or widths are padded by
replicating the last row/column and cropped back (``downscale=2``).

The network reads one tensor of ``C + 1`` channels, the image followed by its
sigma map (on the [0, 1] scale, 25/255 = 0.098), so the ordinary training loop
feeds it ``(noisy + map, clean)`` pairs; :meth:`FFDNet.denoise` builds the map
from a number or a per-image tensor.

Initialisation: :func:`restorekit.learned.start_as_identity` (Kaiming-normal weights,
zero biases and a zero last layer), so a new network is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restorekit.learned import conv_relu_stack, start_as_identity

KERNEL_SIZE = 3


class FFDNet(nn.Module):
    """Non-blind residual denoiser over a noise-level map.

    Parameters
    ----------
    channels : int
        Image channels (3 for colour, 1 for grayscale); the network reads ``channels + 1``.
    hidden_layers : int
        Hidden ``conv + ReLU`` blocks.
    hidden_channels : int
        Feature maps of every hidden convolution.
    downscale : {1, 2}
        1: full resolution; 2: FFDNet's layout on 2x2 pixel blocks.

    Examples
    --------
    >>> import torch
    >>> net = FFDNet(channels=3, hidden_layers=2, hidden_channels=8)
    >>> net.denoise(torch.rand(2, 3, 17, 20), 0.1).shape
    torch.Size([2, 3, 17, 20])
    >>> FFDNet(channels=3, hidden_layers=2, hidden_channels=8, downscale=2).denoise(torch.rand(1, 3, 17, 20), 0.1).shape
    torch.Size([1, 3, 17, 20])
    """

    def __init__(self, channels: int = 3, hidden_layers: int = 15, hidden_channels: int = 32,
                 downscale: int = 1) -> None:
        super().__init__()
        if channels < 1 or hidden_layers < 0 or hidden_channels < 1:
            raise ValueError("channels and hidden_channels must be >= 1 and hidden_layers >= 0")
        if downscale not in (1, 2):
            raise ValueError(f"downscale must be 1 (full resolution) or 2 (FFDNet's 2x2 blocks), got {downscale}")
        self.channels = int(channels)
        self.hidden_layers = int(hidden_layers)
        self.hidden_channels = int(hidden_channels)
        self.downscale = int(downscale)
        cs = channels * self.downscale**2
        self.net = conv_relu_stack(cs + 1, hidden_channels, hidden_layers, cs, kernel_size=KERNEL_SIZE)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal hidden weights, zero biases, a zero last layer (the identity map)."""
        start_as_identity(self.net)

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input window that one output pixel sees (full resolution)."""
        return self.downscale * ((KERNEL_SIZE - 1) * (self.hidden_layers + 2) + 1)

    def arch(self) -> dict:
        """The constructor's arguments (stored with shipped weights)."""
        return {"channels": self.channels, "hidden_layers": self.hidden_layers,
                "hidden_channels": self.hidden_channels, "downscale": self.downscale}

    def forward(self, x_and_map: torch.Tensor) -> torch.Tensor:
        """Denoise ``(N, C + 1, H, W)``: the image's ``C`` channels, then its sigma map."""
        if x_and_map.shape[1] != self.channels + 1:
            raise ValueError(f"FFDNet({self.channels} channels) reads {self.channels + 1} channels "
                             f"(image + sigma map), got {x_and_map.shape[1]}")
        if self.downscale == 1:
            return x_and_map[:, : self.channels] - self.net(x_and_map)
        h, w = x_and_map.shape[-2:]
        padded = F.pad(x_and_map, (0, w % 2, 0, h % 2), mode="replicate")
        image, sigma_map = padded[:, : self.channels], padded[:, self.channels :]
        features = torch.cat([F.pixel_unshuffle(image, 2), F.avg_pool2d(sigma_map, 2)], dim=1)
        noise = F.pixel_shuffle(self.net(features), 2)
        return (image - noise)[..., :h, :w]

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` (N, C, H, W) at noise level ``sigma``: a number, one per image, or a map (N, 1, H, W)."""
        sigma_t = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma_t.dim() <= 1:  # a number, or one per image; else a map (N, 1, H, W)
            sigma_t = sigma_t.reshape(-1, 1, 1, 1)
        sigma_map = sigma_t.expand(x.shape[0], 1, x.shape[-2], x.shape[-1])
        return self.forward(torch.cat([x, sigma_map], dim=1))
