"""The base of learned denoisers told the noise level (a sigma-map input), on the learned base.

A subclass of :class:`NoiseLevelDenoiser` builds a network with a
``denoise(x, sigma)`` method (``sigma``: one number per image, or a map); the
base decides the level and runs it. The level comes from, in this order:

1. the ``sigma`` parameter, when it is a number (``--param sigma=0.1``);
2. the degradation's noise: its per-pixel standard deviation when it has one
   (``degradation.sigma_map(image)``, e.g. Poisson-Gaussian noise), else its
   ``sigma`` (``Noise(0.1)``; ``restorekit restore --sigma 0.1``; what
   plug-and-play solvers hand it at every iteration), zero included;
3. with no degradation at all, an estimate from the image itself
   (:func:`estimate_noise_sigma`), so it also works as a blind denoiser.

**Low noise is safe.** At a noise level of at most :data:`LOW_NOISE`
(``low_noise_guard="auto"``, the default), the network's output ``f(y)`` is
blended with the input, ``y + alpha (f(y) - y)``, with the ``alpha`` in [0, 1]
that minimises Stein's unbiased risk estimate of the result's mean squared
error (:func:`sure_blend`; the divergence by one Monte-Carlo probe, Ramani,
Blu and Unser 2008). At sigma 0 that is the input itself, and measured on
scikit-image's photos no output falls below its input's PSNR at sigma 0.002-0.01,
where a denoiser otherwise removes texture it takes for noise
(``benchmarks/RESULTS.md``). It costs one more forward pass, only at those
levels.

**Self-ensemble.** ``ensemble=N`` (1, 2, 4 or 8) averages the network over
``N`` flips and quarter turns of the image (:mod:`restorekit.dihedral`), at
``N`` times the time: on CBSD68 about +0.1 dB for 2 and +0.15 for 4
(``benchmarks/RESULTS.md``). It applies when restoring, not to the forward
that :func:`restorekit.training.fit` trains.

**Precision.** ``precision=bfloat16`` runs the network under bfloat16
autocast when restoring above :data:`LOW_NOISE` (the low-noise guard's
Monte-Carlo probe needs float32 and keeps it): on a CPU that computes bfloat16
natively (AVX512-BF16, AMX-BF16) it is about 2x faster and at most about 0.01 dB
lower (0.001-0.008 dB on 20 CBSD68 images, ``benchmarks/RESULTS.md``); elsewhere bfloat16 is emulated and slower, and a
warning says so. The default is ``float32``.

Such a denoiser declares ``uses_noise_level = True``: ``pnp`` hands it the
level it wants at each iteration. Asking for more smoothing than the image
holds (a larger sigma) trades detail for smoothness. Weights, device, gray
images, tiling and the trained-range guard come from
:class:`restorekit.learned.LearnedRestorer`.

This module imports no torch at import time.
"""

from __future__ import annotations

import math
from typing import Any

from .learned import LearnedRestorer
from .restorer import Param

#: The largest sigma a denoiser accepts as a parameter ([0, 1] scale).
MAX_SIGMA = 1.0
#: Noise levels ([0, 1] scale) at and below which ``low_noise_guard="auto"`` blends by SURE.
LOW_NOISE = 0.02
#: Step of the Monte-Carlo divergence probe ([0, 1] scale).
PROBE_STEP = 1e-3


