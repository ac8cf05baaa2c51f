"""Where the UNet deblurrers' training data comes from: the data folder and the course kernel.

The training inputs themselves are made by a
:class:`restorekit.degrade.DegradationSampler` (the course kernel's circular
blur, then noise of a sigma drawn per crop: see ``train.training_sampler``),
and for the Wiener variant by the ``wiener`` restorer itself, the first step
of the ``wiener+unet`` pipeline (``train.WienerThenUNet``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch



def data_root() -> Path:
    """The benchmark data folder: ``$RESTOREKIT_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("RESTOREKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def course_kernel() -> torch.Tensor:
    """The course's 7x7 MNIST-digit kernel, shipped with restorekit (float64, sums to 1)."""
    from restorekit.kernels import load_kernel

    return torch.as_tensor(load_kernel("course"), dtype=torch.float64)
