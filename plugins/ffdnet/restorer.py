"""The ``ffdnet`` restorer: a denoiser told the noise level, on the learned base.

The network (``model.py``) reads the image and a map of its noise sigma. The
level comes from, in this order:

1. the ``sigma`` parameter, when it is a number (``--param sigma=0.1``);
2. the degradation's ``sigma`` (``Noise(0.1)``; ``restorekit restore --sigma
   0.1``; what plug-and-play solvers hand it at every iteration), zero included;
3. with no degradation at all, an estimate from the image itself
   (:func:`restorekit.learned_denoiser.estimate_noise_sigma`), so it also works
   as a blind denoiser.

At a level of at most 0.02 the output is blended with the input by SURE
(``low_noise_guard``), so a clean or lightly noisy image is not made worse.
These rules are those of every :class:`restorekit.learned_denoiser.NoiseLevelDenoiser`.

Asking for more smoothing than the image holds (a larger sigma) trades detail
for smoothness, as FFDNet's authors show. Gray (1-channel) images are repeated
into the colour model's three channels and the outputs averaged (the model saw
such images, noise included, in training). The output is clipped to [0, 1];
weights, device, tiling of large images and the warning for a sigma outside the
trained range come from :class:`restorekit.learned.LearnedRestorer`.

This module imports no torch at import time.
"""

from __future__ import annotations

from pathlib import Path

from restorekit.learned_denoiser import NoiseLevelDenoiser, estimate_noise_sigma, parse_sigma  # noqa: F401

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = "ffdnet-color"


class FFDNetRestorer(NoiseLevelDenoiser):
    """FFDNet denoiser that takes the noise level as an input (sigma 0-0.21 on the [0, 1] scale)."""

    name = "ffdnet"
    summary = ("FFDNet denoiser given the noise level (sigma map input, 0-0.21 on the [0,1] scale); "
               "colour or grayscale")
    weights_dir = WEIGHTS_DIR
    default_weights = SHIPPED
    align = 2  # the network may work on 2x2 pixel blocks: tiles start on even rows and columns

    def build_network(self, arch: dict):
        from .model import FFDNet

        return FFDNet(**arch)

    def bytes_per_pixel(self, net, channels: int) -> float:
        if getattr(net, "downscale", 1) == 1:
            return super().bytes_per_pixel(net, channels)
        # The convolutions run at half resolution: a quarter of a full-resolution stack's working memory,
        # plus the full-resolution input, sigma map and output.
        return super().bytes_per_pixel(net, channels) / 4 + 4.0 * 3 * (channels + 1)
