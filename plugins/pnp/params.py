"""The parameters of ``pnp`` (shared by the registration and the restorer class; no torch)."""

from __future__ import annotations

import math

from restorekit import Param
from restorekit.learned import MAX_MEMORY, MAX_TILE, parse_tile
from restorekit.restorer import float_or_auto, parse_bool
from restorekit.tiling import parse_memory

from .schedule import DEFAULT_RHO_SCALE
from .solvers import SOLVERS

#: Iterations when ``iterations`` is not given, per task (DPIR: 8 for deblurring, 24 for
#: super-resolution; 24 for filling in missing pixels with ADMM, where DPIR's 40 measured lower: RESULTS.md,
#: on 4 CBSD68 images at 50% / 80% missing 24 iterations +0.01 / +0.02 dB over 30, 40 -0.05 / -0.08 below 30).
DEFAULT_ITERATIONS = {"deblur": 8, "superresolve": 24, "inpaint": 24}
#: The splitting when ``solver`` is ``auto``, per task: ADMM for inpainting and super-resolution, whose dual
#: keeps feeding back what the denoiser's output misses of a noise-free measurement (RESULTS.md, session 8: on 8
#: CBSD68 images +0.30 dB at 50% missing and +0.18 at 80%, on 4 images +0.10 at x4 and +0.14 at x2); HQS
#: (DPIR's) for deblurring.
DEFAULT_SOLVER = {"deblur": "hqs", "superresolve": "admm", "inpaint": "admm"}
#: Iterations held at the last level after the descent when ``hold`` is not given, per task: 16 for
#: super-resolution by :data:`HOLD_MIN_SCALE` or more, whose result is then the mean of outputs all at the last
#: level (RESULTS.md: at x4 +0.12 dB over bicubic on 6 CBSD68 images against none held, 8 held +0.09; at x3 +0.06 on
#: 4 images; at x2 it lost 0.06 dB on 4 images, so x2 holds none), none for deblurring (unchanged) and inpainting (at 50% missing
#: 8 held at 2/255 were +0.007 dB on 4 images, -0.05 to +0.13 each; 16 held lost 0.06).
DEFAULT_HOLD = {"deblur": 0, "superresolve": 16, "inpaint": 0}
#: The smallest super-resolution scale that gets ``DEFAULT_HOLD["superresolve"]`` by default.
HOLD_MIN_SCALE = 3
#: Denoiser outputs averaged into the result when ``average`` is not given, per task: the last 8
#: for inpainting and super-resolution (one per flip/rotation under ``ensemble``; RESULTS.md: +0.01 to
#: +0.05 dB), the last one for deblurring (unchanged).
DEFAULT_AVERAGE = {"deblur": 1, "superresolve": 8, "inpaint": 8}
#: The most iterations one may ask for: each is a denoiser call and a data step (RESULTS.md: 8 take
#: 4.95 s per 481x321 image on one thread, so 1000 take about 10 minutes), 25x DPIR's longest schedule.
MAX_ITERATIONS = 1000
#: The denoiser used when none is named.
DEFAULT_DENOISER = "drunet"  # noise-level-aware (it reads Noise(sigma_k)), so it follows the schedule; RESULTS.md: above ffdnet


def _optional_whole(value, least: int) -> int | None:
    """A whole number >= ``least``, or ``None``/``"auto"`` for the task's default."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("auto", "none", "")):
        return None
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number >= {least} or 'auto'")
    number = float(value)
    if not math.isfinite(number) or number != int(number) or number < least:
        raise ValueError(f"must be a whole number >= {least} (or 'auto' for the task's default)")
    return int(number)


def optional_positive_int(value) -> int | None:
    """A whole number >= 1, or ``None``/``"auto"`` for the task's default."""
    return _optional_whole(value, 1)


def optional_count(value) -> int | None:
    """A whole number >= 0, or ``None``/``"auto"`` for the task's default."""
    return _optional_whole(value, 0)


def level_or_auto(value) -> float | str:
    """A noise level in (0, 1] on the [0, 1] scale, or ``"auto"``."""
    parsed = float_or_auto(value)
    if parsed != "auto" and parsed > 1:
        raise ValueError("must be a noise level in (0, 1] on the [0, 1] scale (49/255 = 0.192), or 'auto'")
    return parsed


def bool_or_auto(value) -> bool | str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return parse_bool(value)


