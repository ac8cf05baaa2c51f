"""The ``bicubic`` restorer: upsampling by the degradation's scale, nothing more."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from restorekit.errors import InputError
from restorekit.restorer import Restorer, scale_of

from . import SUMMARY


class Bicubic(Restorer):
    """Bicubic interpolation by ``degradation.scale``, clamped to [0, 1].

    Examples
    --------
    >>> import torch
    >>> from restorekit.degrade import Compose, Downsample, Noise
    >>> from restorekit_plugins.interp.restorer import Bicubic
    >>> d = Compose(Downsample(2), Noise(0.01))
    >>> y = d.apply(torch.rand(1, 3, 32, 32), seed=0)
    >>> Bicubic()(y, d).shape
    torch.Size([1, 3, 32, 32])
    """

    name = "bicubic"
    tasks = frozenset({"superresolve"})
    params = ()
    summary = SUMMARY
    needs_degradation = True

    def restore(self, image: torch.Tensor, degradation=None) -> torch.Tensor:
        scale = scale_of(degradation)
        if scale == 1:
            got = "no degradation" if degradation is None else f"a {type(degradation).__name__} that does not downsample"
            raise InputError(
                f"'bicubic' upsamples by the degradation's scale but got {got}; pass Downsample(s) "
                "(e.g. Compose(Downsample(2), Noise(0.01))), or on the command line --scale S"
            )
        work = image if image.dtype in (torch.float32, torch.float64) else image.float()
        out = F.interpolate(work, scale_factor=scale, mode="bicubic", align_corners=False, antialias=False)
        return out.clamp(0, 1).to(image.dtype)
