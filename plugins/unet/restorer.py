"""The UNet restorers: ``unet`` (deblurs directly) and ``unet-wiener`` (cleans a Wiener estimate).

Both run the same :class:`~restorekit_plugins.unet.model.UNet` with
different shipped weights (see ``weights/*.json`` for how each was trained):

``unet``         input: a colour image blurred by the course's 7x7 MNIST-digit
                 kernel with noise up to sigma 0.02; output: the sharp image.
``unet-wiener``  input: the Wiener (SNR 100) estimate of such an image; output:
                 the sharp image. It is the second step of ``wiener+unet``.

Both are blind (the degradation is not an input of the network) and were
trained for the course kernel only: the weights' ``trained_for`` records
that kernel's SHA-256 and the noise range, and
:class:`restorekit.learned.LearnedRestorer` warns once when a degradation lies
outside it; ``unet`` refuses another kernel unless ``force=true``. Inputs are
clipped to [0, 1] first (as in training), outputs clipped to [0, 1].
Grayscale images are restored by repeating the channel three times and
averaging the three outputs. Large images are restored in tiles whose starts
are multiples of ``2 ** depth`` (8 for the shipped models), the network's
down-sampling grid.

This module imports no torch at import time.
"""

from __future__ import annotations

from pathlib import Path

from restorekit.learned import LearnedRestorer

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Working floats per pixel of a UNet forward pass without gradients, in units of ``base_channels``: the
#: shipped 16-channel model grew the peak RSS by 587 bytes per pixel (9.2 floats per base channel) on a
#: 768x768 whole-image call on the CPU; 12 leaves room (skip connections, the allocator).
FLOATS_PER_PIXEL_PER_BASE_CHANNEL = 12


class UNetRestorer(LearnedRestorer):
    """Shared code of the two UNet restorers; subclasses fix the name and the default weights."""

    weights_dir = WEIGHTS_DIR
    clip_input = True
    params = ()

    def build_network(self, arch: dict):
        from .model import UNet

        return UNet(**arch)

    def run_network(self, net, x, degradation):
        return net.forward_padded(x)

    def tile_alignment(self, net) -> int:
        return net.multiple  # 2 ** depth: tiles start on the down-sampling grid

    def bytes_per_pixel(self, net, channels: int) -> float:
        return 4.0 * FLOATS_PER_PIXEL_PER_BASE_CHANNEL * net.base_channels


class UNetDeblur(UNetRestorer):
    """UNet deblurring a colour image blurred by the course kernel, noise sigma <= 0.02."""

    name = "unet"
    tasks = frozenset({"deblur"})
    summary = "UNet deblurrer (course 7x7 MNIST-digit kernel, noise sigma <= 0.02 on the [0,1] scale)"
    default_weights = "unet-deblur"
    refuse_other_kernel = True


class UNetWiener(UNetRestorer):
    """UNet cleaning a Wiener (SNR 100) estimate; the second step of ``wiener+unet``."""

    name = "unet-wiener"
    standalone = False  # a pipeline step: its input is a Wiener estimate, kept out of automatic choices
    tasks = frozenset({"denoise"})
    summary = "UNet removing the noise and artefacts of a Wiener (SNR 100) estimate; use it as wiener+unet"
    default_weights = "unet-wiener"
