"""The data step of ``pnp`` on the reflect border by pad-and-crop (``reflect_step=pad``).

The reflect border model (the command line's default) blurs a mirrored
extension of the image, so the exact data step
``argmin_x ||y - A x||^2 + rho ||x - z||^2`` has no FFT formula and the
degradation's own ``prox`` solves it by conjugate gradients (pnp's default,
capped at ``cg_iterations`` a step). Pad-and-crop mirrors ``z`` by a margin of
the kernels' size, puts ``y`` in the middle of the padded grid and fills the
unmeasured margin with what the current estimate predicts there (``A z``:
mirrored noise there instead made ringing), solves the same problem with the
*circular* operator in one FFT division (:meth:`Blur.prox`, Zhao et al.'s
formula with a downsampling) and crops the margin. It is as fast as the
circular border, but the margin is free where the reflect model ties it to
the image, which costs accuracy near the border, more with large kernels
(``benchmarks/RESULTS.md``, the pnp section: 0.3 dB with Levin's kernel 1,
1.5 dB with kernel 4 on full CBSD68 images).

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
    inside = torch.zeros_like(y[:1, :1])
    inside = F.pad(inside + 1, (low, low, low, low))  # 1 on the measured pixels, 0 on the margin

    def step(z: torch.Tensor, rho: float) -> torch.Tensor:
        z_pad = F.pad(z, (margin, margin, margin, margin), mode="reflect")
        # The margin was never measured: fill it with what the current estimate predicts there
        # (A z on the padded grid), so it pulls towards z instead of towards mirrored noise.
        y_pad = inside * F.pad(y, (low, low, low, low)) + (1 - inside) * twin.forward(z_pad)
        x = twin.prox(y_pad, z_pad, rho)
        return x[..., margin:-margin, margin:-margin]

    return step


__all__ = ["circular_twin", "padded_step"]
