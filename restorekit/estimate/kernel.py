"""Blind blur-kernel estimation: the kernel of a blurred photo, from the photo alone.

:func:`estimate_kernel` follows the L0 sparse-gradient line of work on blind
deblurring:

* L. Xu, S. Zheng, J. Jia, "Unnatural L0 sparse representation for natural
  image deblurring", CVPR 2013 (an intermediate image whose gradients are L0
  sparse drives the kernel estimate);
* J. Pan, Z. Hu, Z. Su, M.-H. Yang, "Deblurring text images via
  L0-regularized intensity and gradient prior", CVPR 2014, whose published
  scheme is followed step by step: coarse-to-fine over an image pyramid with
  a ``sqrt(1/2)`` ratio, at every level a few alternations of (a) the
  intermediate image by half-quadratic splitting of the L0 gradient prior
  (``beta`` doubled from ``2 lambda`` to ``1e5``, hard thresholding of the
  gradients where ``|grad|^2 < lambda / beta``) and (b) the kernel by
  least squares on the gradients with a small Tikhonov term (conjugate
  gradients on the kernel's support; an L1 term is added here, see below),
  then non-negativity, pruning of the values below 1/20 of the peak (1/200
  here), removal of 8-connected pieces carrying
  less than 10% of the mass, and normalisation to sum 1; ``lambda`` falls by
  1/1.1 per alternation.

Seven changes to that scheme, measured on CBSD68 blurred by Levin et al.'s kernels
(``benchmarks/RESULTS.md``); the first five keep texture out of the kernel,
which otherwise fills its support with streaks on textured photos, the sixth
makes the refinement faster and the seventh lets it correct larger errors:

* gradient selection after L. Xu and J. Jia, "Two-phase kernel estimation
  for robust motion deblurring", ECCV 2010: the coarse-to-fine kernel step
  fits only the :data:`USEFUL_SHARE` of the pixels where their r-map
  (:func:`usefulness_map`) is highest, i.e. where the gradients of the
  blurred image agree in direction (edges wider than the blur), not where
  they cancel (fine texture, noise); the refinement against a deblurred
  image, which has its texture back, fits every pixel (version 8,
  :data:`REFINE_USEFUL_SHARE`);
* an L1 term on the kernel (:data:`KERNEL_L1`), solved by reweighted least
  squares inside the kernel step: a sparse kernel prior as in Krishnan, Tay
  and Fergus (CVPR 2011) and Xu and Jia's second phase, which zeroes the
  faint streaks that least squares spreads over the support (estimator
  version 3; it cut the mean error ratio of the worst cases four-fold);
* with the L1 term doing that work, a light Tikhonov term (:data:`TIKHONOV`,
  0.05 of the weighted gradient energy; version 2 needed 0.15 without it,
  which made kernels short and blobby) and a low pruning threshold
  (:data:`PRUNE`, 1/200 of the peak against Pan et al.'s 1/20, which cut the
  faint tails of long motion paths) and a larger share of the pixels kept by
  the r-map (0.85, was 0.7);
* the kernel step's normal matrix is the auto-correlation of the weighted
  gradients, which is positive semi-definite (the earlier mixed form was not,
  and its conjugate gradients could diverge);
* several starts (estimator versions 6 and 7): the whole coarse-to-fine
  scheme runs from a vertical, a diagonal and a horizontal two-pixel line
  (:data:`KERNEL_STARTS`; Pan et al. start from the horizontal one alone)
  and the kernel whose last step leaves the smallest weighted gradient
  residual (:func:`gradient_misfit`) is kept. The scheme is non-convex, and
  on textured photos a start can end in a streaky kernel that another start
  avoids; the residual told them apart;
* the refinement's deblurring rounds run in bfloat16 where the CPU computes
  it natively (version 7, :func:`refinement_deblurrer`): twice as fast, the
  same error ratios on the mean, and the time paid for the third start;
* the refinement's first rounds smooth the deblurred image harder
  (version 9, :data:`REFINE_SMOOTH_EARLY` for :data:`REFINE_EARLY_ROUNDS`
  rounds, then :data:`REFINE_SMOOTH`), in the spirit of Xu and Jia's two
  phases (salient edges first, then every edge): an image deblurred with a
  kernel that misses part of the blur keeps that part as faint echoes of
  its edges, which the kernel step then explains without the missing mass;
  smoothed away, they are left for the kernel to explain.

Two details make it work on any image, not only on synthetic periodic blur:
the image is mirror-padded by the kernel size before the Fourier transforms,
and the kernel's least squares only use the pixels whose blur footprint lies
inside the image (a weighted data term), so borders never pose as edges;
colour images are estimated on their luminance (ITU-R BT.601 weights). The
kernel is re-centred on its centre of mass (by whole pixels) after every
kernel step, as blind deconvolution fixes a kernel only up to a shift.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:  # torch is imported on first use
    import torch

#: Changes when the estimator's results change: a blind benchmark's checkpoint from another version is not reused.
#: Version 4 adds the refinement on the deblurred image (:func:`refine_kernel`, :data:`REFINE_ROUNDS`);
#: version 5 over-relaxes it (:data:`REFINE_RELAXATION`) and runs 5 rounds; version 6 runs the coarse-to-fine
#: estimate from several starts and keeps the best fit (:data:`KERNEL_STARTS`); version 7 adds the horizontal start
#: and runs the refinement's deblurring in bfloat16 where the CPU has it (:func:`refinement_deblurrer`); version 8
#: fits the refinement's kernel step on every pixel, not the r-map's share (:data:`REFINE_USEFUL_SHARE`); version 9
#: smooths the deblurred image harder in the first refinement rounds (:data:`REFINE_SMOOTH_EARLY`).
ESTIMATOR_VERSION = 9
#: Ratio of the image pyramid (image and kernel sizes) from one level to the next coarser one.
PYRAMID_RATIO = math.sqrt(0.5)
#: Kernel size (pixels) at the coarsest level.
COARSEST_SIZE = 5
#: Weight of the L0 gradient prior at the start of each level, and its floor (Pan et al.'s 4e-3 and 1e-4).
LAMBDA_START = 4e-3
LAMBDA_MIN = 1e-4
#: Tikhonov weight of the kernel step, relative to the weighted gradient energy of the intermediate image.
TIKHONOV = 0.05
#: Weight of the kernel step's L1 term (reweighted least squares), relative to the weighted gradient energy.
KERNEL_L1 = 0.3
#: Reweighted least-squares rounds of the L1 term per kernel step.
IRLS_ROUNDS = 3
#: Values below this share of the peak are cut from the kernel after every kernel step (Pan et al. cut at 1/20).
PRUNE = 1 / 200
#: Share of the pixels (the most useful by Xu and Jia's r-map) whose gradients the coarse-to-fine kernel step fits.
USEFUL_SHARE = 0.85
#: The same share in the refinement's kernel step (:func:`refine_kernel`): every pixel whose blur footprint lies
#: inside the image. The r-map keeps texture out of a kernel fitted to the L0 intermediate, which has none; the
#: deblurred image the refinement fits has its texture back, and the texture's gradients pin the kernel down too
#: (on 40 benchmark cases the mean error ratio fell from 1.50 to 1.43 with 1 against 0.85, and on 24 of them 0.6
#: raised it by 0.34; estimator version 8, ``benchmarks/RESULTS.md``).
REFINE_USEFUL_SHARE = 1.0
#: Side of the r-map's window (pixels).
RMAP_WINDOW = 5
#: The coarse-to-fine estimate's starting kernels, each a two-pixel line at the coarsest level: the estimate runs
#: once from each and keeps the one whose gradients fit the blurred image best (:func:`estimate_kernel`). Pan et al.
#: start from the horizontal line alone; on CBSD68 with Levin's kernels that start was the worst of the four alone,
#: keeping the better fit of a vertical and a diagonal start was the best pair measured (estimator version 6), and
#: adding the horizontal start back as a third fixed two of version 6's three failures on 20 cases measured after
#: refinement (``benchmarks/RESULTS.md``, estimator version 7). On ties the first start wins.
KERNEL_STARTS = ("vertical", "diagonal", "horizontal")
#: The starts :func:`estimate_kernel` knows: the two pixels of each line, as offsets from the centre (row, column).
START_LINES = {"horizontal": ((0, -1), (0, 0)), "vertical": ((-1, 0), (0, 0)),
               "diagonal": ((-1, -1), (0, 0)), "antidiagonal": ((-1, 1), (0, 0))}
#: The least noise level the blind path hands a deblurrer when it estimated the level itself. A kernel
#: estimate is never exact and JPEG smooths the noise the estimate reads (0.0014-0.0017 for sigma 0.01 at
#: quality 75), so a deblurrer told the raw estimate trusts the data too much: on 4 CBSD68 images x Levin's
#: kernels 2 and 5 the floor gained 1.2-3.0 dB on such JPEGs and 0.1-1.1 dB at sigma 0.002, and lost nowhere
#: (a floor of 0.01 gained more on the JPEGs but lost up to 0.6 dB at sigma 0.002; benchmarks/RESULTS.md).
BLIND_SIGMA_FLOOR = 0.005
#: Rounds of :func:`refine_kernel` in :func:`blind_degradation` when it is given the deblurrer: each round
#: deblurs with the current kernel and re-estimates the kernel against the result (benchmarks/RESULTS.md).
REFINE_ROUNDS = 5
#: How far each refinement round moves the kernel, as a multiple of the step its re-estimate suggests:
#: ``k <- clean(k + relaxation * (k_refit - k))`` (over-relaxation of a slowly converging fixed point). The
#: image deblurred with the current kernel fits that kernel (pnp's data step), so the re-estimate against it
#: recovers only part of the kernel's error each round; 2 moved the ratio of 20 benchmark cases further in 4
#: rounds than 1 did in 5 (3 had a lower mean but a higher median; benchmarks/RESULTS.md, version 5).
REFINE_RELAXATION = 2.0
#: L0 weight of the smoothing of the deblurred image before the refinement's kernel step: its edges are kept,
#: the texture the deblurrer made up with a wrong kernel is flattened (0.002-0.008 measured alike, 0 worse).
REFINE_SMOOTH = 4e-3
#: The same weight in the first :data:`REFINE_EARLY_ROUNDS` rounds, where the kernel is furthest off: the image
#: deblurred with a kernel that misses part of the blur keeps that part as faint echoes of its edges, and the kernel
#: step fits them without the missing mass; the harder smoothing removes them, so the next kernel takes the mass on.
#: Then :data:`REFINE_SMOOTH` keeps the finer edges for the last rounds (on 48 benchmark cases the mean error ratio
#: fell from 1.72 to 1.65, 33 lower; 0.015 in every round helped the worst cases too but raised the others;
#: estimator version 9, ``benchmarks/RESULTS.md``).
REFINE_SMOOTH_EARLY = 0.015
#: How many of the refinement's first rounds use :data:`REFINE_SMOOTH_EARLY` (3 of 5 measured a little better
#: than 2).
REFINE_EARLY_ROUNDS = 3
#: Luminance weights of R, G, B (ITU-R BT.601).
LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------- input checks
def _as_gray(y: Any) -> np.ndarray:
    """``y`` (tensor or array; ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)``) as a float64 luminance ``(H, W)``."""
    try:
        import torch

        if isinstance(y, torch.Tensor):
            y = y.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    array = np.asarray(y, dtype=np.float64) if not isinstance(y, np.ndarray) else y.astype(np.float64, copy=False)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise InputError(f"estimate_kernel takes one image, got a batch of {array.shape[0]}; "
                             "estimate each image's kernel on its own (y[i:i + 1])")
        array = array[0]
    if array.ndim == 3:
        if array.shape[0] == 1:
            array = array[0]
        elif array.shape[0] == 3:
            array = np.tensordot(np.asarray(LUMA), array, axes=(0, 0))
        else:
            raise InputError(f"estimate_kernel takes a gray or RGB image (1 or 3 channels first), got shape "
                             f"{tuple(array.shape)}")
    if array.ndim != 2:
        raise InputError(f"estimate_kernel takes an image (H, W), (C, H, W) or (1, C, H, W); got {array.ndim} "
                         "dimensions")
    if not np.isfinite(array).all():
        raise InputError("the image holds NaN or Inf values; estimate_kernel needs finite pixels")
    if array.max() > 2.0 or array.min() < -1.0:
        raise InputError(f"the image's values run from {array.min():.3g} to {array.max():.3g}; estimate_kernel takes "
                         "values on the [0, 1] scale (divide 8-bit values by 255)")
    return array


def check_kernel_size(size: Any, shape: tuple[int, int]) -> int:
    """``size`` as an odd int >= 3 with ``2 * size < min(shape)``, or a one-line :class:`InputError`."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) and not (
            isinstance(size, float) and size.is_integer()):
        raise InputError(f"the kernel size must be a whole odd number such as 31, got {size!r}")
    size = int(size)
    if size < 3 or size % 2 == 0:
        raise InputError(f"the kernel size must be odd and at least 3 (e.g. 31), got {size}")
    h, w = shape
    if 2 * size >= min(h, w):
        raise InputError(f"the kernel size {size} must be less than half the image's smaller side "
                         f"({h}x{w}: at most {(min(h, w) - 1) // 2 - ((min(h, w) - 1) // 2 + 1) % 2}); "
                         "use a smaller --size or a larger image")
    return size


