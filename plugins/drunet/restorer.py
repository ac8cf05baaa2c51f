"""The ``drunet`` restorer: a DRUNet-style residual UNet denoiser told the noise level.

The network (``model.py``) reads the image and a map of its noise sigma; the
level comes from the ``sigma`` parameter, the degradation (a number, or a
per-pixel map such as Poisson-Gaussian noise's) or an estimate from the image
(:class:`restorekit.learned_denoiser.NoiseLevelDenoiser`). It is the default
prior of ``pnp``; when pnp fills in missing pixels it builds this restorer with
``drunet-color-pnp`` (:attr:`DRUNetRestorer.pnp_weights`), the same network
trained further through pnp's own inpainting solver (``restorekit train drunet
--pnp-share``): a better prior there, a slightly worse Gaussian denoiser, so it
is not the default elsewhere. Gray images are repeated into the colour model's three
channels (it saw such images in training). Weights, device, tiling and the
trained-range guard come from :class:`restorekit.learned.LearnedRestorer`.

This module imports no torch at import time.
"""

from __future__ import annotations

from pathlib import Path

from restorekit.learned_denoiser import NoiseLevelDenoiser

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = "drunet-color"


class DRUNetRestorer(NoiseLevelDenoiser):
    """DRUNet-style denoiser given the noise level (sigma map input, 0-0.21 on the [0, 1] scale)."""

    name = "drunet"
    summary = ("DRUNet-style residual UNet denoiser given the noise level (sigma map, 0-0.21 on the [0,1] "
               "scale); colour or grayscale")
    weights_dir = WEIGHTS_DIR
    default_weights = SHIPPED
    #: Weights trained through pnp's solver for a task, which pnp builds this denoiser with for that task
    #: (``pnp:tuned=false`` keeps ``drunet-color``): ``drunet-color-pnp`` for inpainting (benchmarks/RESULTS.md).
    pnp_weights = {"inpaint": "drunet-color-pnp"}
    align = 8  # three stride-2 levels: tiles start on multiples of 8 so they see the whole image's grid

    def build_network(self, arch: dict):
        from .model import DRUNet

        return DRUNet(**arch)

    def load_network(self, weights: str):
        """The shipped network, its weights in channels-last layout for restoring.

        oneDNN's convolutions run 1.3-1.4x faster on one CPU thread with
        channels-last weights (481x321 image, ``benchmarks/RESULTS.md``); the
        outputs agree to 1e-6. Training (``fit`` on ``from_network``) keeps the
        layout it builds.
        """
        import torch

        net, sidecar = super().load_network(weights)
        return net.to(memory_format=torch.channels_last), sidecar

    def receptive_field(self, net, degradation=None) -> int:
        return int(net.receptive_field)

    def min_input_size(self, net):
        # The network pads any size to a multiple of 8 by replicating the border: no minimum beyond a pixel.
        return 1, "smallest size"
