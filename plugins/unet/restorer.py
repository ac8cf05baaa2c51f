"""The UNet restorers: ``unet`` (deblurs directly) and ``unet-wiener`` (cleans a Wiener estimate).

Both run the same :class:`~restorekit_plugins.unet.model.UNet` with
different shipped weights (see ``weights/*.json`` for how each was trained):

``unet``         input: a colour image blurred by the course's 7x7 MNIST-digit
                 kernel with noise up to sigma 0.02; output: the sharp image.
``unet-wiener``  input: the Wiener (SNR 100) estimate of such an image; output:
                 the sharp image. It is the second step of ``wiener+unet``.

Both are blind (they ignore the degradation they are given) and were
trained for the course kernel only. Inputs are clipped to [0, 1] first (as
in training), outputs clipped to [0, 1]. Grayscale images are restored by
repeating the channel three times and averaging the three outputs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from restorekit.errors import InputError
from restorekit.restorer import Param, Restorer

from .model import UNet

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def load_unet(weights: str) -> tuple[UNet, dict]:
    """Build the UNet described by ``weights`` (a shipped name or a ``.pt`` path) and load it.

    The file's SHA-256 is checked against its ``.json`` sidecar and the
    state dict is read with ``weights_only=True`` (see :mod:`restorekit.weights`).
    """
    from restorekit import weights as rw

    path = Path(weights) if weights.endswith(".pt") else WEIGHTS_DIR / f"{weights}.pt"
    return rw.load_model(path, lambda arch: UNet(**arch))


class UNetRestorer(Restorer):
    """Shared code of the two UNet restorers; subclasses fix the default weights."""

    params = (
        Param("weights", "unet-deblur", "shipped model name or path to a .pt file (with its .json)"),
        Param("device", "cpu", "torch device to run on, e.g. cpu or cuda"),
    )

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.device = torch.device(self.config["device"])
        self.net, self.metadata = load_unet(self.config["weights"])
        self.net.to(self.device).eval()

    def restore(self, image: torch.Tensor, degradation=None) -> torch.Tensor:
        n, c, h, w = image.shape
        if c not in (1, self.net.channels):
            raise InputError(
                f"{self.name!r} restores colour (3-channel) or grayscale (1-channel) images, got {c} channels; "
                "drop the alpha channel (image[:, :3]) or convert the image to RGB"
            )
        if min(h, w) < self.net.min_size:
            raise InputError(
                f"the image ({h}x{w}) is smaller than {self.name!r}'s smallest input "
                f"({self.net.min_size}x{self.net.min_size}); pad or upscale it"
            )
        x = image.to(self.device, torch.float32).clamp(0, 1)
        if c == 1:
            x = x.expand(-1, 3, -1, -1)
        with torch.no_grad():
            out = self.net.forward_padded(x)
        if c == 1:
            out = out.mean(dim=1, keepdim=True)
        return out.clamp(0, 1).to(image.device, image.dtype)


class UNetDeblur(UNetRestorer):
    """UNet deblurring a colour image blurred by the course kernel, noise sigma <= 0.02."""

    name = "unet"
    tasks = frozenset({"deblur"})
    params = (
        Param("weights", "unet-deblur", "shipped model name or path to a .pt file (with its .json)"),
        Param("device", "cpu", "torch device to run on, e.g. cpu or cuda"),
    )
    summary = "UNet deblurrer (course 7x7 MNIST-digit kernel, noise sigma <= 0.02 on the [0,1] scale)"


class UNetWiener(UNetRestorer):
    """UNet cleaning a Wiener (SNR 100) estimate; the second step of ``wiener+unet``."""

    name = "unet-wiener"
    standalone = False  # a pipeline step: its input is a Wiener estimate
    tasks = frozenset({"denoise"})
    params = (
        Param("weights", "unet-wiener", "shipped model name or path to a .pt file (with its .json)"),
        Param("device", "cpu", "torch device to run on, e.g. cpu or cuda"),
    )
    summary = "UNet removing the noise and artefacts of a Wiener (SNR 100) estimate; use it as wiener+unet"
