"""Gaussian noise level of an image from the image alone (Chen, Zhu and Heng, ICCV 2015).

:func:`estimate_noise` returns the standard deviation of additive white
Gaussian noise in an image, on the [0, 1] scale. The method is the
statistical one of G. Chen, F. Zhu and P. A. Heng, "An Efficient Statistical
Method for Image Noise Level Estimation", ICCV 2015: the patches of a noisy
image span a low-dimensional subspace (the image's structure) plus noise in
every direction, so the eigenvalues of the patch covariance that belong to
noise alone share one value, sigma^2. Sorting the eigenvalues, the largest
set of the smallest ones whose mean equals their median (noise eigenvalues are
distributed symmetrically around sigma^2; structure adds eigenvalues far above
it) is taken as the noise's, and their mean is the estimate. Texture moves
energy into the few large eigenvalues, which the test leaves out, so the
estimate is far less biased by texture than the wavelet median estimate
(:func:`skimage.restoration.estimate_sigma`), which reads fine texture as
noise (``benchmarks/RESULTS.md`` compares the two on CBSD68).

Colour images are estimated from patches of all channels at once (noise of
one sigma in every channel, as :class:`restorekit.degrade.Noise` makes it);
``per_channel=True`` estimates each channel on its own. A JPEG's chroma
subsampling removes the colour noise and with it that estimate's footing; the
luma channel's estimate then takes over (:func:`_colour_checked`). JPEG's
quantisation at quality 70 and below also removes much of the luma's
high-frequency noise, and no white-noise estimate recovers the sigma from
before compression there (``benchmarks/RESULTS.md`` gives the figures).

**Poisson-Gaussian noise** (``model="poisson-gaussian"``, the noise of
:class:`restorekit.degrade.PoissonGaussian`, variance ``gain * x + sigma^2``):
the level is estimated per intensity and a line is fitted to variance
against mean, as in Foi, Trimeche, Katkovnik and Egiazarian, "Practical
Poissonian-Gaussian noise modeling and fitting for single-image raw-data"
(IEEE TIP 2008). The 7x7 patches of every channel are sorted by their own
mean into 32 bins of equal count; each patch's mean is removed (for
Poisson counts the spread of a patch about its own noisy mean has
expectation ``gain`` times that mean, which is the bin's level), and in
each bin the noise variance is Chen et al.'s PCA estimate restricted to
weak-texture patches in the manner of Liu, Tanaka and Okutomi, "Single-image
noise level estimation for blind denoising" (IEEE TIP 2013): patches whose
gradient energy exceeds the 99% quantile of pure noise at the current
estimate are dropped, three times. A first line from these bins sets each
patch's expected variance; two more passes divide every patch by its
expected standard deviation before the selection (a wide dark bin no longer
loses its brighter, noisier patches as "texture": that had read the darkest
bin 20% low) and refit. Texture that passes the selection only adds
variance, so the line is not a least-squares fit through the bins but their
25% quantile regression on relative residuals (:func:`_quantile_line`: the
bins texture spared). The read noise ``sigma`` is the square root of the
line's intercept at black: an extrapolation from the darkest intensities the
image has, so it is far less certain than the gain where shot noise
dominates there (``benchmarks/RESULTS.md`` gives the errors per setting).

The line is then refined (:func:`_stabilised_fit`). The generalized
Anscombe transform with the image's own gain and read noise gives its noise
a known variance at every intensity: 1 wherever the counts are not small,
less at black (:func:`_stabilised_variance` computes it). The transformed
image's patches of all channels at once are sorted by their mean into four
groups, each group's level is Chen et al.'s estimate, and Nelder-Mead moves
gain and read noise from the line's until every group reads what the
transform should leave there. Patches of all channels keep a colour
image's texture, alike in its channels, in the few large eigenvalues,
where the per-channel bins let dark texture through as variance: on the
first 20 CBSD68 images that took the read noise within 15% on 93 of 120
image-settings against 78, and on no setting fewer (``benchmarks/RESULTS.md``).
It costs 5-6 s per 481x321 image on one thread (the line fit alone 1 s).

On colour images a second, independent fit joins it (:func:`_residual_fit`,
0.1 s): every pixel's Laplacian residual (Immerkaer, CVIU 1996), projected
across the local colour so that shading texture, alike in R, G and B, cancels,
and a line through 128 intensity bins of the squared projections. The two fail
on different images, and the result is the geometric mean of their gains and
of their read noises (:func:`_pg_estimate`; RESULTS gives the figures).
Where the two read noises differ by more than :data:`PG_DISAGREEMENT`, or the
residual fit's own standard error of the read noise exceeds
:data:`PG_READ_NOISE_ERROR`, the estimate says it is uncertain
(:attr:`NoiseEstimate.uncertain`, and a note in :meth:`NoiseEstimate.describe`):
on CBSD68 such estimates missed 15% several times as often as the rest
(``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Side of the square patches.
PATCH = 7
#: At most this many patches enter the covariance (a regular subsample beyond it).
MAX_PATCHES = 60000


@dataclass(frozen=True)
class NoiseEstimate:
    """What :func:`estimate_noise` found.

    Attributes
    ----------
    sigma : float
        The noise standard deviation ([0, 1] scale) of the image (the mean over images of a batch).
    sigmas : tuple of float
        One estimate per image of the batch.
    per_channel : tuple of tuple of float, or None
        One estimate per image and channel when ``per_channel=True``.
    model : str
        ``"gaussian"``.
    method : str
        The method's name and reference.
    gain, gains : float, tuple of float, or None
        The Poisson-Gaussian gain (the batch's mean, and one per image); None for ``"gaussian"``.
    read_noise_fits : tuple, or None
        Poisson-Gaussian only: per image, the read noise ``sigma`` of the two fits whose geometric mean
        ``sigmas`` holds (the stabilised patch fit's, the colour residual fit's), or None for an image with
        one fit (gray, or no signal dependence found).
    read_noise_errors : tuple, or None
        Poisson-Gaussian only: per image, the colour residual fit's own relative standard error of its read
        noise (from its bins' scatter about its line), or None where ``read_noise_fits`` is None.
    """

    sigma: float
    sigmas: tuple[float, ...]
    per_channel: tuple[tuple[float, ...], ...] | None = None
    model: str = "gaussian"
    method: str = field(default="PCA of patches (Chen, Zhu, Heng, ICCV 2015)")
    gain: float | None = None
    gains: tuple[float, ...] | None = None
    read_noise_fits: tuple[tuple[float, float] | None, ...] | None = None
    read_noise_errors: tuple[float | None, ...] | None = None

    def _widest_fits(self) -> tuple[float, float] | None:
        """The image's two read-noise fits that lie furthest apart (by ratio), or None without two fits."""
        pairs = [f for f in self.read_noise_fits or () if f is not None and min(f) > 0]
        return max(pairs, key=lambda f: max(f) / min(f), default=None)

    @property
    def disagreement(self) -> float:
        """The largest ratio, over the batch's images, of the larger read-noise fit to the smaller (1.0 with
        fewer than two fits): how far apart two independent estimates of ``sigma`` came out."""
        widest = self._widest_fits()
        return max(widest) / min(widest) if widest else 1.0

    @property
    def read_noise_error(self) -> float:
        """The largest, over the batch's images, of the residual fit's relative standard error of its read
        noise (0.0 without such a fit)."""
        return max((e for e in self.read_noise_errors or () if e is not None), default=0.0)

    @property
    def uncertain(self) -> bool:
        """True when the two read-noise fits of some image differ by more than :data:`PG_DISAGREEMENT`, or
        the residual fit's own standard error of the read noise exceeds :data:`PG_READ_NOISE_ERROR`: such
        estimates of ``sigma`` missed 15% several times as often as the others on CBSD68."""
        return bool(self._uncertainty_reasons())

    def _uncertainty_reasons(self) -> list[str]:
        """What makes the read noise :attr:`uncertain`, one phrase per reason (empty when nothing does)."""
        reasons = []
        widest = self._widest_fits()
        if widest and max(widest) / min(widest) > PG_DISAGREEMENT:
            reasons.append(f"its two fits read {min(widest):.4f} and {max(widest):.4f}")
        if self.read_noise_error > PG_READ_NOISE_ERROR:
            reasons.append(f"its residual fit's standard error is {self.read_noise_error:.0%}")
        return reasons

    def describe(self) -> str:
        """One line for the CLI, e.g. ``noise sigma 0.0312 estimated (PCA of patches, Chen 2015)``; an
        uncertain Poisson-Gaussian read noise (:attr:`uncertain`) is said so, with what made it so."""
        if self.model == "poisson-gaussian":
            line = f"noise Poisson-Gaussian gain {self.gain:.4f}, sigma {self.sigma:.4f} estimated ({self.method})"
            note = self.uncertainty_note()
            return f"{line}; {note}" if note else line
        return f"noise sigma {self.sigma:.4f} estimated ({self.method})"

    def uncertainty_note(self) -> str:
        """``read noise uncertain: its two fits read 0.0081 and 0.0124`` (the image whose fits differ most),
        and/or ``its residual fit's standard error is 23%`` (the batch's largest), whichever made the estimate
        :attr:`uncertain`; ``""`` when it is not."""
        reasons = self._uncertainty_reasons()
        return "read noise uncertain: " + "; ".join(reasons) if reasons else ""

    def degradation(self) -> Any:
        """The estimated noise as a degradation: ``Noise(sigma)`` or ``PoissonGaussian(gain, sigma)``."""
        from ..degrade import Noise, PoissonGaussian

        if self.model == "poisson-gaussian":
            return PoissonGaussian(self.gain, self.sigma)
        return Noise(self.sigma)


#: Intensity bins of the Poisson-Gaussian fit (equal numbers of patches).
PG_BINS = 32
#: The line is the PG_QUANTILE quantile regression of the bins' variances (texture only adds variance).
PG_QUANTILE = 0.25
#: Passes of the weak-texture selection with each patch scaled to the fitted line's variance.
PG_PASSES = 2
#: At most this many patches (of all channels) enter the Poisson-Gaussian fit.
PG_MAX_PATCHES = 150000
#: Intensity groups of the stabilised refinement (:func:`_stabilised_fit`).
PG_GROUPS = 4
#: The read noise the refinement starts from when the line fit's intercept is 0 or below.
PG_REFINE_FLOOR = 1e-3
#: The refinement tabulates the stabilised noise's variance at this many intensities from 0 to PG_LEVEL_TOP
#: (brighter patches take the top's).
PG_LEVEL_COUNT = 97
PG_LEVEL_TOP = 1.2
#: Above this many photons the stabilised variance is taken as 1 (it is 1.000 from about 30; the sum over counts
#: stays small however small the gain).
PG_STABLE_COUNT = 200.0
#: Most Nelder-Mead iterations of the stabilised refinement (it stops after 45-65 evaluations on CBSD68).
PG_REFINE_ITERATIONS = 80
#: Intensity bins of the colour residual fit (:func:`_residual_fit`; equal numbers of residuals).
RESIDUAL_BINS = 128
#: The residual fit needs at least this many residuals per bin (smaller images get fewer bins).
RESIDUAL_PER_BIN = 256
#: Iterations of the residual fit's weighted least squares (weights from the previous line).
RESIDUAL_ROUNDS = 4
#: Two read-noise fits further apart than this ratio make the estimate :attr:`NoiseEstimate.uncertain`. On the
#: 20 + 48 CBSD68 images of ``benchmarks/bench_noise_estimation.py`` 11% / 24% of the image-settings were
#: flagged by this test alone, and 62% / 53% of those missed 15% against 7% / 18% of the rest
#: (``benchmarks/RESULTS.md``; with :data:`PG_READ_NOISE_ERROR` too, 17% / 28% flagged, 55% / 55% of them missed).
PG_DISAGREEMENT = 1.35
#: The residual fit's least-squares standard error of the read noise, times this, is its spread from draw to draw:
#: neighbouring residuals are correlated and fall in neighbouring bins, so the bins' scatter about the line
#: understates it (measured 1.3-1.7 times, 100 draws on 128x128 and 256x256 colour ramps and shaded ramps).
RESIDUAL_ERROR_SCALE = 1.5
#: A residual fit whose relative standard error of the read noise exceeds this also makes the estimate
#: :attr:`NoiseEstimate.uncertain`: from 0.15 / 0.6745 = 0.22 on, a normal error misses 15% more often than not.
PG_READ_NOISE_ERROR = 0.22
#: Weak-texture selection: patches whose gradient energy is below this quantile of pure noise's are kept.
TEXTURE_QUANTILE = 0.99
#: The name and references of the Poisson-Gaussian method.
PG_METHOD = ("PCA of weak-texture patches per intensity bin, quantile line fit of variance on mean, refined so that "
             "the generalized Anscombe transform stabilises every intensity group; on colour images combined with "
             "a line fit of Laplacian residuals across the local colour "
             "(Foi et al. 2008; Chen et al. 2015; Liu et al. 2013; Makitalo and Foi 2013; Immerkaer 1996)")


def _patch_matrix(channels: Any, patch: int) -> Any:
    """(n, patch * patch * C) matrix of the overlapping patches of a (C, H, W) float64 array, subsampled."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    c, h, w = channels.shape
    windows = sliding_window_view(channels, (c, patch, patch))[0]  # (H-p+1, W-p+1, C, p, p)
    ny, nx = windows.shape[:2]
    step = 1
    while (ny // step) * (nx // step) > MAX_PATCHES:
        step += 1
    picked = windows[::step, ::step]
    return np.ascontiguousarray(picked.reshape(-1, c * patch * patch))


def _sigma_from_patches(matrix: Any, drop_first: bool = False) -> float:
    """Chen et al.'s estimate from a patch matrix (rows: patches).

    ``drop_first``: leave out the smallest eigenvalue (for patches whose own
    means were removed: that direction holds no noise).
    """
    import numpy as np

    centred = matrix - matrix.mean(axis=0, keepdims=True)
    cov = centred.T @ centred / max(1, centred.shape[0] - 1)
    eig = np.sort(np.clip(np.linalg.eigvalsh(cov), 0, None))
    if drop_first:
        eig = eig[1:]
    for count in range(eig.size, 0, -1):
        tail = eig[:count]
        tau = tail.mean()
        if np.sum(tail > tau) == np.sum(tail < tau):
            return float(np.sqrt(tau))
    return float(np.sqrt(eig[0]))


def _ac_sigma(rows: Any) -> float:
    """Chen et al.'s estimate on the zero-mean part of patches (each row's mean removed, its eigenvalue dropped)."""
    return _sigma_from_patches(rows, drop_first=True)


def _gradient_energy(rows: Any, patch: int) -> Any:
    """Sum of squared horizontal and vertical differences inside each patch (Liu et al.'s texture strength)."""
    import numpy as np

    q = rows.reshape(-1, patch, patch)
    return (np.diff(q, axis=1) ** 2).sum(axis=(1, 2)) + (np.diff(q, axis=2) ** 2).sum(axis=(1, 2))


_NOISE_QUANTILES: dict[int, float] = {}


def _noise_quantile(patch: int) -> float:
    """The :data:`TEXTURE_QUANTILE` of the gradient energy of unit white noise patches (simulated once, seeded)."""
    import numpy as np

    if patch not in _NOISE_QUANTILES:
        rows = np.random.default_rng(0).standard_normal((20000, patch * patch))
        _NOISE_QUANTILES[patch] = float(np.quantile(_gradient_energy(rows, patch), TEXTURE_QUANTILE))
    return _NOISE_QUANTILES[patch]


def _bin_variance(rows: Any, patch: int) -> float:
    """Noise variance of one intensity bin: PCA of its weak-texture, zero-mean patches."""
    rows = rows - rows.mean(axis=1, keepdims=True)
    return _weak_texture_variance(rows, _gradient_energy(rows, patch), patch)


def _weak_texture_variance(rows: Any, energy: Any, patch: int) -> float:
    """PCA noise variance of ``rows``, re-estimated three times on the patches whose gradient ``energy``
    is below the noise quantile at the current variance (while enough patches remain)."""
    limit = _noise_quantile(patch)
    variance = _ac_sigma(rows) ** 2
    for _ in range(3):
        keep = energy < limit * variance
        if keep.sum() < 4 * patch * patch:
            break
        variance = _ac_sigma(rows[keep]) ** 2
    return variance


def _quantile_line(level: Any, variance: Any, quantile: float = PG_QUANTILE) -> tuple[float, float]:
    """``(gain, offset)`` of the line under ``variance`` against ``level``: quantile regression, relative residuals.

    Minimises the pinball loss of ``(variance - gain * level - offset) / variance`` (a linear program,
    :func:`scipy.optimize.linprog`): the line has ``quantile`` of the bins below it. Texture that the
    weak-texture selection lets through only adds variance, so a low quantile follows the bins that
    texture spared (a lower envelope) instead of their mean. Falls back to weighted least squares
    if the program fails.
    """
    import numpy as np
    from scipy.optimize import linprog

    weight = 1 / np.maximum(variance, 1e-12)
    n = len(level)
    design = np.stack([level * weight, weight], axis=1)
    cost = np.concatenate([[0.0, 0.0], np.full(n, quantile), np.full(n, 1 - quantile)])
    constraints = np.hstack([design, np.eye(n), -np.eye(n)])
    bounds = [(None, None), (None, None)] + [(0, None)] * (2 * n)
    result = linprog(cost, A_eq=constraints, b_eq=np.ones(n), bounds=bounds, method="highs")
    if result.status == 0:
        return float(result.x[0]), float(result.x[1])
    solution = np.linalg.lstsq(design, np.ones(n), rcond=None)[0]
    return float(solution[0]), float(solution[1])


def _normalised_bin_variance(rows: Any, energy: Any, expected: Any, patch: int) -> float:
    """Noise variance of one bin with each patch scaled to the variance the current line predicts for it.

    ``rows``: the bin's zero-mean patches; ``energy``: their gradient energy; ``expected``: the current
    fit's variance at each patch's mean. Dividing by ``sqrt(expected)`` makes the noise of a wide bin
    (the darkest one spans black to mid-grey) of one level, so that the weak-texture threshold no
    longer drops its noisier, brighter patches as texture (which pulled the darkest bin 20% low);
    the bin's variance is the normalised estimate times the mean expected variance.
    """
    import numpy as np

    ratio = _weak_texture_variance(rows / np.sqrt(expected)[:, None], energy / expected, patch)
    return float(ratio * expected.mean())


def _pg_fit(item: Any, patch: int) -> tuple[float, float]:
    """``(gain, sigma)`` of one image (C, H, W) by the line fit of the module docstring."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    rows = np.concatenate([sliding_window_view(c, (patch, patch)).reshape(-1, patch * patch) for c in item])
    rows = rows[:: max(1, len(rows) // PG_MAX_PATCHES)]
    means = rows.mean(axis=1)
    order = np.argsort(means, kind="stable")
    bins = [b for b in np.array_split(order, PG_BINS) if len(b) >= 4 * patch * patch]
    if len(bins) < 3:
        bins = [b for b in np.array_split(order, 3)]
    level = np.array([means[b].mean() for b in bins])
    variance = np.array([_bin_variance(rows[b], patch) for b in bins])
    gain, offset = _quantile_line(level, variance)
    centred = rows - means[:, None]
    energy = _gradient_energy(centred, patch)
    for _ in range(PG_PASSES):
        if gain <= 0:
            gain, offset = 0.0, float(np.median(variance))
        floor = max(1e-3 * float(np.median(variance)), 1e-12)  # a noise-free image: no division by 0
        expected = np.maximum(gain * np.clip(means, 0, None) + max(offset, 0.0), floor)
        variance = np.array([_normalised_bin_variance(centred[b], energy[b], expected[b], patch) for b in bins])
        gain, offset = _quantile_line(level, variance)
    if gain < 0:  # no signal dependence: a constant variance
        gain, offset = 0.0, float(np.median(variance))
    return gain, float(np.sqrt(max(offset, 0.0)))


def _anscombe(values: Any, gain: float, sigma: float) -> Any:
    """:func:`restorekit.degrade.vst.anscombe` of a float64 numpy array."""
    import torch

    from ..degrade.vst import anscombe

    return anscombe(torch.from_numpy(values), gain, sigma).numpy()


def _stabilised_variance(levels: Any, gain: float, sigma: float) -> Any:
    """The variance of the generalized Anscombe transform of ``gain * Poisson(x / gain) + N(0, sigma^2)`` at
    each intensity ``x`` of ``levels``: the Poisson sum, and the Gaussian integral on a fine grid (the
    transform's square root is clamped at 0, a kink that Gauss-Hermite nodes miss by 2% at black).

    It is 1 at high counts; at low counts the transform does not stabilise (at gain 0.05 and read noise
    0.02: 0.38 at black, 0.72 at 0.025, 1.00 from 0.1 on), so that is what the dark groups are matched to.
    """
    import numpy as np
    from scipy.stats import poisson

    variance = np.ones(len(levels))
    counts = np.asarray(levels, dtype=np.float64) / gain
    low = counts <= PG_STABLE_COUNT  # above it the transform's variance is 1 to within 1e-3
    if not low.any():
        return variance
    nodes = np.linspace(-8.0, 8.0, 641)  # the read noise in its own units: a fine rule, for the kink at 0
    weights = np.exp(-nodes**2 / 2)
    weights = weights / weights.sum()
    top = float(counts[low].max())
    k = np.arange(int(top + 12 * np.sqrt(top) + 20) + 1)
    pmf = poisson.pmf(k[None, :], counts[low][:, None])
    values = _anscombe(gain * k[:, None] + sigma * nodes[None, :], gain, sigma)
    first, second = pmf @ (values * weights).sum(axis=1), pmf @ (values**2 * weights).sum(axis=1)
    variance[low] = np.maximum(second - first**2, 1e-9)
    return variance


def _stabilised_fit(item: Any, gain: float, sigma: float, patch: int) -> tuple[float, float]:
    """``(gain, sigma)`` refined from the line fit's so that the stabilised noise has, in every intensity
    group, the level the transform gives to the image's own gain and read noise.

    The generalized Anscombe transform with the image's gain and read noise leaves noise of unit variance
    wherever the counts are not small (:func:`_stabilised_variance` gives it exactly everywhere); with a read
    noise too high the dark groups read low. The patches of the transformed image (all channels at once)
    are sorted by their mean into :data:`PG_GROUPS` groups, and each group's level is Chen et al.'s PCA
    estimate, which leaves texture in the few large eigenvalues: a colour image's texture is alike in its
    channels and its noise is not, where the per-channel bins of the line fit let dark texture through as
    variance. Nelder-Mead on the logarithms of ``gain`` and ``sigma^2`` minimises the sum over the groups of
    the squared log-ratio of the measured level to the expected one, starting from the line fit.
    Returned unchanged when the line found no signal dependence (``gain`` 0: Gaussian noise, or none); a
    line whose intercept is 0 starts from a read noise of :data:`PG_REFINE_FLOOR`.
    """
    import numpy as np
    from scipy.optimize import minimize

    if gain <= 0:
        return gain, sigma
    sigma = max(sigma, PG_REFINE_FLOOR)
    grid = np.linspace(0.0, PG_LEVEL_TOP, PG_LEVEL_COUNT)
    levels = np.clip(_patch_matrix(item, patch).mean(axis=1), 0, PG_LEVEL_TOP)  # each patch's intensity

    def mismatch(logs: Any) -> float:
        g, s = float(np.exp(logs[0])), float(np.exp(logs[1] / 2))
        rows = _patch_matrix(_anscombe(item, g, s), patch)  # the same patches as ``levels``
        order = np.argsort(rows.mean(axis=1), kind="stable")
        expected = _stabilised_variance(grid, g, s)
        total = 0.0
        for group in np.array_split(order, PG_GROUPS):
            found = max(_sigma_from_patches(rows[group]), 1e-6)
            total += np.log(found / np.sqrt(np.mean(np.interp(levels[group], grid, expected)))) ** 2
        return float(total)

    best = minimize(mismatch, [np.log(gain), 2 * np.log(sigma)], method="Nelder-Mead",
                    options={"xatol": 0.01, "fatol": 1e-7, "maxiter": PG_REFINE_ITERATIONS})
    return float(np.exp(best.x[0])), float(np.exp(best.x[1] / 2))


#: Immerkaer's Laplacian mask: the second difference across and down, zero on any locally linear image.
_LAPLACIAN = ((1.0, -2.0, 1.0), (-2.0, 4.0, -2.0), (1.0, -2.0, 1.0))


def _ring_mean(channel: Any) -> Any:
    """Mean of each pixel's 7x7 neighbourhood without its 3x3 centre (reflect-padded): the local level, from
    pixels that the Laplacian at that pixel does not touch, so its noise is independent of the residual's."""
    from scipy.ndimage import uniform_filter

    return (uniform_filter(channel, 7, mode="reflect") * 49 - uniform_filter(channel, 3, mode="reflect") * 9) / 40


def _residual_fit(item: Any) -> tuple[float, float, float] | None:
    """``(gain, sigma, sigma_error)`` of a colour image (3, H, W) from Laplacian residuals across the local
    colour; ``None`` when the image is not a colour one or too few unclipped pixels remain.

    Each channel's Laplacian residual (Immerkaer, "Fast noise variance estimation", CVIU 1996) is zero on a
    locally linear image, and its noise has variance ``gain * m + 36 sigma^2``, where ``m`` is the
    mask's squared weights times the intensities: exactly, for any intensities, since the variance is
    affine in them, and ``m`` of the noisy image is unbiased. A photo's remaining texture is mostly shading,
    which scales the three channels alike, so it lies along the local colour (the 7x7 ring mean of
    :func:`_ring_mean`). The residual vectors are projected on the two directions across that colour, where
    shading leaves nothing and each projection's noise variance is still affine in the channels'
    intensities. The projections are sorted by their ring level (independent of their own noise, so the
    binning selects nothing of it) into :data:`RESIDUAL_BINS` bins, and a line is fitted to the bins' mean
    squared residual against their mean ``m`` by weighted least squares, weights ``1 / variance^2`` from
    the previous line (the bins are averages of many residuals, so the line has no errors-in-variables
    bias). Pixels whose 3x3 neighbourhood holds a value of exactly 0 or 1 (clipped) are left out.

    ``sigma_error`` is the fit's own relative standard error of ``sigma``: the weighted least squares'
    covariance scaled by the bins' scatter about the line (texture left in some bins widens it), halved from
    ``sigma^2`` to ``sigma``, times :data:`RESIDUAL_ERROR_SCALE`; infinite when the intercept is 0 or below.
    """
    import numpy as np
    from scipy.ndimage import convolve, maximum_filter

    if item.shape[0] != 3:
        return None
    mask = np.asarray(_LAPLACIAN)
    norm = float((mask**2).sum())
    residual = np.stack([convolve(c, mask, mode="reflect") for c in item])
    level = np.stack([convolve(c, mask**2 / norm, mode="reflect") for c in item])
    ring = np.clip(np.stack([_ring_mean(c) for c in item]), 1e-3, None)
    colour = ring / np.linalg.norm(ring, axis=0, keepdims=True)
    # A direction across the colour: never zero, since every channel of ``ring`` is at least 1e-3.
    across = np.cross(colour, np.array([0.0, 0.0, 1.0])[:, None, None], axis=0)
    across = across / np.linalg.norm(across, axis=0, keepdims=True)
    clipped = maximum_filter(((item == 0) | (item == 1)).any(axis=0), size=3, mode="nearest")
    inside = np.zeros_like(clipped)
    inside[1:-1, 1:-1] = True  # the reflect-padded border's residuals see mirrored, correlated noise
    valid = inside & ~clipped
    squares, means, order_by = [], [], []
    for direction in (across, np.cross(colour, across, axis=0)):
        squares.append(((direction * residual).sum(axis=0)[valid]) ** 2 / norm)
        means.append((direction**2 * level).sum(axis=0)[valid])
        order_by.append((direction**2 * ring).sum(axis=0)[valid])
    squares, means, order_by = (np.concatenate(v) for v in (squares, means, order_by))
    count = min(RESIDUAL_BINS, squares.size // RESIDUAL_PER_BIN)
    if count < 3:
        return None
    bins = np.array_split(np.argsort(order_by, kind="stable"), count)
    variance = np.array([squares[b].mean() for b in bins])
    mean = np.array([means[b].mean() for b in bins])
    floor = max(1e-6 * float(variance.max()), 1e-12)
    predicted = np.maximum(variance, floor)
    gain, offset = 0.0, float(np.median(variance))
    for _ in range(RESIDUAL_ROUNDS):
        weight = 1 / predicted**2
        normal = np.array([[np.sum(weight * mean * mean), np.sum(weight * mean)], [np.sum(weight * mean), np.sum(weight)]])
        gain, offset = np.linalg.lstsq(normal, [np.sum(weight * mean * variance), np.sum(weight * variance)], rcond=None)[0]
        predicted = np.maximum(gain * mean + offset, floor)
    scatter = float(np.sum(((variance - predicted) / predicted) ** 2)) / max(count - 2, 1)
    offset_sd = float(np.sqrt(max(np.linalg.pinv(normal)[1, 1] * scatter, 0.0)))
    sigma_error = RESIDUAL_ERROR_SCALE * offset_sd / (2 * offset) if offset > 0 else float("inf")
    return float(gain), float(np.sqrt(max(offset, 0.0))), float(sigma_error)


def _pg_estimate(item: Any, patch: int) -> tuple[float, float, tuple[float, float] | None, float | None]:
    """``(gain, sigma, fits, error)`` of one image: the stabilised line fit, and on colour images its geometric
    mean with :func:`_residual_fit`; ``fits`` holds the two read noises and ``error`` the residual fit's
    relative standard error of its read noise (both None where only the first fit is used).

    The two go wrong on different images (patch PCA and a pixel-level residual, texture removed by the
    colour in both but differently), so their mean scatters less than either: on the first 20 CBSD68 images
    at issue 14's six settings the read noise was within 15% on 104 of 120 image-settings against 93 and 100
    for each alone (``benchmarks/RESULTS.md``)."""
    import numpy as np

    gain, sigma = _stabilised_fit(item, *_pg_fit(item, patch), patch)
    residual = _residual_fit(item) if gain > 0 else None
    if residual is None or residual[0] <= 0 or residual[1] <= 0 or sigma <= 0:
        return gain, sigma, None, None
    return (float(np.sqrt(gain * residual[0])), float(np.sqrt(sigma * residual[1])), (sigma, residual[1]),
            residual[2])


#: ITU-R BT.601 luma weights (JPEG's Y): white noise of sigma in R, G, B leaves ``sigma * |LUMA|`` in Y.
LUMA = (0.299, 0.587, 0.114)
#: A colour estimate below this fraction of the luma one means the colour noise was removed (JPEG chroma).
CHROMA_STARVED = 0.5
#: Below this ratio of colour-difference to luma fine detail (:func:`_chroma_detail`) the chroma was subsampled.
CHROMA_DETAIL = 0.08


def _colour_checked(sigma: float, item: Any, patch: int) -> float:
    """The colour estimate, or the luma one when chroma subsampling (JPEG) has removed the colour noise.

    JPEG's 4:2:0 chroma subsampling smooths the colour-difference channels, so the smallest
    eigenvalues of RGB patches (Chen's noise eigenvalues) lose their noise and the colour estimate
    falls to a few per cent of the truth (measured: 3-11% at quality 30-100, ``benchmarks/RESULTS.md``).
    The luma channel keeps full resolution: its noise, from weak-texture patches (Liu et al.
    2013) and divided by ``|LUMA|`` = 0.669, replaces the colour estimate when the chroma has no
    fine detail left (:func:`_chroma_detail` under :data:`CHROMA_DETAIL`) and the colour estimate
    is below :data:`CHROMA_STARVED` of it. Gray images and other channel counts are unchanged.
    """
    import numpy as np

    if item.shape[0] != 3 or _chroma_detail(item) >= CHROMA_DETAIL:
        return sigma
    weights = np.asarray(LUMA)
    luma = np.tensordot(weights, item, axes=1)[None]
    from_luma = float(np.sqrt(_bin_variance(_patch_matrix(luma, patch), patch)) / np.linalg.norm(weights))
    return from_luma if sigma < CHROMA_STARVED * from_luma else sigma


def _chroma_detail(item: Any) -> float:
    """Finest-scale detail of the colour differences (JPEG's Cb, Cr) over the luma's: median |diagonal Haar|.

    White RGB noise gives about 0.9; a noisy image saved with 4:2:0 chroma subsampling under
    0.07 (measured on CBSD68 at quality 30-95), a noisy one without it 0.1 or more.
    """
    import numpy as np

    r, g, b = item[:, : item.shape[1] // 2 * 2, : item.shape[2] // 2 * 2]

    def haar(c: Any) -> float:
        return float(np.median(np.abs(c[0::2, 0::2] - c[0::2, 1::2] - c[1::2, 0::2] + c[1::2, 1::2])))

    luma = haar(0.299 * r + 0.587 * g + 0.114 * b)
    chroma = (haar(-0.1687 * r - 0.3313 * g + 0.5 * b) + haar(0.5 * r - 0.4187 * g - 0.0813 * b)) / 2
    return chroma / luma if luma > 0 else 0.0


def estimate_noise(image: Any, per_channel: bool = False, patch: int = PATCH, model: str = "gaussian") -> NoiseEstimate:
    """Estimate the noise of ``image``: a Gaussian sigma, or Poisson-Gaussian gain and sigma.

    Parameters
    ----------
    image : torch.Tensor or numpy.ndarray
        ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` values on the [0, 1] scale.
    per_channel : bool
        Also estimate each channel on its own (``NoiseEstimate.per_channel``; Gaussian model only).
    patch : int
        Patch side (at least 3, at most a third of the smaller image side).
    model : {"gaussian", "poisson-gaussian"}
        ``"gaussian"``: white noise of one sigma (Chen et al. 2015). ``"poisson-gaussian"``:
        variance ``gain * x + sigma^2`` (the line fit and its refinement, module docstring).

    Returns
    -------
    NoiseEstimate
        ``sigma`` on the [0, 1] scale (25/255 = 0.098), the mean over a batch; ``sigmas`` per image;
        for ``"poisson-gaussian"`` also ``gain`` and ``gains`` (``sigma`` is then the read noise).

    Raises
    ------
    restorekit.errors.InputError
        For an image too small for the patches, non-finite values, or values on the 0-255 scale.

    Examples
    --------
    >>> import torch
    >>> from restorekit.degrade import Noise
    >>> from skimage import data
    >>> x = torch.from_numpy(data.camera()[:256, :256] / 255.0)[None, None].float()
    >>> y = Noise(0.05).apply(x, seed=0)
    >>> round(estimate_noise(y).sigma, 2)
    0.05
    >>> from restorekit.degrade import PoissonGaussian
    >>> est = estimate_noise(PoissonGaussian(0.02, 0.02).apply(x, seed=0), model="poisson-gaussian")
    >>> round(est.gain, 2)
    0.02
    """
    import numpy as np

    from ..errors import InputError

    array = image.detach().to("cpu").double().numpy() if hasattr(image, "detach") else np.asarray(image, float)
    if array.ndim == 2:
        array = array[None, None]
    elif array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise InputError(f"estimate_noise needs an image (H, W), (C, H, W) or (N, C, H, W); got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError("estimate_noise: the image has NaN or infinite values; replace them first")
    if float(np.abs(array).max(initial=0.0)) > 3:
        raise InputError("estimate_noise: values beyond 3 look like the 0-255 scale; pass image / 255")
    if model not in ("gaussian", "poisson-gaussian"):
        raise InputError(f"estimate_noise: model must be 'gaussian' or 'poisson-gaussian', got {model!r}")
    patch = int(patch)
    if patch < 3 or min(array.shape[-2:]) < 3 * patch:
        raise InputError(f"estimate_noise needs an image of at least {3 * max(patch, 3)} pixels on a side for "
                         f"{max(patch, 3)}x{max(patch, 3)} patches; got {array.shape[-2]}x{array.shape[-1]}")
    if model == "poisson-gaussian":
        fits = [_pg_estimate(item, patch) for item in array]
        return NoiseEstimate(sigma=float(np.mean([f[1] for f in fits])), sigmas=tuple(f[1] for f in fits),
                             model=model, method=PG_METHOD, gain=float(np.mean([f[0] for f in fits])),
                             gains=tuple(f[0] for f in fits), read_noise_fits=tuple(f[2] for f in fits),
                             read_noise_errors=tuple(f[3] for f in fits))
    sigmas, channels = [], []
    for item in array:
        sigmas.append(_colour_checked(_sigma_from_patches(_patch_matrix(item, patch)), item, patch))
        if per_channel:
            channels.append(tuple(_sigma_from_patches(_patch_matrix(item[c:c + 1], patch))
                                  for c in range(item.shape[0])))
    return NoiseEstimate(sigma=float(np.mean(sigmas)), sigmas=tuple(sigmas),
                         per_channel=tuple(channels) if per_channel else None)


__all__ = ["NoiseEstimate", "estimate_noise"]
