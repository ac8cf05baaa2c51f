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

Every parameter declares its type and range (:class:`restorekit.Param`
``low``/``high``/``choices``), so a value scikit-image or bm3d would crash on
(a negative patch size corrupts the heap inside scikit-image) is refused with
a one-line error before any of their code runs; images too small for a
method are refused the same way (see :mod:`restorekit_skimage.restorers`).

``bm3d`` is registered only when the optional ``bm3d`` package is installed
(``pip install restorekit-skimage[bm3d]``); that package is free for
non-commercial use only.
"""

from __future__ import annotations

import importlib.util

from restorekit import Param, RestorerSpec, hookimpl
from restorekit.restorer import float_or_auto

__version__ = "0.1.0"

_MODULE = "restorekit_skimage.restorers"
def discrete_wavelets() -> list[str]:
    """The wavelet names ``skimage.restoration.denoise_wavelet`` accepts (PyWavelets' discrete ones).

    Called only when a ``wavelet`` value is first checked or listed, so registering imports no pywt.
    """
    import pywt

    return pywt.wavelist(kind="discrete")


#: bm3d's parameter profiles that work in bm3d 4.0.3 (its old "lc" is gone; "refilter" raises a
#: broadcasting ValueError on every image size tried, 9x9 to 64x64).
BM3D_PROFILES = ("np", "vn", "vn_old", "high", "deb")

#: Bounds of non-local means' windows. Its time grows as (2 * patch_distance + 1)^2 times the image
#: padded by patch_distance (0.10 s at the default 6, 0.60 s at 15 for a 481x321 colour image, one
#: AMD EPYC thread; 1000 ran over 5 minutes on a 101x77 one), so 50 keeps it to seconds.
MAX_PATCH_DISTANCE = 50
MAX_PATCH_SIZE = 31

_SIGMA = Param("sigma", "auto", "noise sigma on the [0, 1] scale, or 'auto': the degradation's, else estimated",
               parse=float_or_auto, high=1.0)

#: name -> (tasks, params, class name, summary); one entry per restorer.
RESTORERS = {
    "tv": (
        {"denoise"},
        (Param("weight", "auto", "TV weight, or 'auto' = 0.8 x sigma", parse=float_or_auto, high=100.0),
         _SIGMA,
         Param("max_num_iter", 200, "iterations of Chambolle's algorithm", low=1, high=10_000)),
        "TV",
        "total-variation denoising (skimage denoise_tv_chambolle, weight 0.8 x sigma)",
    ),
    "wavelet": (
        {"denoise"},
        (_SIGMA,
         Param("wavelet", "db1", "PyWavelets discrete wavelet name (pywt.wavelist(kind='discrete'))",
               choices=discrete_wavelets),
         Param("method", "BayesShrink", "thresholding rule", choices=("BayesShrink", "VisuShrink")),
         Param("mode", "soft", "thresholding", choices=("soft", "hard"))),
        "Wavelet",
        "wavelet shrinkage denoising (skimage denoise_wavelet, BayesShrink, YCbCr for colour)",
    ),
    "nlmeans": (
        {"denoise"},
        (_SIGMA,
         Param("h_factor", 0.6, "filter strength h as a multiple of sigma", low=0, high=100.0,
               closed="neither"),
         Param("patch_size", 5, "patch side in pixels", low=1, high=MAX_PATCH_SIZE),
         Param("patch_distance", 6, "search radius in pixels", low=0, high=MAX_PATCH_DISTANCE)),
        "NLMeans",
        "non-local means denoising (skimage denoise_nl_means, fast mode, h = 0.6 x sigma)",
    ),
    "unsupervised-wiener": (
        {"deblur"},
        (Param("seed", 0, "seed of the Gibbs sampler", low=0, high=2**32 - 1),),
        "UnsupervisedWiener",
        "Wiener-Hunt deconvolution with noise and prior estimated by Gibbs sampling (skimage unsupervised_wiener)",
    ),
    "richardson-lucy": (
        {"deblur"},
        (Param("num_iter", 10, "Richardson-Lucy iterations (more sharpen more and amplify noise)", low=1,
               high=10_000),),
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
         Param("profile", "np", "BM3D parameter profile", choices=BM3D_PROFILES)),
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