PARAMS = (
    Param("denoiser", DEFAULT_DENOISER,
          "name of any registered denoiser (restorekit list --task denoise); it gets Noise(sigma_k) each iteration"),
    Param("solver", "auto", "splitting: 'hqs' (half-quadratic, DPIR's) or 'admm'; 'auto' (default): admm for inpaint "
          "and superresolve, hqs for deblur", choices=("auto",) + SOLVERS),
    Param("iterations", None,
          "iterations of the descent from sigma_start to sigma_end (then 'hold' more at the last level); 'auto' "
          "(default): 8 for deblur, 24 for superresolve and inpaint",
          parse=optional_positive_int, low=1, high=MAX_ITERATIONS),
    Param("hold", None,
          "iterations held at the last level after the descent (the outputs averaged then all come from that level); "
          "'auto' (default): 16 for superresolve by 3 or more, 0 otherwise",
          parse=optional_count, low=0, high=MAX_ITERATIONS),
    Param("average", None, "average the last N denoiser outputs into the result (with ensemble: over the flips "
          "and rotations); 'auto' (default): 8 for inpaint and superresolve, 1 (the last output) for deblur",
          parse=optional_positive_int, low=1, high=MAX_ITERATIONS),
    Param("final_data_step", "auto", "end with a data step, so the result agrees with a noise-free measurement "
          "(the observed pixels put back, the low-resolution image reproduced); 'auto' (default): for inpaint and "
          "superresolve when the noise sigma is 0", parse=bool_or_auto),
    Param("sigma_start", "auto", "first denoiser level, [0, 1] scale; 'auto' (default): 49/255 (DPIR's; inpaint "
          "starts from a biharmonic fill)", parse=level_or_auto, low=0.0, high=1.0,
          closed="right"),
    Param("sigma_end", "auto",
          "last denoiser level; 'auto': the measurement's sigma, at least 0.6/255 (2/255 for inpaint, scale/255 "
          "for superresolve)",
          parse=level_or_auto, low=0.0, high=1.0, closed="right"),
    Param("rho", DEFAULT_RHO_SCALE,
          "scale lambda of the data-step penalty rho_k = lambda * sigma^2 / sigma_k^2 (DPIR's 0.23)",
          low=0.0, high=1e6, closed="right"),
    Param("inpaint_map", False, "inpaint: tell the denoiser its level sigma_k on the missing pixels only and 0 on "
          "the observed ones (a per-pixel noise map) instead of one level, for a denoiser that reads maps; off by "
          "default: with drunet trained on maps it measured 0.19 dB lower at 50% missing (RESULTS.md)"),
    Param("tuned", True, "use the denoiser's weights trained through pnp's own solver for the task when it ships "
          "them (drunet: drunet-color-pnp for inpaint, trained through pnp's inpainting; RESULTS.md); false: the "
          "denoiser's default weights for every task"),
    Param("ensemble", True, "cycle the 8 flips/rotations over the iterations (one denoiser call each, so no "
          "extra cost; +0.2 to +0.5 dB measured with ffdnet); false: the image as it is every time"),
    Param("precision", "float32", "the denoiser's arithmetic, for one that takes 'precision' (drunet, ffdnet): "
          "float32 (default), or bfloat16 (autocast: 2-3x faster per call where the CPU has AVX512-BF16 or "
          "AMX-BF16; RESULTS.md measures what it costs pnp)", choices=("float32", "bfloat16")),
    Param("progress", "auto", "progress bar over the iterations on stderr: true (shown once a run passes 2 s, "
          "terminal or not; restorekit restore's default, --no-progress turns it off), false, or 'auto' (when "
          "stderr is a terminal)", parse=bool_or_auto),
    Param("reflect_step", "cg",
          "data step on a reflect border: 'cg' (conjugate gradients, at most cg_iterations a step) or 'pad' "
          "(mirror by the kernel size, closed form, crop: fastest, but loses 0.3 to 3 dB near the border with "
          "large kernels)", choices=("cg", "pad")),
    Param("cg_iterations", 20, "most conjugate-gradient iterations per data step where it has no closed form "
          "(reflect border, a mask after a blur); the exact solve needs up to 100 (about 2.5x the time)",
          low=1, high=1000),
    Param("tile", 0, "tile side for the denoiser (0: chosen from max_memory); refused for a denoiser that does "
          "not tile", parse=parse_tile, high=MAX_TILE),
    Param("max_memory", "auto", "working memory, e.g. 2GiB: the denoiser's per tile, and the bound of the "
          "whole-image data step (refused above it); auto: the denoiser's default, what is free", parse=parse_memory,
          high=MAX_MEMORY),
)

SUMMARY = ("plug-and-play solver (HQS or ADMM): any registered denoiser restores blur, missing pixels "
           "and low resolution, with the degradation's proximal data step")
