"""The noise-level and penalty schedules of the plug-and-play solvers.

Following DPIR (Zhang et al., "Plug-and-Play Image Restoration with Deep
Denoiser Prior", TPAMI 2021), iteration ``k`` of ``K`` hands the denoiser the
level ``sigma_k``, log-spaced from ``sigma_start`` (49/255) down to
``sigma_end``, and weighs the data step's proximity term with

    rho_k = scale * max(sigma, SIGMA_FLOOR)^2 / sigma_k^2

where ``sigma`` is the measurement's noise level. Early iterations (large
``sigma_k``, small ``rho_k``) let the prior dominate; the last ones trust the
data. This module is pure Python: no torch.
"""

from __future__ import annotations

import math

#: DPIR's scale of the penalty: rho_k = 0.23 sigma^2 / sigma_k^2.
DEFAULT_RHO_SCALE = 0.23
#: The first denoiser level, 49 on the 0-255 scale (DPIR's), for every task: inpainting from its biharmonic
#: fill too (with HQS, on the first 20 CBSD68 images +1.03 / +0.78 dB over biharmonic at 50% / 80% missing, against
#: +0.90 / +0.67 from 20/255, RESULTS.md).
DEFAULT_SIGMA_START = 49 / 255
#: The measurement noise level assumed in rho_k when it is smaller (DPIR's 0.255/255), so a
#: noise-free measurement still gets a positive penalty.
SIGMA_FLOOR = 0.255 / 255
#: The last denoiser level when the measurement is cleaner than this: 0.6/255 (DPIR's floor for
#: filling in missing pixels). Super-resolution stops at ``scale``/255 instead, as DPIR does.
SIGMA_END_FLOOR = 0.6 / 255
#: The floor for filling in missing pixels: 2/255. pnp ends an inpainting run with a data step that
#: puts the observed pixels back, so the last levels only shape the missing ones; stopping at 2/255
#: rather than 0.6/255 was +0.05 dB over `biharmonic` at 50% and 80% missing (RESULTS.md), 4/255 lost.
INPAINT_END_FLOOR = 2 / 255


def end_level(sigma: float, scale: int = 1, inpaint: bool = False) -> float:
    """The last denoiser level for a measurement of noise ``sigma``: ``sigma``, floored.

    The floor is :data:`SIGMA_END_FLOOR`, ``scale / 255`` for
    super-resolution by ``scale`` (DPIR's choice: detail the measurement cannot
    hold is left to a denoiser still at work), or :data:`INPAINT_END_FLOOR`
    for inpainting (``inpaint``).
    """
    floor = scale / 255 if scale > 1 else (INPAINT_END_FLOOR if inpaint else SIGMA_END_FLOOR)
    return max(float(sigma), floor)


def noise_levels(iterations: int, start: float, end: float) -> list[float]:
    """``iterations`` denoiser levels log-spaced from ``start`` down to ``end``.

    When ``end >= start`` (a measurement noisier than the first level) every
    level is ``end``. One iteration uses ``end`` alone.

    Examples
    --------
    >>> [round(s * 255, 2) for s in noise_levels(3, 49 / 255, 1 / 255)]
    [49.0, 7.0, 1.0]
    """
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    if end >= start or iterations == 1:
        return [float(end)] * iterations
    lo, hi = math.log(end), math.log(start)
    step = (lo - hi) / (iterations - 1)
    return [math.exp(hi + step * k) for k in range(iterations)]


def penalties(levels: list[float], sigma: float, scale: float = DEFAULT_RHO_SCALE) -> list[float]:
    """``rho_k = scale * max(sigma, SIGMA_FLOOR)^2 / sigma_k^2`` for each level ``sigma_k``."""
    noise = max(float(sigma), SIGMA_FLOOR)
    return [scale * noise**2 / level**2 for level in levels]
