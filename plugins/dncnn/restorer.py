"""The ``dncnn`` restorer: loads a verified DnCNN and denoises colour or gray batches.

Colour (3-channel) images go through the colour network (``weights``).
Grayscale (1-channel) images go through the grayscale network
(``gray_weights``, trained on Train400), loaded on first use; with
``gray_weights=none`` they are instead repeated into three identical channels
for the colour network and its three outputs averaged (the colour model saw
such images in training, see its ``.json``). Other channel counts, and images
smaller than the network's receptive field, raise
:class:`~restorekit.errors.InputError`. The input is
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
SHIPPED_GRAY = "dncnn-gray"


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
        Param("gray_weights", SHIPPED_GRAY, "model for 1-channel images ('none': gray repeated into the colour model)"),
        Param("device", "cpu", "torch device to run on, e.g. cpu or cuda"),
    )
    summary = "DnCNN blind denoiser, Gaussian noise sigma 0-0.2 on the [0,1] scale; colour or grayscale"

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.device = torch.device(self.config["device"])
        self.net, self.metadata = load_dncnn(self.config["weights"])
        self.net.to(self.device).eval()
        self._gray: DnCNN | None = None

    def gray_net(self) -> DnCNN | None:
        """The grayscale network (loaded on first use), or None when gray goes through the colour one."""
        if self.net.channels != 3 or str(self.config["gray_weights"]).lower() == "none":
            return None
        if self._gray is None:
            net, meta = load_dncnn(self.config["gray_weights"])
            if net.channels != 1:
                raise InputError(f"gray_weights {self.config['gray_weights']!r} is a {net.channels}-channel model; "
                                 "pass a 1-channel DnCNN or gray_weights=none")
            self._gray, self.gray_metadata = net.to(self.device).eval(), meta
        return self._gray

    def restore(self, image: torch.Tensor, degradation=None) -> torch.Tensor:
        n, c, h, w = image.shape
        if c == 1 and self.gray_net() is not None:
            return self._run(self._gray, image)
        return self._run(self.net, image)

    def _run(self, net: DnCNN, image: torch.Tensor) -> torch.Tensor:
        n, c, h, w = image.shape
        trained = net.channels
        if c != trained and not (c == 1 and trained == 3):
            kinds = "colour (3-channel) or grayscale (1-channel)" if trained == 3 else f"{trained}-channel"
            raise InputError(
                f"{self.name!r} ({self.config['weights']}) restores {kinds} images, got {c} channels; "
                "drop an alpha channel (image[:, :3]) or convert the image"
            )
        rf = net.receptive_field
        if min(h, w) < rf:
            raise InputError(
                f"the image ({h}x{w}) is smaller than {self.name!r}'s receptive field ({rf}x{rf}); "
                f"pad it (e.g. torch.nn.functional.pad(image, ..., mode='reflect')) to at least {rf}x{rf}"
            )
        x = image.to(self.device, torch.float32)
        if c == 1 and trained == 3:
            x = x.expand(-1, 3, -1, -1)
        with torch.no_grad():
            out = net(x)
        if c == 1 and trained == 3:
            out = out.mean(dim=1, keepdim=True)
        return out.clamp(0, 1).to(image.device, image.dtype)
