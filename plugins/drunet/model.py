"""A DRUNet-style denoiser told the noise level: a residual UNet over four scales (Zhang et al., 2021).

The design follows DRUNet ("Plug-and-Play Image Restoration with Deep Denoiser
Prior", Zhang, Li, Zuo, Zhang, Van Gool, Timofte, TPAMI 2021): the noisy image
and a map of its noise sigma go in, four scales of residual blocks
(``conv3x3 -> ReLU -> conv3x3`` plus the block's input) joined by strided 2x2
convolutions going down and transposed 2x2 convolutions going up, skip
connections that *add* the encoder's features to the decoder's, no batch
normalisation and no biases. It is sized for a CPU: ``widths`` (the feature
maps at each scale, DRUNet's is 64/128/256/512) and ``blocks`` (residual blocks
per scale and side, DRUNet's is 4) are the knobs, chosen in
``benchmarks/RESULTS.md`` by measured quality per CPU second. One change from
DRUNet: the network predicts the *noise* (its output is subtracted from the
image) and its last convolution starts at zero, so an untrained network is the
identity and low noise levels are safe from the first step::

    image (N, C, H, W) ┐
    sigma map (N,1,H,W)┴▶ head conv(C+1 -> w0)
        ─▶ [blocks x res(w0)] ─▶ down(w0 -> w1) ─▶ [blocks x res(w1)] ─▶ down(w1 -> w2) ─▶ ...
        ─▶ body [blocks x res(w3)]
        ─▶ up(w3 -> w2) + skip ─▶ [blocks x res(w2)] ─▶ ... ─▶ up(w1 -> w0) + skip ─▶ [blocks x res(w0)]
        ─▶ tail conv(w0 -> C) = noise estimate;   output = image - noise estimate

Heights and widths that are not multiples of 8 are padded by replicating the
border and cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The network halves the resolution this many times (so inputs are padded to multiples of 2**DEPTH).
DEPTH = 3


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 convolutions and no biases (DRUNet's block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


def _blocks(channels: int, n: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(channels) for _ in range(n)))


class DRUNet(nn.Module):
    """Noise-level-aware residual UNet over four scales.

    Parameters
    ----------
    channels : int
        Image channels (3 for colour, 1 for grayscale); the network reads ``channels + 1``
        (the image and its sigma map).
    widths : sequence of 4 ints
        Feature maps at full, 1/2, 1/4 and 1/8 resolution.
    blocks : int
        Residual blocks per scale on each side (and in the body).

    Examples
    --------
    >>> import torch
    >>> net = DRUNet(channels=3, widths=(8, 8, 8, 8), blocks=1)
    >>> net.denoise(torch.rand(2, 3, 17, 30), 0.1).shape
    torch.Size([2, 3, 17, 30])
    >>> x = torch.rand(1, 3, 16, 16)
    >>> bool((net.denoise(x, 0.05) == x).all())   # a new network is the identity
    True
    """

    def __init__(self, channels: int = 3, widths: tuple[int, ...] | list[int] = (16, 32, 64, 128),
                 blocks: int = 2) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if channels < 1 or len(widths) != DEPTH + 1 or min(widths) < 1 or blocks < 0:
            raise ValueError(f"channels >= 1, {DEPTH + 1} widths >= 1 and blocks >= 0 are needed, got "
                             f"channels={channels}, widths={widths}, blocks={blocks}")
        self.channels = int(channels)
        self.widths = widths
        self.blocks = int(blocks)
        self.head = nn.Conv2d(channels + 1, widths[0], 3, padding=1, bias=False)
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(DEPTH):
            self.encoders.append(_blocks(widths[level], blocks))
            self.down.append(nn.Conv2d(widths[level], widths[level + 1], 2, stride=2, bias=False))
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2, bias=False))
            self.decoders.append(_blocks(widths[level], blocks))
        self.body = _blocks(widths[DEPTH], blocks)
        self.tail = nn.Conv2d(widths[0], channels, 3, padding=1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal weights; the residual blocks' second convolutions scaled down; a zero tail.

        The zero tail makes a new network the identity; the small second
        convolutions (0.1x) keep the deep residual stack near the identity at
        the start, so training is stable without normalisation.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        for module in self.modules():
            if isinstance(module, ResBlock):
                with torch.no_grad():
                    module.conv2.weight.mul_(0.1)
        nn.init.zeros_(self.tail.weight)

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input window that one output pixel sees (an upper bound)."""
        field, scale = 3, 1  # head
        for level in range(DEPTH):
            field += 2 * 2 * self.blocks * scale  # encoder blocks at this scale
            field += scale  # the 2x2 stride-2 convolution
            scale *= 2
        field += 2 * 2 * self.blocks * scale  # body
        for level in reversed(range(DEPTH)):
            scale //= 2
            field += scale + 2 * 2 * self.blocks * scale
        return field + 2  # tail

    def arch(self) -> dict:
        """The constructor's arguments (stored with shipped weights)."""
        return {"channels": self.channels, "widths": list(self.widths), "blocks": self.blocks}

    def forward(self, x_and_map: torch.Tensor) -> torch.Tensor:
        """Denoise ``(N, C + 1, H, W)``: the image's ``C`` channels, then its sigma map."""
        if x_and_map.shape[1] != self.channels + 1:
            raise ValueError(f"DRUNet({self.channels} channels) reads {self.channels + 1} channels "
                             f"(image + sigma map), got {x_and_map.shape[1]}")
        h, w = x_and_map.shape[-2:]
        multiple = 2**DEPTH
        padded = F.pad(x_and_map, (0, -w % multiple, 0, -h % multiple), mode="replicate")
        features = self.head(padded)
        skips = []
        for level in range(DEPTH):
            features = self.encoders[level](features)
            skips.append(features)
            features = self.down[level](features)
        features = self.body(features)
        for level in reversed(range(DEPTH)):
            features = self.decoders[level](self.up[level](features) + skips[level])
        noise = self.tail(features)
        return (padded[:, : self.channels] - noise)[..., :h, :w]

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` (N, C, H, W) at noise level ``sigma``: a number, one per image, or a map.

        A map is (N, 1, H, W) (or broadcastable to it), e.g. the per-pixel
        standard deviation of Poisson-Gaussian noise.
        """
        sigma_t = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma_t.dim() <= 1:
            sigma_t = sigma_t.reshape(-1, 1, 1, 1)
        sigma_map = sigma_t.expand(x.shape[0], 1, x.shape[-2], x.shape[-1])
        return self.forward(torch.cat([x, sigma_map], dim=1))
