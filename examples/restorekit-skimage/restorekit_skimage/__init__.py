"""restorekit-skimage: scikit-image's restoration methods (and BM3D) as restorekit restorers.

This package is the model of a third-party restorekit plugin:

* ``pyproject.toml`` declares the entry point
  ``[project.entry-points."restorekit.plugins"] skimage = "restorekit_skimage"``;
* this module is what that entry point loads. It imports nothing heavy: it
  hands restorekit one :class:`~restorekit.RestorerSpec` per method, whose
  ``factory`` string names the class in :mod:`restorekit_skimage.restorers`,
  imported only when a user builds that restorer;
* :mod:`restorekit_skimage.restorers` holds the code: each restorer turns
  the ``(N, C, H, W)`` tensor batch into scikit-image's channel-last float
  arrays, calls one scikit-image function, and turns the result back.

Noise levels are standard deviations on the [0, 1] scale. Where a method
needs one, ``sigma="auto"`` takes the degradation's (the true sigma in a
benchmark) and estimates it with ``skimage.restoration.estimate_sigma`` when
the degradation has none.

``bm3d`` is registered only when the optional ``bm3d`` package is installed
(``pip install restorekit-skimage[bm3d]``).
"""

from __future__ import annotations

import importlib.util

from restorekit import Param, RestorerSpec, hookimpl
from restorekit.restorer import float_or_auto

__version__ = "0.1.0"

_MODULE = "restorekit_skimage.restorers"
_SIGMA = Param("sigma", "auto", "noise sigma on the [0, 1] scale, or 'auto': the degradation's, else estimated",
               parse=float_or_auto)

#: name -> (tasks, params, class name, summary); one entry per restorer.
RESTORERS = {
    "tv": (
        {"denoise"},
        (Param("weight", "auto", "TV weight, or 'auto' = 0.8 x sigma", parse=float_or_auto),
         _SIGMA,
         Param("max_num_iter", 200, "iterations of Chambolle's algorithm")),
        "TV",
        "total-variation denoising (skimage denoise_tv_chambolle, weight 0.8 x sigma)",
    ),
    "wavelet": (
        {"denoise"},
        (_SIGMA,
         Param("wavelet", "db1", "PyWavelets wavelet name"),
         Param("method", "BayesShrink", "thresholding rule", choices=("BayesShrink", "VisuShrink")),
         Param("mode", "soft", "thresholding", choices=("soft", "hard"))),
        "Wavelet",
        "wavelet shrinkage denoising (skimage denoise_wavelet, BayesShrink, YCbCr for colour)",
    ),
    "nlmeans": (
        {"denoise"},
        (_SIGMA,
         Param("h_factor", 0.6, "filter strength h as a multiple of sigma"),
         Param("patch_size", 5, "patch side in pixels"),
         Param("patch_distance", 6, "search radius in pixels")),
        "NLMeans",
        "non-local means denoising (skimage denoise_nl_means, fast mode, h = 0.6 x sigma)",
    ),
    "unsupervised-wiener": (
        {"deblur"},
        (Param("seed", 0, "seed of the Gibbs sampler"),),
        "UnsupervisedWiener",
        "Wiener-Hunt deconvolution with noise and prior estimated by Gibbs sampling (skimage unsupervised_wiener)",
    ),
    "richardson-lucy": (
        {"deblur"},
        (Param("num_iter", 10, "Richardson-Lucy iterations (more sharpen more and amplify noise)"),),
        "RichardsonLucy",
        "Richardson-Lucy deconvolution (skimage richardson_lucy, 10 iterations)",
    ),
    "biharmonic": (
        {"inpaint"},
        (),
        "Biharmonic",
        "inpainting by the biharmonic equation (skimage inpaint_biharmonic); missing pixels from the mask",
    ),
    "bm3d": (
        {"denoise"},
        (_SIGMA,
         Param("profile", "np", "BM3D parameter profile", choices=("np", "refilter", "lc", "high", "vn"))),
        "BM3D",
        "BM3D with the true sigma; CBM3D (opponent colour space) for colour images (needs the bm3d package)",
    ),
}


def bm3d_available() -> bool:
    """Whether the optional ``bm3d`` package is installed (checked without importing it)."""
    return importlib.util.find_spec("bm3d") is not None


@hookimpl
def register_restorers(register):
    """Hand restorekit one lazy spec per method (``bm3d`` only when its package is installed)."""
    for name, (tasks, params, class_name, summary) in RESTORERS.items():
        if name == "bm3d" and not bm3d_available():
            continue
        register(RestorerSpec(
            name=name,
            tasks=tasks,
            params=params,
            factory=f"{_MODULE}:{class_name}",
            summary=summary,
        ))
