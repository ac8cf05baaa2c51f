"""The data step of ``pnp`` on the reflect border: pad, solve in closed form on the circular grid, crop.

The reflect border model (the command line's default) blurs a mirrored
extension of the image, so the exact data step
``argmin_x ||y - A x||^2 + rho ||x - z||^2`` has no FFT formula and the
degradation's own ``prox`` solves it by conjugate gradients: about 50 blur
applications per iteration. The known pad-and-crop approach (as DPIR and
deepinv do for non-circular blur) mirrors ``y`` and ``z`` by a margin at
least the kernel's size, solves the same problem with the *circular* blur on
the padded grid in one FFT division (:meth:`Blur.prox`, Zhao et al.'s formula
with a downsampling), and crops the margin. The wrap-around of the circular
model lands in the margin, which is thrown away; inside, the two solutions
differ by a little near the border (``benchmarks/RESULTS.md``, the pnp section,
has the measured PSNR difference and times).

Only blurs and one downsampling (and noise) are handled here; a mask, or a
composition with no reflect part, keeps the degradation's own ``prox``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from restorekit.degrade import Blur, Compose, Downsample, Noise
from restorekit.degrade.base import Identity

DataStep = Callable[[torch.Tensor, float], torch.Tensor]


def circular_twin(degradation) -> tuple[Compose, int] | None:
    """The circular-border version of a reflect-border ``degradation`` and its margin, or ``None``.

    ``None`` when the degradation holds anything but blurs, at most one
    (last) downsampling and noise, or nothing with the reflect border (its
    own ``prox`` is then already in closed form or must stay exact). The
    margin, in restored-image pixels, is the sum of the kernels' sizes
    rounded up to a multiple of the scale.
    """
    parts = list(degradation.parts())
    linear = [p for p in parts if type(p) not in (Noise, Identity) and type(p).__name__ != "Degradation"]
    if not linear or not all(isinstance(p, (Blur, Downsample)) for p in linear):
        return None
    if any(isinstance(p, Downsample) for p in linear[:-1]):
        return None
    if all(p.boundary == "circular" for p in linear):
        return None
    twin = []
    for p in linear:
        if isinstance(p, Downsample):
            twin.append(Downsample(p.scale, None if p.default_kernel else p.kernel, "circular"))
        else:
            twin.append(Blur(p.kernel, "circular"))
    scale = int(degradation.scale)
    margin = sum(max(int(p.kernel.shape[-1]), int(p.kernel.shape[-2])) for p in linear)
    margin = -(-margin // scale) * scale
    return Compose(*twin), margin


def padded_step(degradation, y: torch.Tensor, shape: tuple[int, int]) -> DataStep | None:
    """A data step ``step(z, rho)`` by pad-and-crop for ``degradation``, or ``None`` to use its ``prox``.

    Parameters
    ----------
    degradation : restorekit.degrade.Degradation
        What damaged ``y``.
    y : torch.Tensor
        The measurement (N, C, H / s, W / s).
    shape : (int, int)
        The restored image's height and width.

    Returns
    -------
    callable or None
        ``None`` when :func:`circular_twin` finds no reflect part to replace,
        or the image is too small to mirror by the margin.
    """
    found = circular_twin(degradation)
    if found is None:
        return None
    twin, margin = found
    scale = int(degradation.scale)
    low = margin // scale
    if margin >= min(shape) or low >= min(y.shape[-2:]):
        return None
    y_pad = F.pad(y, (low, low, low, low), mode="reflect")

    def step(z: torch.Tensor, rho: float) -> torch.Tensor:
        z_pad = F.pad(z, (margin, margin, margin, margin), mode="reflect")
        x = twin.prox(y_pad, z_pad, rho)
        return x[..., margin:-margin, margin:-margin]

    return step


__all__ = ["circular_twin", "padded_step"]
