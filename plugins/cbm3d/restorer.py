"""The ``cbm3d`` restorer: compiled BM3D (gray) / CBM3D (colour) given the noise level.

Algorithm (Dabov, Foi, Katkovnik, Egiazarian, IEEE TIP 2007; colour: ICIP 2007; noise variances:
Makinen, Azzari, Foi, IEEE TIP 2020), computed by ``torch.ops.restorekit.bm3d``
(:func:`restorekit.nn.bm3d_ops.cbm3d`; the profile is documented in ``csrc/bm3d_common.h``):

* **colour**: RGB is taken to the opponent space ``Y = (R+G+B)/3, U = (R-B)/2, V = (R-2G+B)/4``;
  white noise of std ``s`` becomes ``s/sqrt(3), s/sqrt(2), s*sqrt(3/8)`` there, and each channel
  is filtered with its own std. Blocks are matched on ``Y``; the same groups filter ``U`` and ``V``.
* **noise variances**: blocks of a group may overlap, which correlates their noise; each 3-D
  coefficient's variance ``s^2 v`` accounts for it (TIP 2020). The group's DC coefficient is never
  cut or shrunk, so an offset of the image passes through unchanged.
* **stage 1** (hard thresholding): 8x8 blocks, one reference every ``step`` = 3 pixels (and the
  last row and column), search window ``window`` = 39, at most 16 blocks a group (the largest power
  of 2 at most the number of matches) matched on the luminance's bior1.5 spectra, the paper's
  bior1.5 2-D transform (rows scaled to unit norm) then Haar along the group, a coefficient kept when
  above ``lambda_3d * s * sqrt(v)`` (``lambda_3d`` 3.0), aggregation weight ``1 / sum(s^2 v)`` over
  the kept coefficients times a Kaiser window (beta 2).
* **stage 2** (Wiener): matching on the stage-1 estimate, at most 32 blocks a group, 2-D DCT and
  Haar, shrinkage ``B^2 / (B^2 + mu2 s^2 v)`` (``mu2`` 0.4) from the stage-1 estimate's group
  spectrum ``B``, weight ``1 / sum(w^2 s^2 v)``.
* **matching**: the normalised distance ``||Z_R - Z_x||^2 / 64`` (0-255 scale, as in the paper) of
  the luminance's block spectra at most ``tau_match`` = 3000 in stage 1 (the paper's) and 1600 in
  stage 2, used at every noise level. ``lambda_3d`` 3.0 and ``mu2`` 0.4 are the values the ``bm3d``
  package (v4) uses for white noise; the paper's 2.7 / 1.0 and stage-2 ``tau_match`` 400 measured
  worse at sigma 0.1 and 0.2 (``benchmarks/RESULTS.md``, CBM3D).

The noise level comes from, in this order: the ``sigma`` parameter when it is a number; the
degradation's (``Noise(0.1)``, ``--sigma 0.1``, what ``pnp`` hands its prior at every
iteration; a per-pixel map is averaged per image); without a degradation, an estimate from the
image (:func:`restorekit.estimate_noise`). Images smaller than 8x8 are refused (its blocks).

This module imports no torch at import time.
"""

from __future__ import annotations

from typing import Any

from restorekit.errors import InputError
from restorekit.learned_denoiser import estimate_noise_sigma, parse_sigma
from restorekit.restorer import Param, Restorer

#: The smallest height and width (the 8x8 blocks); restorekit.nn.bm3d_ops.MIN_SIZE.
MIN_SIZE = 8


def _odd(value: Any) -> int:
    number = int(value) if not isinstance(value, bool) else None
    if number is None or number != float(value):
        raise ValueError("must be a whole number")
    if number % 2 == 0:
        raise ValueError(f"must be odd (a window centred on its block), e.g. {number + 1}")
    return number


class CBM3DRestorer(Restorer):
    """Compiled BM3D / CBM3D denoiser given the noise level (see the module docstring)."""

    name = "cbm3d"
    tasks = frozenset({"denoise"})
    summary = ("BM3D / CBM3D (opponent colour space, grouping on luminance) in restorekit's compiled core; "
               "permissive, given or estimating the noise sigma")
    uses_noise_level = True
    min_size = MIN_SIZE
    channels = (1, 3)
    params = (
        Param("sigma", "auto", "noise sigma on the [0, 1] scale ('auto': the degradation's, else estimated "
                               "from the image)", parse=parse_sigma, high=1.0),
        Param("window", 39, "side of the block-matching search window (odd; the paper's 39)", parse=_odd,
              low=1, high=255),
        Param("step", 3, "pixels between reference blocks (the paper's 3; smaller is slower)", low=1, high=8),
        Param("wiener", True, "run the second (Wiener) stage; off: the hard-thresholding estimate"),
        Param("clip", True, "clip the output to [0, 1]"),
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not self.config["clip"]:
            self.output_range = None

    def noise_levels(self, image: Any, degradation: Any) -> list[float]:
        """One sigma per image, by the module docstring's rules."""
        given = self.config["sigma"]
        n = image.shape[0]
        if given != "auto":
            return [float(given)] * n
        if degradation is not None:
            sigma_map = getattr(degradation, "sigma_map", None)
            found = sigma_map(image) if callable(sigma_map) else None
            if found is not None:
                return [float(v) for v in found.reshape(n, -1).mean(dim=1)]
            return [float(getattr(degradation, "sigma", 0.0) or 0.0)] * n
        return estimate_noise_sigma(image)

    def restore(self, image: Any, degradation: Any = None) -> Any:
        import torch

        from restorekit.nn import bm3d_ops, extension

        if image.shape[-2] < MIN_SIZE or image.shape[-1] < MIN_SIZE:
            raise InputError(f"'cbm3d' needs an image of at least {MIN_SIZE}x{MIN_SIZE} pixels (its 8x8 blocks), "
                             f"got {image.shape[-2]}x{image.shape[-1]}; use a larger image or another denoiser")
        levels = self.noise_levels(image, degradation)
        device = image.device
        x = image.detach()
        if device.type != "cpu" and not (device.type == "cuda" and extension.cuda_built()):
            x = x.cpu()
        x = x.float()
        kw = dict(window=self.config["window"], step=self.config["step"], wiener=self.config["wiener"])
        if len(set(levels)) == 1:
            out = bm3d_ops.cbm3d(x, levels[0], **kw)
        else:
            out = torch.cat([bm3d_ops.cbm3d(x[i:i + 1], s, **kw) for i, s in enumerate(levels)])
        if self.config["clip"]:
            out = out.clamp(0.0, 1.0)
        return out.to(device=device, dtype=image.dtype)
