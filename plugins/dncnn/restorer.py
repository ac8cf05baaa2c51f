"""The ``dncnn`` restorer: loads a verified DnCNN and denoises colour or gray batches.

Colour (3-channel) images go through the network as they are. Grayscale
(1-channel) images are repeated into three identical channels and the three
outputs averaged (the shipped model was trained with such images, see its
``.json``). Other channel counts, and images smaller than the network's
receptive field, raise :class:`~restorekit.errors.InputError`. The input is
not clipped (noisy images leave [0, 1], as in training); the output is
clipped to [0, 1]. The degradation is ignored: the model is blind.
"""

from __future__ import annotations

from pathlib import Path

import torch

from restorekit.errors import InputError
from restorekit.restorer import Param, Restorer

from .model import DnCNN

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = "dncnn-color"


def weights_path(weights: str) -> Path:
    """A shipped model's name (``weights/<name>.pt``) or a path to a ``.pt`` file."""
    return Path(weights) if str(weights).endswith(".pt") else WEIGHTS_DIR / f"{weights}.pt"


def load_dncnn(weights: str = SHIPPED) -> tuple[DnCNN, dict]:
    """The DnCNN of ``weights`` and its sidecar (SHA-256 checked, ``weights_only=True``)."""
    from restorekit import weights as rw

    return rw.load_model(weights_path(weights), lambda arch: DnCNN(**arch))


class DnCNNRestorer(Restorer):
    """DnCNN blind Gaussian denoiser (sigma 0-0.2 on the [0, 1] scale), colour or grayscale."""

    name = "dncnn"
    tasks = frozenset({"denoise"})
    params = (
        Param("weights", SHIPPED, "shipped model name or path to a .pt file (with its .json)"),
        Param("device", "cpu", "torch device to run on, e.g. cpu or cuda"),
    )
    summary = "DnCNN blind denoiser, Gaussian noise sigma 0-0.2 on the [0,1] scale; colour or grayscale"

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.device = torch.device(self.config["device"])
        self.net, self.metadata = load_dncnn(self.config["weights"])
        self.net.to(self.device).eval()

    def restore(self, image: torch.Tensor, degradation=None) -> torch.Tensor:
        n, c, h, w = image.shape
        trained = self.net.channels
        if c != trained and not (c == 1 and trained == 3):
            kinds = "colour (3-channel) or grayscale (1-channel)" if trained == 3 else f"{trained}-channel"
            raise InputError(
                f"{self.name!r} ({self.config['weights']}) restores {kinds} images, got {c} channels; "
                "drop an alpha channel (image[:, :3]) or convert the image"
            )
        rf = self.net.receptive_field
        if min(h, w) < rf:
            raise InputError(
                f"the image ({h}x{w}) is smaller than {self.name!r}'s receptive field ({rf}x{rf}); "
                f"pad it (e.g. torch.nn.functional.pad(image, ..., mode='reflect')) to at least {rf}x{rf}"
            )
        x = image.to(self.device, torch.float32)
        if c == 1 and trained == 3:
            x = x.expand(-1, 3, -1, -1)
        with torch.no_grad():
            out = self.net(x)
        if c == 1 and trained == 3:
            out = out.mean(dim=1, keepdim=True)
        return out.clamp(0, 1).to(image.device, image.dtype)