def parse_sigma(value: Any) -> float | str:
    """A noise sigma >= 0 on the [0, 1] scale, or ``"auto"`` (from the degradation or the image).

    Examples
    --------
    >>> parse_sigma("auto"), parse_sigma("0.1")
    ('auto', 0.1)
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool):
        raise ValueError("must be a number >= 0 on the [0, 1] scale, or 'auto'")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a finite number >= 0 on the [0, 1] scale, or 'auto'")
    if number > MAX_SIGMA:
        raise ValueError(f"{number:g} is above 1: sigmas are on the [0, 1] scale here; "
                         f"{number:g} on the 0-255 scale is {number / 255:.4g}")
    return number


def estimate_noise_sigma(image: Any) -> list[float]:
    """Per-image Gaussian noise sigma estimates of a batch (N, C, H, W), as a float list ([0, 1] scale).

    :func:`restorekit.estimate_noise` (PCA of patches, Chen et al. 2015) with
    patches of up to 7x7; images under 9 pixels on a side, too small for it,
    fall back to scikit-image's wavelet estimate.
    """
    side = min(image.shape[-2:])
    if side >= 9:
        from .estimate.noise import estimate_noise

        return list(estimate_noise(image, patch=min(7, side // 3)).sigmas)
    import numpy as np
    from skimage.restoration import estimate_sigma

    array = image.detach().to("cpu").float().numpy()
    return [float(np.mean(estimate_sigma(a, channel_axis=0))) for a in array]


def sure_blend(run: Any, y: Any, variance: Any, seed: int = 0) -> Any:
    """``y + alpha (run(y) - y)`` per image, ``alpha`` in [0, 1] minimising SURE of the mean squared error.

    For ``y = x + n`` with independent Gaussian noise of per-pixel variance
    ``v_i``, Stein's unbiased risk estimate of the squared error of the blend
    ``g = (1 - alpha) y + alpha f(y)`` is
    ``alpha^2 |f - y|^2 - sum v_i + 2 sum v_i ((1 - alpha) + alpha df_i/dy_i)``,
    smallest at ``alpha = sum v_i (1 - df_i/dy_i) / |f - y|^2``. The weighted
    divergence ``sum v_i df_i/dy_i`` is estimated by one Monte-Carlo probe
    ``b^T diag(v) (f(y + eps b) - f(y)) / eps`` with ``b`` standard normal
    (Ramani, Blu, Unser, "Monte-Carlo SURE", IEEE TIP 2008).

    Parameters
    ----------
    run : callable
        The denoiser, ``run(y) -> f(y)`` on a batch (N, C, H, W).
    y : torch.Tensor
        The noisy batch.
    variance : float or torch.Tensor
        The noise variance: a number, one per image ``(N,)``, or a map broadcastable to ``y``.
    seed : int
        Seed of the probe (the result is deterministic).

    Returns
    -------
    torch.Tensor
        The blend; where the variance is zero, ``y`` itself.

    Examples
    --------
    >>> import torch
    >>> y = torch.rand(2, 1, 32, 32)
    >>> smooth = lambda t: torch.nn.functional.avg_pool2d(t, 3, 1, 1, count_include_pad=False)
    >>> bool((sure_blend(smooth, y, 0.0) == y).all())   # no noise: the input back
    True
    """
    import torch

    variance = torch.as_tensor(variance, dtype=y.dtype, device=y.device)
    if variance.dim() == 1:
        variance = variance.reshape(-1, 1, 1, 1)
    variance = variance.expand_as(y)
    out = run(y)
    total = variance.flatten(1).sum(dim=1)
    if not bool((total > 0).any()):
        return y.clone()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    # One probe for every image of the batch: an image gets the same result alone or in a batch.
    probe = torch.randn((1, *y.shape[1:]), generator=generator, dtype=y.dtype).to(y.device).expand_as(y)
    moved = run(y + PROBE_STEP * probe)
    divergence = (probe * variance * (moved - out)).flatten(1).sum(dim=1) / PROBE_STEP
    residual = (out - y).flatten(1).pow(2).sum(dim=1)
    alpha = torch.where(residual > 0, (total - divergence) / residual.clamp_min(1e-30), torch.ones_like(total))
    alpha = torch.where(total > 0, alpha.clamp(0, 1), torch.zeros_like(alpha)).reshape(-1, 1, 1, 1)
    return y + alpha * (out - y)


def parse_guard(value: Any) -> str:
    """``low_noise_guard``: ``auto`` (SURE blend at sigma <= LOW_NOISE) or ``off``."""
    text = str(value).strip().lower()
    if text in ("auto", "on", "true", "1"):
        return "auto"
    if text in ("off", "false", "0", "none"):
        return "off"
    raise ValueError("must be 'auto' (blend with the input by SURE at low noise) or 'off'")


def low_noise_variance(levels: Any, guard: str) -> Any:
    """The variance to blend with (see :func:`sure_blend`), or None when the guard does not apply.

    ``levels``: one sigma per image (a list) or a per-pixel sigma map tensor.
    The guard applies when it is ``auto`` and the largest level is at most
    :data:`LOW_NOISE`.
    """
    if guard == "off" or levels is None:
        return None
    top = float(levels.max()) if hasattr(levels, "max") else max(levels)
    if top > LOW_NOISE:
        return None
    if hasattr(levels, "max"):
        return levels.pow(2)
    import torch

    return torch.tensor([float(s) ** 2 for s in levels])


def degradation_levels(degradation: Any, image: Any) -> Any:
    """The noise levels of ``degradation`` for the batch ``image``: a per-pixel map tensor, or one sigma per image.

    The map is ``degradation.sigma_map(image)`` when the degradation has one
    (Poisson-Gaussian noise, or a :class:`~restorekit.degrade.Noise` holding
    one level per image, as a training sampler draws it); otherwise its
    ``sigma``, repeated for each image, as a list.
    """
    sigma_map = getattr(degradation, "sigma_map", None)
    found = sigma_map(image) if callable(sigma_map) else None
    if found is not None:
        return found
    return [float(degradation.sigma)] * image.shape[0]


def pure_noise(degradation: Any) -> bool:
    """Whether ``degradation`` is noise alone (no blur, mask or downsampling): None counts as unknown noise."""
    if degradation is None:
        return True
    if getattr(degradation, "kernel", None) is not None or getattr(degradation, "mask", None) is not None:
        return False
    return int(getattr(degradation, "scale", 1) or 1) == 1


def guarded_restore(restore: Any, image: Any, degradation: Any, levels: Any, guard: str,
                    clip: bool = True) -> Any:
    """``restore(image)``, blended with ``image`` by :func:`sure_blend` when the noise is pure and low.

    The blend wraps the whole restoration (gray images through a colour
    network, tiles, clipping), so SURE sees the function the user gets; its
    result is clipped to [0, 1] again when ``clip`` (clipping toward the range
    of a clean image never adds error). ``levels``: one sigma per image or a
    map; a degradation with blur, a mask or downsampling leaves the output as
    it is (its noise is not what reaches a denoiser in a pipeline).
    """
    variance = low_noise_variance(levels, guard if pure_noise(degradation) else "off")
    if variance is None:
        return restore(image)
    import torch

    work = image if image.dtype in (torch.float32, torch.float64) else image.float()  # the probe needs precision
    out = sure_blend(restore, work, variance.to(work.device, work.dtype))
    return (out.clamp(0, 1) if clip else out).to(image.dtype)


#: The parameter every learned denoiser shares (the guard of :func:`sure_blend`).
GUARD_PARAM = Param("low_noise_guard", "auto", f"at noise sigma <= {LOW_NOISE}, blend the output with the input "
                    "by SURE so a clean or lightly noisy image is never made worse ('off': the raw network)",
                    parse=parse_guard, choices=("auto", "off"))

#: The self-ensemble every learned denoiser shares (:func:`restorekit.dihedral.average`).
ENSEMBLE_PARAM = Param("ensemble", 1, "average the network over this many flips/rotations of the image (1, 2, "
                       "4 or 8: the self-ensemble, DRUNet's x8), at that many times the time",
                       choices=(1, 2, 4, 8), low=1, high=8)


#: The network's arithmetic when restoring (float32, or bfloat16 autocast above LOW_NOISE).
PRECISION_PARAM = Param("precision", "float32", "arithmetic of the network when restoring: float32, or bfloat16 "
                        f"(autocast above sigma {LOW_NOISE}: about 2x faster where the CPU has AVX512-BF16 or "
                        "AMX-BF16, at most about 0.01 dB lower)", choices=("float32", "bfloat16"))


class NoiseLevelDenoiser(LearnedRestorer):
    """A learned denoiser whose network reads the noise level (see the module docstring).

    The network built by ``build_network`` must have ``denoise(x, sigma)``
    taking a tensor of one sigma per image (shape ``(N,)``) or a map
    ``(N, 1, H, W)``.
    """

    tasks = frozenset({"denoise"})
    uses_noise_level = True
    #: It reads a per-pixel noise map (``degradation.sigma_map``), so Poisson-Gaussian noise needs no transform.
    reads_noise_map = True
    params = (Param("sigma", "auto", "noise sigma on the [0, 1] scale ('auto': the degradation's, "
                    "else estimated from the image)", parse=parse_sigma, high=1.0), GUARD_PARAM, ENSEMBLE_PARAM,
              PRECISION_PARAM)
    _levels: Any = None  # the batch's levels while restore runs: a list of floats or a map tensor
    _bf16_warned = False  # the emulated-bfloat16 warning, once per instance

    def noise_levels(self, image: Any, degradation: Any) -> Any:
        """One sigma per image (a list), or a per-pixel map tensor, by the module docstring's rules."""
        given = self.config["sigma"]
        if given != "auto":
            return [float(given)] * image.shape[0]
        if degradation is not None:
            sigma_map = getattr(degradation, "sigma_map", None)
            found = sigma_map(image) if callable(sigma_map) else None
            if found is not None:  # None: one sigma everywhere
                return found
            return [float(degradation.sigma)] * image.shape[0]
        return estimate_noise_sigma(image)

    def restore(self, image: Any, degradation: Any = None) -> Any:
        from .degrade import Noise

        levels = self.noise_levels(image, degradation)
        told = degradation
        if degradation is None or self.config["sigma"] != "auto":
            top = float(levels.max()) if hasattr(levels, "max") else max(levels)
            degradation = Noise(top)  # what the trained-range guard reads

        def run(batch: Any) -> Any:
            self._levels = levels
            try:
                return LearnedRestorer.restore(self, batch, degradation)
            finally:
                self._levels = None

        return guarded_restore(run, image, told if self.config["sigma"] == "auto" else None, levels,
                               self.config["low_noise_guard"], clip=self.clip_output)

    def run_network(self, net: Any, x: Any, degradation: Any) -> Any:
        import torch

        levels = self._levels
        if isinstance(levels, torch.Tensor):  # a per-pixel map: the tile's piece of it when tiling
            sigma = levels.to(x.device, x.dtype)
            if sigma.shape[-2:] != x.shape[-2:]:
                sigma = self._map_piece(sigma, x)
            if sigma.dim() == 4 and sigma.shape[1] != 1:
                sigma = sigma.mean(dim=1, keepdim=True)
        else:
            if levels is None or len(levels) != x.shape[0]:  # called by forward (training): the degradation's
                found = degradation_levels(degradation, x)
                if isinstance(found, torch.Tensor):
                    return net.denoise(x, found.to(x.device, x.dtype).mean(dim=1, keepdim=True))
                levels = found
            sigma = torch.tensor(levels, dtype=x.dtype, device=x.device)
        from .dihedral import average

        # The self-ensemble and the precision apply when restoring (self._levels set), not to the forward
        # that fit trains.
        restoring = self._levels is not None
        size = int(self.config.get("ensemble", 1)) if restoring else 1
        if restoring and self._bfloat16(x, sigma):
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return average(net.denoise, x, size, sigma).to(x.dtype)
        return average(net.denoise, x, size, sigma)

    def _bfloat16(self, x: Any, sigma: Any) -> bool:
        """Whether this call runs under bfloat16 autocast: asked for, float32 input, above :data:`LOW_NOISE`."""
        import torch

        if self.config.get("precision", "float32") != "bfloat16" or x.dtype != torch.float32:
            return False
        if float(sigma.max()) <= LOW_NOISE:  # the guard's divergence probe (PROBE_STEP) needs float32
            return False
        if x.device.type == "cpu" and not self._bf16_warned:
            self._bf16_warned = True
            from .training.machine import cpu_has_native_bf16

            if not cpu_has_native_bf16():
                import warnings

                from .errors import RestorekitWarning

                warnings.warn(f"{self.name}: precision=bfloat16 on a CPU without AVX512-BF16 or AMX-BF16: bfloat16 "
                              "is emulated there and slower than float32; use precision=float32 (the default)",
                              RestorekitWarning, stacklevel=2)
        return True

    def _map_piece(self, sigma: Any, x: Any) -> Any:
        """A map that does not match the piece being run (a tile, when tiling): its mean level, per image.

        The tiling runs pieces of the image without their coordinates, so the
        matching piece of a per-pixel map cannot be cut here: a large image
        with a per-pixel noise map is denoised at the map's mean level per
        image when it is tiled. Give enough ``max_memory`` to run it whole.
        """
        return sigma.flatten(1).mean(dim=1)
