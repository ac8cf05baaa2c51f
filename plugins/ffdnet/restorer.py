"""The ``ffdnet`` restorer: a denoiser told the noise level, on the learned base.

The network (``model.py``) reads the image and a map of its noise sigma. The
level comes from, in this order:

1. the ``sigma`` parameter, when it is a number (``--param sigma=0.1``);
2. the degradation's ``sigma`` (``Noise(0.1)``; ``restorekit restore --sigma
   0.1``; what plug-and-play solvers hand it at every iteration), zero included;
3. with no degradation at all, an estimate from the image itself
   (:func:`skimage.restoration.estimate_sigma`, a wavelet median estimate,
   averaged over the channels), so it also works as a blind denoiser.

Asking for more smoothing than the image holds (a larger sigma) trades detail
for smoothness, as FFDNet's authors show. Gray (1-channel) images are repeated
into the colour model's three channels and the outputs averaged (the model saw
such images, noise included, in training). The output is clipped to [0, 1];
weights, device, tiling of large images and the warning for a sigma outside the
trained range come from :class:`restorekit.learned.LearnedRestorer`.

This module imports no torch at import time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from restorekit.learned import LearnedRestorer
from restorekit.restorer import Param

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = "ffdnet-color"


def parse_sigma(value: Any) -> float | str:
    """A noise sigma >= 0 on the [0, 1] scale, or ``"auto"`` (from the degradation or the image)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool):
        raise ValueError("must be a number >= 0 on the [0, 1] scale, or 'auto'")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a finite number >= 0 on the [0, 1] scale, or 'auto'")
    if number > 1:
        raise ValueError(f"{number:g} is above 1: sigmas are on the [0, 1] scale here; "
                         f"{number:g} on the 0-255 scale is {number / 255:.4g}")
    return number


def estimate_noise_sigma(image) -> "Any":
    """Per-image noise sigma estimates of a batch (N, C, H, W), as a float list ([0, 1] scale)."""
    import numpy as np
    from skimage.restoration import estimate_sigma

    array = image.detach().to("cpu").float().numpy()
    return [float(np.mean(estimate_sigma(a, channel_axis=0))) for a in array]


class FFDNetRestorer(LearnedRestorer):
    """FFDNet denoiser that takes the noise level as an input (sigma 0-0.21 on the [0, 1] scale)."""

    name = "ffdnet"
    tasks = frozenset({"denoise"})
    summary = ("FFDNet denoiser given the noise level (sigma map input, 0-0.21 on the [0,1] scale); "
               "colour or grayscale; the default prior of pnp")
    uses_noise_level = True
    weights_dir = WEIGHTS_DIR
    default_weights = SHIPPED
    align = 2  # the network works on 2x2 pixel blocks: tiles start on even rows and columns
    params = (Param("sigma", "auto", "noise sigma on the [0, 1] scale ('auto': the degradation's, "
                    "else estimated from the image)", parse=parse_sigma, high=1.0),)
    _levels: list[float] | None = None  # the batch's sigmas while restore runs

    def build_network(self, arch: dict):
        from .model import FFDNet

        return FFDNet(**arch)

    def noise_levels(self, image, degradation) -> list[float]:
        """The sigma of each image in the batch, by the rules of the module docstring."""
        given = self.config["sigma"]
        if given != "auto":
            return [float(given)] * image.shape[0]
        if degradation is not None:
            return [float(degradation.sigma)] * image.shape[0]
        return estimate_noise_sigma(image)

    def restore(self, image, degradation=None):
        from restorekit.degrade import Noise

        levels = self.noise_levels(image, degradation)
        self._levels = levels
        if degradation is None or self.config["sigma"] != "auto":
            degradation = Noise(max(levels))  # what the trained-range guard reads
        try:
            return super().restore(image, degradation)
        finally:
            self._levels = None

    def run_network(self, net, x, degradation):
        import torch

        levels = self._levels if self._levels is not None and len(self._levels) == x.shape[0] else None
        sigma = torch.tensor(levels if levels is not None else [float(degradation.sigma)] * x.shape[0],
                             dtype=x.dtype, device=x.device)
        return net.denoise(x, sigma)

    def bytes_per_pixel(self, net, channels: int) -> float:
        # The convolutions run at half resolution: a quarter of a full-resolution stack's working memory,
        # plus the full-resolution input, sigma map and output.
        return super().bytes_per_pixel(net, channels) / 4 + 4.0 * 3 * (channels + 1)