def check_rounds(rounds: Any, name: str = "rounds") -> int:
    """``rounds`` of refinement as an int >= 0, or a one-line :class:`InputError` naming ``name``."""
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 0:
        raise InputError(f"{name} must be a whole number >= 0 (refinement rounds), got {rounds!r}")
    return int(rounds)


def check_relaxation(relaxation: Any) -> float:
    """``relaxation`` as a float in (0, 4] (:func:`refine_kernel`'s step multiple), or :class:`InputError`."""
    if isinstance(relaxation, bool) or not isinstance(relaxation, (int, float)) or not 0 < relaxation <= 4:
        raise InputError(f"relaxation must be a number in (0, 4] (1: the re-estimate itself), got {relaxation!r}")
    return float(relaxation)


# --------------------------------------------------------------------------- Fourier helpers
def _otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The ``rfft2`` of ``kernel`` placed with its centre at index (0, 0) of a ``shape`` grid."""
    from scipy import fft

    kh, kw = kernel.shape
    big = np.zeros(shape)
    big[:kh, :kw] = kernel
    big = np.roll(big, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return fft.rfft2(big, workers=1)


def _crop_support(full: np.ndarray, size: int) -> np.ndarray:
    """The ``size x size`` window of a circular correlation map ``full`` centred on lag (0, 0)."""
    r = size // 2
    return np.roll(full, (r, r), axis=(0, 1))[:size, :size]


def _dx(u: np.ndarray) -> np.ndarray:
    return np.roll(u, -1, axis=1) - u


def _dy(u: np.ndarray) -> np.ndarray:
    return np.roll(u, -1, axis=0) - u


def _dxt(u: np.ndarray) -> np.ndarray:
    return np.roll(u, 1, axis=1) - u


def _dyt(u: np.ndarray) -> np.ndarray:
    return np.roll(u, 1, axis=0) - u


# --------------------------------------------------------------------------- the two steps
def l0_intermediate(blurred: np.ndarray, kernel: np.ndarray, lam: float, beta_max: float = 1e5) -> np.ndarray:
    """The sparse-gradient intermediate image: ``argmin ||k * S - B||^2 + lam ||grad S||_0`` (circular model).

    Half-quadratic splitting as in Xu et al. (2011, 2013) and Pan et al. (2014):
    auxiliary gradients ``(h, v)`` hard-thresholded where ``h^2 + v^2 < lam /
    beta``, then ``S`` in closed form in the Fourier domain; ``beta`` doubles
    from ``2 lam`` to ``beta_max``.
    """
    from scipy import fft

    shape = blurred.shape
    otf = _otf(kernel, shape)
    dx = _otf(np.array([[0.0, -1.0, 1.0]]), shape)
    dy = _otf(np.array([[0.0], [-1.0], [1.0]]), shape)
    den_k = np.abs(otf) ** 2
    den_d = np.abs(dx) ** 2 + np.abs(dy) ** 2
    num_k = np.conj(otf) * fft.rfft2(blurred, workers=1)
    s = blurred.copy()
    beta = 2 * lam
    while beta < beta_max:
        h, v = _dx(s), _dy(s)
        small = h * h + v * v < lam / beta
        h[small] = 0.0
        v[small] = 0.0
        rhs = num_k + beta * fft.rfft2(_dxt(h) + _dyt(v), workers=1)
        s = fft.irfft2(rhs / (den_k + beta * den_d), s=shape, workers=1)
        beta *= 2
    return s


def kernel_step(latent: np.ndarray, blurred: np.ndarray, weight: np.ndarray, start: np.ndarray,
                tikhonov: float = None, iterations: int = 30, l1: float = None,
                rounds: int = None) -> np.ndarray:
    """Kernel on the gradients: ``argmin sum w |k * grad S - grad B|^2 + t ||k||^2 + l ||k||_1``.

    The normal equations are formed in the Fourier domain (the weighted
    cross-correlation of ``grad B`` with ``grad S`` on the kernel's support,
    and the weighted auto-correlation of ``grad S`` over twice the support,
    taken as Toeplitz: the weight's edge shifted by at most the kernel's
    radius is neglected), then solved by conjugate gradients on the
    ``size x size`` support from ``start`` (``t`` is ``tikhonov`` times the
    weighted gradient energy ``E`` of ``S``). The L1 term (``l1``, default
    :data:`KERNEL_L1`; 0 leaves plain least squares) is solved by
    iteratively reweighted least squares: ``rounds`` (default
    :data:`IRLS_ROUNDS`) more solves, each with the diagonal weight
    ``l1 E / (size^2 (|k'_i| + 1e-3 / size))`` where ``k'`` is the previous
    solution, non-negative and scaled to sum 1. It pulls the small values
    off the kernel's path to zero, where least squares leaves the streaks
    that image texture puts there. The result is cleaned by
    :func:`clean_kernel`.
    """
    from scipy import fft, signal

    tikhonov = TIKHONOV if tikhonov is None else tikhonov
    l1 = KERNEL_L1 if l1 is None else l1
    rounds = IRLS_ROUNDS if rounds is None else rounds
    shape = latent.shape
    size = start.shape[0]
    rhs = np.zeros((size, size))
    auto = np.zeros((2 * size - 1, 2 * size - 1))
    for grad in (_dx, _dy):
        gs, gb = grad(latent), grad(blurred)
        fs = np.conj(fft.rfft2(gs, workers=1))
        rhs += _crop_support(fft.irfft2(fs * fft.rfft2(weight * gb, workers=1), s=shape, workers=1), size)
        # The auto-correlation of the *weighted* gradient: positive semi-definite, so conjugate gradients
        # converge (the correlation of grad S with weight * grad S is not, and made them diverge).
        fw = fft.rfft2(weight * gs, workers=1)
        auto += _crop_support(fft.irfft2(np.conj(fw) * fw, s=shape, workers=1), 2 * size - 1)
    energy = max(float(auto[size - 1, size - 1]), 1e-12)
    t = tikhonov * energy

    def solve(k: np.ndarray, diagonal: Any) -> np.ndarray:
        def normal(v: np.ndarray) -> np.ndarray:
            return signal.fftconvolve(auto, v, mode="valid") + diagonal * v

        r = rhs - normal(k)
        p = r.copy()
        rr = float((r * r).sum())
        stop = 1e-12 * max(float((rhs * rhs).sum()), 1e-30)
        for _ in range(iterations):
            if rr <= stop:
                break
            q = normal(p)
            alpha = rr / max(float((p * q).sum()), 1e-30)
            k = k + alpha * p
            r = r - alpha * q
            rr_new = float((r * r).sum())
            p = r + (rr_new / rr) * p
            rr = rr_new
        return k

    k = solve(start.copy(), t)
    if l1 > 0:
        for _ in range(rounds):
            previous = k.clip(min=0.0)
            previous = previous / max(float(previous.sum()), 1e-12)
            k = solve(k, t + l1 * energy / (size * size * (previous + 1e-3 / size)))
    return clean_kernel(k)


def clean_kernel(k: np.ndarray, threshold: float = None, min_mass: float = 0.1) -> np.ndarray:
    """Non-negative, pruned, connected, centred kernel summing to 1 (Pan et al.'s post-processing).

    Negative values are cut, values below ``threshold`` (default
    :data:`PRUNE`) times the peak are
    zeroed, 8-connected pieces holding less than ``min_mass`` of the total
    are removed, and the kernel is shifted by whole pixels so that its centre
    of mass is within half a pixel of the centre, then normalised to sum 1. A
    kernel with no positive value becomes the identity (a delta).
    """
    from scipy import ndimage

    threshold = PRUNE if threshold is None else threshold
    k = np.where(np.isfinite(k), k, 0.0).clip(min=0.0)
    size = k.shape[0]
    if k.max() <= 0:
        out = np.zeros_like(k)
        out[size // 2, size // 2] = 1.0
        return out
    k = k / k.sum()
    k[k < threshold * k.max()] = 0.0
    labels, count = ndimage.label(k > 0, structure=np.ones((3, 3)))
    if count > 1:
        masses = ndimage.sum(k, labels, index=np.arange(1, count + 1))
        for index, mass in enumerate(masses, start=1):
            if mass < min_mass * k.sum():
                k[labels == index] = 0.0
    k = k / k.sum()
    centred = _moved(k, (size // 2, size // 2))
    if centred is None:  # everything shifted out: cannot happen for a centred support, but stay safe
        centred = np.zeros_like(k)
        centred[size // 2, size // 2] = 1.0
    return centred


def _moved(k: np.ndarray, target: tuple[float, float]) -> np.ndarray | None:
    """``k`` (summing to 1) shifted by whole pixels so its centre of mass is within half a pixel of ``target``.

    Returned as it is when no shift is needed, renormalised after one, None
    when the shift leaves nothing inside the support.
    """
    from scipy import ndimage

    shift = tuple(int(round(t - c)) for t, c in zip(target, ndimage.center_of_mass(k)))
    if shift == (0, 0):
        return k
    k = ndimage.shift(k, shift, order=0, mode="constant", cval=0.0)
    return k / k.sum() if k.sum() > 0 else None


# --------------------------------------------------------------------------- pyramid
def pyramid_sizes(size: int) -> list[int]:
    """Odd kernel sizes from the coarsest level (about :data:`COARSEST_SIZE`) to ``size``."""
    levels = max(1, int(math.floor(math.log(COARSEST_SIZE / size) / math.log(PYRAMID_RATIO))) + 1)
    sizes = []
    for level in range(levels - 1, -1, -1):
        s = int(round(size * PYRAMID_RATIO ** level))
        s += 1 - s % 2
        sizes.append(max(3, s))
    sizes[-1] = size
    return sizes


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    if image.shape == shape:
        return image
    return resize(image, shape, order=1, mode="reflect", anti_aliasing=True, preserve_range=True)


def _resize_kernel(k: np.ndarray, size: int) -> np.ndarray:
    from skimage.transform import resize

    out = resize(k, (size, size), order=1, mode="constant", anti_aliasing=False, preserve_range=True).clip(min=0)
    return out / out.sum() if out.sum() > 0 else clean_kernel(out)


def usefulness_map(image: np.ndarray, window: int = RMAP_WINDOW) -> np.ndarray:
    """Xu and Jia's (ECCV 2010) r-map: how much the gradients around each pixel agree in direction.

    ``r = |sum_N grad B| / (sum_N |grad B| + 0.5)`` over a ``window x window``
    neighbourhood ``N``: near 1 along a step edge wider than the blur, near 0
    in fine texture and noise, whose gradients cancel. Texture misleads the
    kernel (its gradients blurred look like those of other texture), so the
    kernel step fits only the pixels of high ``r``.
    """
    from scipy import ndimage

    gx, gy = _dx(image), _dy(image)
    area = window * window
    num = np.hypot(ndimage.uniform_filter(gx, window, mode="wrap"), ndimage.uniform_filter(gy, window, mode="wrap"))
    return num / (ndimage.uniform_filter(np.hypot(gx, gy), window, mode="wrap") + 0.5 / area)


def _useful_weight(weight: np.ndarray, image: np.ndarray, share: float = USEFUL_SHARE) -> np.ndarray:
    """``weight`` kept only on the ``share`` of its pixels with the highest :func:`usefulness_map`."""
    r = usefulness_map(image)
    inside = weight > 0
    if share >= 1 or not inside.any():
        return weight
    return weight * (r >= np.quantile(r[inside], 1 - share))


def _border_weight(shape: tuple[int, int], image: tuple[int, int], pad: int, radius: int) -> np.ndarray:
    """1 on the pixels of the padded grid whose blur footprint lies inside the ``image`` (at ``pad``), else 0."""
    weight = np.zeros(shape)
    inner = pad + radius
    weight[inner:pad + image[0] - radius, inner:pad + image[1] - radius] = 1.0
    return weight


def _pad_widths(shape: tuple[int, int], size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Mirror padding by ``size`` on the top and left, to a fast FFT length on the bottom and right."""
    from scipy import fft

    fast = [fft.next_fast_len(n + 2 * size, real=True) for n in shape]
    return (size, fast[0] - shape[0] - size), (size, fast[1] - shape[1] - size)


def _padded(blurred: np.ndarray, size: int, share: float = USEFUL_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """``blurred`` mirror-padded for a ``size`` kernel, and the kernel step's pixel weights on that grid.

    The weights are 1 where the blur footprint lies inside the image and the
    r-map (:func:`usefulness_map`) keeps the pixel (the ``share`` most useful,
    default :data:`USEFUL_SHARE`; 1 keeps all), else 0.
    """
    padded = np.pad(blurred, _pad_widths(blurred.shape, size), mode="reflect")
    return padded, _useful_weight(_border_weight(padded.shape, blurred.shape, size, size // 2), padded, share)


def refine_kernel(y: Any, restored: Any, kernel: Any, *, smooth: float = REFINE_SMOOTH,
                  relaxation: float = REFINE_RELAXATION) -> torch.Tensor:
    """The kernel of ``y`` re-estimated against ``restored``, a deblurred estimate of its sharp image.

    One kernel step (:func:`kernel_step`: gradient least squares with the
    Tikhonov and reweighted-L1 terms, on every pixel whose blur footprint lies
    inside the image, :data:`REFINE_USEFUL_SHARE`) at full resolution,
    started from ``kernel``, with the L0-smoothed
    ``restored`` (:func:`l0_intermediate` with no blur, weight ``smooth``) as
    the sharp image in place of the coarse-to-fine intermediate. A deblurrer
    with a strong prior (``pnp``) recovers edges the L0 intermediate lacks,
    so the kernel fits better; the smoothing removes the texture the
    deblurrer made up with the wrong kernel. The result is the start moved
    ``relaxation`` times as far as the re-estimate (then cleaned by
    :func:`clean_kernel`): an image deblurred with a kernel fits that kernel,
    so the re-estimate alone recovers only part of its error per round
    (:data:`REFINE_RELAXATION`). :func:`blind_degradation`
    alternates this with deblurring (:data:`REFINE_ROUNDS`); measured in
    ``benchmarks/RESULTS.md`` (blind deblurring, estimator version 5).

    Parameters
    ----------
    y : torch.Tensor or numpy.ndarray
        The blurred image, as for :func:`estimate_kernel`.
    restored : torch.Tensor or numpy.ndarray
        ``y`` deblurred with ``kernel`` (same size; colour or gray).
    kernel : torch.Tensor or numpy.ndarray
        The current estimate, square and odd-sized.
    smooth : float
        L0 weight of the smoothing of ``restored`` (0: none).
    relaxation : float
        Multiple of the re-estimate's step to take, in (0, 4] (1: the
        re-estimate itself; default :data:`REFINE_RELAXATION`).

    Returns
    -------
    torch.Tensor
        float64, the kernel's shape, non-negative, summing to 1.
    """
    import torch

    gray, sharp = _as_gray(y), _as_gray(restored)
    if sharp.shape != gray.shape:
        raise InputError(f"the restored image ({sharp.shape[0]}x{sharp.shape[1]}) must have the blurred image's size "
                         f"({gray.shape[0]}x{gray.shape[1]})")
    start = np.asarray(kernel.detach().cpu().numpy() if hasattr(kernel, "detach") else kernel, dtype=np.float64)
    if start.ndim != 2 or start.shape[0] != start.shape[1] or start.shape[0] % 2 == 0:
        raise InputError(f"the kernel to refine must be square with an odd side, got shape {tuple(start.shape)}")
    size = check_kernel_size(start.shape[0], gray.shape)
    relaxation = check_relaxation(relaxation)
    if smooth > 0:
        delta = np.zeros((3, 3))
        delta[1, 1] = 1.0
        sharp = l0_intermediate(sharp, delta, smooth)
    padded, weight = _padded(gray, size, REFINE_USEFUL_SHARE)
    latent = np.pad(sharp, _pad_widths(sharp.shape, size), mode="reflect")
    refit = _aligned(kernel_step(latent, padded, weight, start), start)
    if relaxation != 1:
        base = start.clip(min=0.0)
        mass = base.sum()
        base = base / mass if mass > 0 else refit
        refit = _aligned(clean_kernel(base + relaxation * (refit - base)), start)
    return torch.from_numpy(np.ascontiguousarray(refit))


def _aligned(kernel: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``kernel`` moved by whole pixels so its centre of mass is within half a pixel of ``reference``'s.

    Blind deconvolution fixes the kernel only up to a shift, and the image
    deblurred with it moves the other way; without this a refinement round
    could move the kernel by a pixel (its centre of mass crossing a half
    pixel) and the restored photo with it.
    """
    from scipy import ndimage

    moved = _moved(kernel, ndimage.center_of_mass(reference))
    return kernel if moved is None else moved


def estimate_kernel(y: Any, size: int = 31, *, iterations: int = 8, starts: Any = KERNEL_STARTS,
                    progress: bool = False) -> torch.Tensor:
    """Estimate the blur kernel of a blurred image from the image alone (blind deblurring).

    Coarse-to-fine over an image pyramid; at each level an L0 sparse-gradient
    intermediate image alternates with a kernel step in the gradient domain
    (least squares with Tikhonov and reweighted L1 terms) (Xu, Zheng and Jia 2013; Pan, Hu, Su and Yang 2014; see
    the module docstring for the scheme and its constants). Colour images
    are estimated on their luminance. The scheme is non-convex and its result
    depends on the two-pixel line it starts from, so it runs once from each
    of ``starts`` and keeps the kernel that fits the blurred image's
    gradients best (the smallest weighted residual of its last kernel step,
    :func:`gradient_misfit`; :data:`KERNEL_STARTS`).

    Parameters
    ----------
    y : torch.Tensor or numpy.ndarray
        One blurred (possibly noisy) image with values in [0, 1]: ``(H, W)``,
        ``(C, H, W)`` or ``(1, C, H, W)`` with ``C`` 1 or 3.
    size : int
        The kernel's side in pixels: odd, at least 3 and less than half the
        image's smaller side. Choose it a little larger than the blur you
        expect (31 covers Levin et al.'s motion blurs, which are at most 27).
    iterations : int
        Alternations of intermediate image and kernel per pyramid level
        (default 8; Pan et al. use 5, 8 measured a little better on CBSD68
        with Levin's kernels).
    starts : str or sequence of str
        The starting lines, each run in full (each costs one estimate's time):
        any of ``"horizontal"``, ``"vertical"``, ``"diagonal"``,
        ``"antidiagonal"`` (:data:`START_LINES`; default :data:`KERNEL_STARTS`;
        ``"horizontal"`` alone is Pan et al.'s single start).
    progress : bool
        Show a tqdm bar over the starts (on stderr).

    Returns
    -------
    torch.Tensor
        float64, ``(size, size)``, non-negative, summing to 1, centred on its
        centre of mass (to a whole pixel); ready for
        :class:`restorekit.degrade.Blur`.

    Raises
    ------
    InputError
        For a batch of several images, a channel count other than 1 or 3,
        non-finite pixels or values off the [0, 1] scale, a size that is even, below 3 or not less than
        half the image's smaller side, or ``starts`` empty or not among :data:`START_LINES`.

    Examples
    --------
    >>> import torch
    >>> import restorekit
    >>> from restorekit.degrade import Blur, Compose, Noise
    >>> from restorekit.kernels import load_kernel
    >>> x = torch.zeros(1, 1, 96, 96)
    >>> x[..., 20:60, 30:70] = 1.0                   # a bright square: edges in two directions
    >>> x[..., 50:80, 10:40] = 0.5
    >>> d = Compose(Blur(load_kernel("box:5")), Noise(0.005))
    >>> y = d.apply(x, seed=0)
    >>> k = restorekit.estimate_kernel(y, 11)
    >>> tuple(k.shape), round(float(k.sum()), 6), bool((k >= 0).all())
    ((11, 11), 1.0, True)
    >>> x_hat = restorekit.create("pnp")(y, Compose(Blur(k), Noise(0.005)))  # doctest: +SKIP
    """
    import torch

    gray = _as_gray(y)
    size = check_kernel_size(size, gray.shape)
    _check_iterations(iterations)
    starts = check_starts(starts)
    if progress:
        import sys

        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="estimate kernel", unit="start", leave=False, file=sys.stderr)
    estimates = [coarse_to_fine(gray, size, start, iterations=iterations) for start in starts]
    best, _ = min(estimates, key=lambda estimate: estimate[1])  # the first of equal misfits
    return torch.from_numpy(np.ascontiguousarray(best))


def coarse_to_fine(y: Any, size: int, start: str, *, iterations: int = 8) -> tuple[np.ndarray, float]:
    """The coarse-to-fine estimate from one start: the kernel and its :func:`gradient_misfit` at the finest level.

    What :func:`estimate_kernel` runs for each of its ``starts`` (same
    arguments; ``start`` one name of :data:`START_LINES`); it keeps the kernel
    of least misfit. Returns the kernel as a float64 ``(size, size)`` array.
    """
    gray = _as_gray(y)
    size = check_kernel_size(size, gray.shape)
    _check_iterations(iterations)
    if not isinstance(start, str) or start not in START_LINES:
        raise InputError(f"start must be one of {', '.join(START_LINES)}, got {start!r}")
    sizes = pyramid_sizes(size)
    h, w = gray.shape
    k = _start_kernel(start, sizes[0])
    for ks in sizes:
        factor = ks / size
        shape = (max(2 * ks + 1, int(round(h * factor))), max(2 * ks + 1, int(round(w * factor))))
        blurred = _resize(gray, shape)
        if k.shape[0] != ks:
            k = _resize_kernel(k, ks)
        padded, weight = _padded(blurred, ks)
        lam = LAMBDA_START
        for _ in range(iterations):
            latent = l0_intermediate(padded, k, lam)
            k = kernel_step(latent, padded, weight, k)
            lam = max(lam / 1.1, LAMBDA_MIN)
    return k, gradient_misfit(latent, padded, weight, k)


def _check_iterations(iterations: Any) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"iterations must be a whole number >= 1, got {iterations!r}")


def check_starts(starts: Any) -> tuple[str, ...]:
    """``starts`` as a tuple of known start names (:data:`START_LINES`), or an :class:`InputError`."""
    if isinstance(starts, str):
        starts = (starts,)
    try:
        starts = tuple(starts)
    except TypeError:
        starts = None
    if not starts or not all(isinstance(s, str) and s in START_LINES for s in starts):
        raise InputError(f"starts must be one or more of {', '.join(START_LINES)}, got {starts!r}")
    return starts


def _start_kernel(start: str, size: int) -> np.ndarray:
    """A two-pixel line (:data:`START_LINES`) of mass 1 at the centre of a ``size x size`` kernel."""
    k = np.zeros((size, size))
    c = size // 2
    for dy, dx in START_LINES[start]:
        k[c + dy, c + dx] = 0.5
    return k


def gradient_misfit(latent: np.ndarray, blurred: np.ndarray, weight: np.ndarray, kernel: np.ndarray) -> float:
    """``sum w |k * grad S - grad B|^2``: how far ``kernel`` blurs the sharp image's gradients from the blurred
    image's, on the weighted pixels (the kernel step's data term, circular model)."""
    from scipy import fft

    otf = _otf(kernel, latent.shape)
    total = 0.0
    for grad in (_dx, _dy):
        blurred_grad = fft.irfft2(otf * fft.rfft2(grad(latent), workers=1), s=latent.shape, workers=1)
        total += float((weight * (blurred_grad - grad(blurred)) ** 2).sum())
    return total


# --------------------------------------------------------------------------- blind degradation
def estimate_sigma(y: Any) -> float:
    """The Gaussian noise level of ``y`` (one image, [0, 1] scale), as the blind deblurring path uses it.

    :func:`restorekit.estimate_noise` (PCA of weak-texture patches, Chen, Zhu
    and Heng 2015), averaged over the channels. (The first blind benchmark in
    ``benchmarks/RESULTS.md`` predates it and used scikit-image's wavelet
    estimate.)
    """
    from .noise import estimate_noise

    return float(estimate_noise(y).sigma)


def blind_degradation(y: Any, size: int = 31, *, boundary: str = "reflect", sigma: float | None = None,
                      progress: bool = False, deblurrer: Any = None,
                      rounds: int = REFINE_ROUNDS, relaxation: float = REFINE_RELAXATION,
                      starts: Any = KERNEL_STARTS, refine_precision: str = "auto") -> tuple[Any, dict]:
    """The degradation of a blurred photo, estimated from it: ``Compose(Blur(k), Noise(sigma))``.

    Parameters
    ----------
    y : torch.Tensor
        One blurred image ``(1, C, H, W)`` in [0, 1].
    size : int
        Kernel size for :func:`estimate_kernel`.
    boundary : {"reflect", "circular"}
        The border model of the returned :class:`~restorekit.degrade.Blur`
        (reflect for photos, circular for synthetic periodic blur).
    sigma : float, optional
        The noise level if known; else estimated (:func:`estimate_sigma`) and
        raised to at least :data:`BLIND_SIGMA_FLOOR` (0.005).
    progress : bool
        Show the estimation's progress bar.
    deblurrer : callable, optional
        The restorer that will deblur ``y`` (``deblurrer(y, degradation)``,
        e.g. ``restorekit.create("pnp")``). When given, the estimate is
        refined ``rounds`` times: ``y`` deblurred with the current kernel,
        then the kernel re-estimated against the result
        (:func:`refine_kernel`; its smoothing :data:`REFINE_SMOOTH_EARLY`
        in the first :data:`REFINE_EARLY_ROUNDS` rounds, then
        :data:`REFINE_SMOOTH`). Each round costs one restoration.
    rounds : int
        Refinement rounds with ``deblurrer`` (default :data:`REFINE_ROUNDS`).
    relaxation : float
        How far each round moves the kernel, as a multiple of its re-estimate's
        step (:func:`refine_kernel`; default :data:`REFINE_RELAXATION`).
    starts : str or sequence of str
        The coarse-to-fine estimate's starts (:func:`estimate_kernel`; default
        :data:`KERNEL_STARTS`).
    refine_precision : {"auto", "same"}
        The refinement rounds' arithmetic: ``"auto"`` deblurs them with
        :func:`refinement_deblurrer` (bfloat16 where the CPU computes it
        natively and ``deblurrer`` takes ``precision``); ``"same"`` with
        ``deblurrer`` as it is. The restoration that follows is the caller's,
        in its own precision.

    Returns
    -------
    (Compose, dict)
        The degradation to hand any deblurrer, and what was estimated:
        ``{"kernel": tensor, "size": int, "sigma": float, "sigma_estimated": bool,
        "sigma_estimate": float, "refined": int}`` (``sigma`` is the level handed on;
        ``sigma_estimate`` the estimate before the floor, or the level given;
        ``refined`` the refinement rounds run).

    Examples
    --------
    >>> import restorekit
    >>> from restorekit.estimate.kernel import blind_degradation
    >>> degradation, found = blind_degradation(y, 31)  # doctest: +SKIP
    >>> x_hat = restorekit.create("pnp")(y, degradation)  # doctest: +SKIP
    """
    import torch

    from ..degrade import Blur, Compose, Noise

    rounds = check_rounds(rounds)
    relaxation = check_relaxation(relaxation)
    if refine_precision not in ("auto", "same"):
        raise InputError(f"refine_precision must be 'auto' or 'same', got {refine_precision!r}")
    kernel = estimate_kernel(y, size, starts=starts, progress=progress)
    estimated = sigma is None
    raw = max(0.0, estimate_sigma(y)) if estimated else float(sigma)
    sigma = max(raw, BLIND_SIGMA_FLOOR) if estimated else raw
    degradation = Compose(Blur(kernel, boundary), Noise(float(sigma)))
    refined = 0
    if deblurrer is not None:
        refiner = refinement_deblurrer(deblurrer, getattr(y, "device", None)) if refine_precision == "auto" \
            else deblurrer
        for index in range(rounds):
            with torch.no_grad():
                restored = refiner(y, degradation)
            smooth = REFINE_SMOOTH_EARLY if index < REFINE_EARLY_ROUNDS else REFINE_SMOOTH
            kernel = refine_kernel(y, restored, kernel, smooth=smooth, relaxation=relaxation)
            degradation = Compose(Blur(kernel, boundary), Noise(float(sigma)))
            refined += 1
    found = {"kernel": kernel, "size": int(kernel.shape[0]), "sigma": float(sigma), "sigma_estimated": estimated,
             "sigma_estimate": float(raw), "refined": refined}
    return degradation, found


def refinement_deblurrer(deblurrer: Any, device: Any = None) -> Any:
    """The deblurrer for :func:`blind_degradation`'s refinement rounds: ``deblurrer``, in bfloat16 where that is faster.

    The rounds' restorations only serve the kernel's re-estimate, so they may
    be computed coarser than the final one. Where the CPU computes bfloat16
    natively (AMX-BF16 or AVX512-BF16: :func:`restorekit.training.machine.cpu_has_native_bf16`),
    the image is on the CPU (``device`` None or a CPU device) and ``deblurrer``
    is a :class:`~restorekit.restorer.Restorer` with a ``precision`` parameter
    set to float32 (``pnp``), the result is a copy set to bfloat16
    (:meth:`~restorekit.restorer.Restorer.replaced`); pnp's refinement rounds
    then take about half the time (Intel Xeon with AMX-BF16, 481x321: 1.75 s
    against 3.4 s a round) and the error ratios after 5 rounds are those of
    float32 on the mean (2.353 against 2.345 on 16 cases, 14 within 0.025;
    ``benchmarks/RESULTS.md``, estimator version 7). Otherwise ``deblurrer`` itself.
    The copy is built once per ``deblurrer`` (a batch of photos, or a
    benchmark's cases, shares it).
    """
    from ..errors import ParameterError
    from ..restorer import Restorer
    from ..training.machine import cpu_has_native_bf16

    if not isinstance(deblurrer, Restorer) or deblurrer.config.get("precision") != "float32":
        return deblurrer
    if (device is not None and getattr(device, "type", "cpu") != "cpu") or not cpu_has_native_bf16():
        return deblurrer
    copy = _BFLOAT16_COPIES.get(deblurrer)
    if copy is None:
        try:
            copy = deblurrer.replaced(precision="bfloat16")
        except ParameterError:  # e.g. pnp over a denoiser that has no precision parameter
            copy = deblurrer
        _BFLOAT16_COPIES[deblurrer] = copy
    return copy


#: :func:`refinement_deblurrer`'s copies, one per deblurrer (each a network loaded), dropped with the deblurrer.
_BFLOAT16_COPIES: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


__all__ = ["BLIND_SIGMA_FLOOR", "ESTIMATOR_VERSION", "KERNEL_STARTS", "REFINE_EARLY_ROUNDS", "REFINE_RELAXATION",
           "REFINE_ROUNDS", "REFINE_SMOOTH", "REFINE_SMOOTH_EARLY", "REFINE_USEFUL_SHARE", "blind_degradation",
           "START_LINES", "check_kernel_size", "check_relaxation", "check_rounds", "check_starts", "clean_kernel",
           "coarse_to_fine", "estimate_kernel", "estimate_sigma", "gradient_misfit", "kernel_step", "l0_intermediate",
           "pyramid_sizes", "refine_kernel", "refinement_deblurrer"]
