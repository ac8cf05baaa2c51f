"""The ``dncnn`` restorer: a verified DnCNN denoising colour or gray batches, on the learned base.

Colour (3-channel) images go through the colour network (``weights``).
Grayscale (1-channel) images go through the grayscale network
(``gray_weights``, trained on Train400), loaded on first use; with
``gray_weights=none`` they are instead repeated into three identical channels
for the colour network and its three outputs averaged (the colour model saw
such images in training, see its ``.json``). Other channel counts, and images
smaller than the network's receptive field, raise
:class:`~restorekit.errors.InputError`. The input is not clipped (noisy
images leave [0, 1], as in training); the output is clipped to [0, 1]. The
model is blind: it reads the degradation only to warn when the noise lies
outside its training range, and to keep low noise safe: when the noise is pure
Gaussian of sigma at most 0.02 (the degradation's, or estimated from the image
when there is none), the output is blended with the input by SURE
(``low_noise_guard``, see :func:`restorekit.learned_denoiser.sure_blend`), so a
clean or lightly noisy image is not made worse. Weights, device, tiling of
large images and the warning come from :class:`restorekit.learned.LearnedRestorer`.

This module imports no torch at import time (the model is imported when a
network is built), so registering the restorer costs nothing.
"""

from __future__ import annotations

from pathlib import Path

from restorekit.learned import LearnedRestorer
from restorekit.learned_denoiser import GUARD_PARAM, degradation_levels, estimate_noise_sigma, guarded_restore

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = "dncnn-color"
SHIPPED_GRAY = "dncnn-gray"


class DnCNNRestorer(LearnedRestorer):
    """DnCNN blind Gaussian denoiser (sigma 0-0.2 on the [0, 1] scale), colour or grayscale."""

    name = "dncnn"
    tasks = frozenset({"denoise"})
    summary = "DnCNN blind denoiser, Gaussian noise sigma 0-0.2 on the [0,1] scale; colour or grayscale"
    weights_dir = WEIGHTS_DIR
    default_weights = SHIPPED
    default_gray_weights = SHIPPED_GRAY
    params = (GUARD_PARAM,)

    def build_network(self, arch: dict):
        from .model import DnCNN

        return DnCNN(**arch)

    def restore(self, image, degradation=None):
        if self.config["low_noise_guard"] == "off":
            return super().restore(image, degradation)
        sigma_map = getattr(degradation, "sigma_map", None)
        if degradation is None:
            levels = estimate_noise_sigma(image)
        else:
            levels = sigma_map(image) if callable(sigma_map) else None
            if levels is None:  # None: one sigma everywhere
                levels = [float(degradation.sigma)] * image.shape[0]
        return guarded_restore(lambda batch: super(DnCNNRestorer, self).restore(batch, degradation), image,
                               degradation, levels, self.config["low_noise_guard"], clip=self.clip_output)
