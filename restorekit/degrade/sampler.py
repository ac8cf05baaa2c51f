"""Training degradations drawn per sample: ``y, degradation = sampler(x, generator)``.

A :class:`DegradationSampler` is how a learned restorer's training inputs are
made, with the operators restoration itself uses (:class:`Blur`,
:class:`Downsample`, :class:`Mask`, :class:`Noise`): for a batch of clean
images it draws each sample's noise level (uniform in a range, with an
optional share of low levels), one blur kernel from a list, a mask, and
applies them as one :class:`Degradation` (its :class:`Noise` holds one level
per image, or a per-pixel map for a ``map_share`` of the samples: see
below). The degradation goes to the restorer's forward with ``y``, so a
network told the noise level reads it exactly as it does when restoring.

It also says what it draws, as a sidecar's ``trained_for``
(:attr:`DegradationSampler.trained_for`), which the learned restorers' guard
reads; :func:`restorekit.weights.export` records it.

Per-pixel noise maps (``map_share``): a network that reads a noise-level map
(``drunet``) is restored with maps that vary over the image, e.g. the
signal-dependent map of :class:`PoissonGaussian` noise, or pnp's inpainting
map (the level on the missing pixels, 0 on the observed ones). A network
trained on uniform maps alone has never seen one. For that share of the
samples the drawn level ``s`` becomes a map of one of two kinds, half each:
*mask*, ``s`` on a random share (uniform in [0.1, 0.9]) of the pixels and 0
on the rest; *signal*, ``s * sqrt(t * v / mean(v) + 1 - t)`` with ``v`` the
clean image's channel mean and ``t`` uniform in [0, 1] (shot noise's
variance grows with the intensity; the mean variance stays about ``s^2``).

Gray samples: a sample whose channels are all equal (a gray image repeated
into three channels for a colour network) gets the same noise in every
channel, as a gray photo repeated into the channels reaches the network when
it is restored.

Examples
--------
>>> import torch
>>> from restorekit.degrade import DegradationSampler
>>> sampler = DegradationSampler(sigma_range=(0.0, 0.2), low_fraction=0.1, low_sigma=0.01)
>>> x = torch.rand(4, 3, 16, 16)
>>> y, degradation = sampler(x, torch.Generator().manual_seed(0))
>>> y.shape, degradation.levels.shape
(torch.Size([4, 3, 16, 16]), torch.Size([4]))
>>> sampler.trained_for["noise_sigma_range"], sampler.trained_for["tasks"]
([0.0, 0.2], ['denoise'])
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..checks import check_batch, check_sigma
from ..errors import InputError
from .base import Degradation
from .blur import Blur, check_kernel, kernel_sha256
from .compose import Compose
from .downsample import Downsample, check_scale
from .mask import Mask
from .noise import Noise


class DegradationSampler:
    """Draw a degradation for every sample of a batch and apply it with restorekit's operators.

    Parameters
    ----------
    sigma : float, optional
        A fixed noise level for every sample ([0, 1] scale; validation uses one).
    sigma_range : (float, float), optional
        Noise level drawn uniformly per sample in ``[low, high]``. Give
        ``sigma`` or ``sigma_range``, not both; neither means no noise.
    low_fraction : float
        Share of samples whose level is drawn uniformly in ``[0, low_sigma]``
        instead (so a network learns to leave clean images alone).
    low_sigma : float
        Upper end of those low levels.
    kernels : array_like or sequence of array_like, optional
        A blur kernel, or several: each batch is blurred by one of them drawn
        at random (with ``scale`` > 1, the blur before decimation).
    boundary : {"circular", "reflect"}
        Border model of the blur or downsampling.
    mask : str or float, optional
        ``"lower-half"``, ``"random:FRACTION"``, ``"random:LOW-HIGH"`` (each
        sample's missing fraction drawn uniformly in ``[LOW, HIGH]``) or a
        missing fraction: each sample's mask (a random one drawn per sample).
    scale : int
        Downsampling factor (1: none).
    tasks : sequence of str, optional
        The tasks recorded in :attr:`trained_for` (default: those of the
        degradations drawn, e.g. ``deblur`` and ``denoise``).
    map_share : float
        Share of the noisy samples whose level is a per-pixel map (kinds
        *mask* and *signal*, see the module docstring) instead of one number.
    """

    def __init__(self, sigma: float | None = None, sigma_range: Sequence[float] | None = None,
                 low_fraction: float = 0.0, low_sigma: float = 0.0, kernels: Any = None,
                 boundary: str = "circular", mask: str | float | None = None, scale: int = 1,
                 tasks: Sequence[str] | None = None, map_share: float = 0.0) -> None:
        if sigma is not None and sigma_range is not None:
            raise InputError("give a fixed noise sigma or a sigma range (low, high), not both")
        if sigma_range is not None:
            if len(tuple(sigma_range)) != 2:
                raise InputError(f"the sigma range must be two numbers (low, high), got {sigma_range!r}")
            low, high = (check_sigma(v, "noise sigma") for v in sigma_range)
            if low > high:
                raise InputError(f"noise sigma range must satisfy low <= high on the [0, 1] scale, got {low}, {high}")
        else:
            low = high = check_sigma(sigma, "noise sigma") if sigma is not None else 0.0
        if not 0 <= float(low_fraction) < 1:
            raise InputError(f"the share of low noise levels must be in [0, 1), got {low_fraction}")
        self.low, self.high = float(low), float(high)
        self.low_fraction = float(low_fraction)
        self.low_sigma = check_sigma(low_sigma, "low noise sigma") if self.low_fraction else 0.0
        if kernels is None:
            self.kernels: list[torch.Tensor] = []
        elif isinstance(kernels, (list, tuple)) and kernels and not isinstance(kernels[0], (int, float)):
            self.kernels = [check_kernel(k, "blur kernel") for k in kernels]
        else:
            self.kernels = [check_kernel(kernels, "blur kernel")]
        self.boundary = boundary
        self.scale = 1 if scale in (1, None) else check_scale(scale)
        self.mask = _mask_fraction(mask)
        self.mask_spec = None if mask is None else str(mask)
        self._tasks = tuple(tasks) if tasks is not None else None
        if isinstance(map_share, bool) or not isinstance(map_share, (int, float)) or not 0 <= float(map_share) < 1:
            raise InputError(f"the share of per-pixel noise maps must be a number in [0, 1), got {map_share!r}")
        self.map_share = float(map_share)
        if self.map_share and self.scale > 1:
            raise InputError("per-pixel noise maps (map_share) are drawn at the clean image's size; they do not "
                             "combine with downsampling (scale > 1): leave map_share at 0")

    # ------------------------------------------------------------------ drawing
    def draw_sigmas(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` noise levels: uniform in the range, a ``low_fraction`` share uniform in ``[0, low_sigma]``."""
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        sigmas = self.low + (self.high - self.low) * u
        if self.low_fraction:
            low = torch.rand(n, generator=generator, dtype=torch.float64) < self.low_fraction
            sigmas = torch.where(low, u * self.low_sigma, sigmas)
        return sigmas

    def draw_maps(self, x: torch.Tensor, sigmas: torch.Tensor, generator: torch.Generator | None = None
                  ) -> torch.Tensor:
        """The levels ``sigmas`` (N,), a ``map_share`` of them made per-pixel maps: ``(N, 1, H, W)`` float64.

        Kinds, half each: *mask* (``s`` on a random 10-90% of the pixels, 0
        elsewhere) and *signal* (``s * sqrt(t v / mean(v) + 1 - t)``, ``v`` the
        clean image ``x``'s channel mean, ``t`` uniform in [0, 1]).
        """
        n, _, h, w = x.shape
        levels = sigmas.reshape(n, 1, 1, 1).expand(n, 1, h, w).clone()
        chosen = torch.rand(n, generator=generator, dtype=torch.float64) < self.map_share
        kind = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
        share = 0.1 + 0.8 * torch.rand(n, generator=generator, dtype=torch.float64)
        t = torch.rand(n, generator=generator, dtype=torch.float64)
        u = torch.rand(n, 1, h, w, generator=generator, dtype=torch.float64)
        v = x.detach().to("cpu", torch.float64).mean(dim=1, keepdim=True).clamp(min=0)
        per = (-1, 1, 1, 1)
        masked = (chosen & kind).reshape(per)  # mask: noise on a random share of the pixels only
        levels = torch.where(masked & (u >= share.reshape(per)), torch.zeros_like(levels), levels)
        # signal-dependent: variance linear in the intensity, mean variance about s^2
        ratio = v / v.flatten(1).mean(dim=1).clamp(min=1e-3).reshape(per)
        t = t.reshape(per)
        levels = torch.where((chosen & ~kind).reshape(per), levels * (t * ratio + 1 - t).sqrt(), levels)
        return levels.clamp(max=1.0)

    def operators(self, x: torch.Tensor, generator: torch.Generator | None = None) -> list[Degradation]:
        """The linear parts for the batch ``x`` (blur or downsampling, then the mask), drawn from ``generator``."""
        parts: list[Degradation] = []
        kernel = None
        if self.kernels:
            pick = int(torch.randint(0, len(self.kernels), (1,), generator=generator)) if len(self.kernels) > 1 else 0
            kernel = self.kernels[pick]
        if self.scale > 1:
            parts.append(Downsample(self.scale, kernel, self.boundary))
        elif kernel is not None:
            parts.append(Blur(kernel, self.boundary))
        if self.mask is not None:
            n, _, h, w = x.shape
            h, w = h // self.scale, w // self.scale
            if self.mask == "lower-half":
                parts.append(Mask.lower_half(h, w))
            elif isinstance(self.mask, tuple):  # a missing fraction per sample, uniform in the range
                low, high = self.mask
                fraction = low + (high - low) * torch.rand(n, 1, 1, 1, generator=generator)
                parts.append(Mask(torch.rand(n, 1, h, w, generator=generator) >= fraction))
            else:
                parts.append(Mask(torch.rand(n, 1, h, w, generator=generator) >= self.mask))
        return parts

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, Degradation]:
        """``(y, degradation)`` for the clean batch ``x`` (N, C, H, W): ``y = degradation.apply(x)``.

        The noise is drawn on the CPU from ``generator`` (same values on every
        device); ``degradation`` holds one noise level per sample.
        """
        check_batch(x, "degradation sampler")
        parts = self.operators(x, generator)
        noisy = self.high > 0 or (self.low_fraction > 0 and self.low_sigma > 0)
        if noisy:
            sigmas = self.draw_sigmas(x.shape[0], generator)
            parts.append(Noise(self.draw_maps(x, sigmas, generator) if self.map_share else sigmas))
        degradation = parts[0] if len(parts) == 1 else Compose(*parts)
        y = degradation.apply(x, generator=generator)
        if x.shape[1] > 1 and noisy:
            gray = (x == x[:, :1]).flatten(1).all(dim=1)
            if bool(gray.any()):  # a gray image repeated into the channels: its noise is repeated too
                y = torch.where(gray.reshape(-1, 1, 1, 1), y[:, :1].expand_as(y), y)
        return y, degradation

    # ------------------------------------------------------------------ what it was trained for
    @property
    def tasks(self) -> list[str]:
        """The restoration tasks of the degradations drawn (or those given)."""
        if self._tasks is not None:
            return sorted(self._tasks)
        tasks = set()
        if self.high > 0 or self.low_fraction:
            tasks.add("denoise")
        if self.kernels and self.scale == 1:
            tasks.add("deblur")
        if self.scale > 1:
            tasks.add("superresolve")
        if self.mask is not None:
            tasks.add("inpaint")
        return sorted(tasks)

    @property
    def noise_sigma_range(self) -> list[float]:
        """``[lowest, highest]`` noise level drawn."""
        low = min(self.low, 0.0) if self.low_fraction else self.low
        return [low, self.high]

    @property
    def trained_for(self) -> dict:
        """The sidecar's ``trained_for``: tasks, blur kernel SHA-256 (or None), noise range, and the rest drawn."""
        found: dict[str, Any] = {"tasks": self.tasks,
                                 "kernel_sha256": kernel_sha256(self.kernels[0]) if len(self.kernels) == 1 else None,
                                 "noise_sigma_range": self.noise_sigma_range}
        if len(self.kernels) > 1:
            found["kernel_sha256_set"] = [kernel_sha256(k) for k in self.kernels]
        if self.low_fraction:
            found["low_noise_share"] = self.low_fraction
            found["low_noise_sigma_max"] = self.low_sigma
        if self.scale > 1:
            found["scale"] = self.scale
        if self.kernels or self.scale > 1:
            found["boundary"] = self.boundary
        if self.mask_spec is not None:
            found["mask"] = self.mask_spec
        if self.map_share:
            found["noise_maps"] = {"share": self.map_share, "kinds": ["mask", "signal"]}
        return found

    def describe(self) -> dict:
        """What :attr:`trained_for` says, for logs."""
        return dict(self.trained_for)

    def __repr__(self) -> str:
        return f"DegradationSampler({self.describe()})"


def _mask_fraction(mask: Any) -> str | float | tuple[float, float] | None:
    """``None``, ``"lower-half"``, a missing fraction, or a ``(low, high)`` range of them (``random:LOW-HIGH``)."""
    if mask is None:
        return None
    usage = "use 'lower-half', 'random:FRACTION' (e.g. random:0.5) or 'random:LOW-HIGH' (e.g. random:0.5-0.9)"
    if isinstance(mask, str):
        if mask == "lower-half":
            return mask
        kind, _, value = mask.partition(":")
        low, dash, high = value.partition("-")
        try:
            values = (float(low), float(high)) if dash and kind == "random" else (float(value),)
        except ValueError:
            values = ()
        if kind != "random" or not values:
            raise InputError(f"unknown training mask {mask!r}; {usage}")
        for fraction in values:
            if not 0 <= fraction < 1:
                raise InputError(f"the missing fraction of a training mask must be in [0, 1), got {fraction}")
        if len(values) == 2:
            if values[0] > values[1]:
                raise InputError(f"training mask {mask!r}: the range must be LOW-HIGH with LOW <= HIGH; {usage}")
            return values
        return values[0]
    fraction = float(mask)
    if not 0 <= fraction < 1:
        raise InputError(f"the missing fraction of a training mask must be in [0, 1), got {fraction}")
    return fraction


class SamplerMixture:
    """Several :class:`DegradationSampler` s, one drawn per batch with the given shares.

    ``y, degradation = mixture(x, generator)``: the generator first draws which
    sampler degrades this batch, then that sampler draws the rest. A restorer
    trained through :func:`restorekit.training.fit` on a mixture learns every
    part's task (e.g. Gaussian denoising with the denoiser alone and inpainting
    through ``pnp``'s solver: ``PnPRestorer.forward``).

    Parameters
    ----------
    parts : sequence of (float, DegradationSampler)
        Each sampler with its share of the batches (normalised to sum to 1).

    Examples
    --------
    >>> import torch
    >>> from restorekit.degrade import DegradationSampler, SamplerMixture
    >>> mix = SamplerMixture([(0.5, DegradationSampler(sigma_range=(0, 0.2))),
    ...                       (0.5, DegradationSampler(mask="random:0.5-0.9"))])
    >>> mix.trained_for["tasks"]
    ['denoise', 'inpaint']
    """

    def __init__(self, parts: Sequence[tuple[float, "DegradationSampler"]]) -> None:
        parts = list(parts)
        if not parts or any(not isinstance(p, DegradationSampler) for _, p in parts):
            raise InputError("a sampler mixture needs (share, DegradationSampler) pairs, at least one")
        shares = [float(w) for w, _ in parts]
        if any(not w >= 0 for w in shares) or sum(shares) <= 0:
            raise InputError(f"the shares of a sampler mixture must be >= 0 and not all 0, got {shares}")
        total = sum(shares)
        self.parts = [(w / total, p) for w, p in zip(shares, (p for _, p in parts))]

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, Degradation]:
        """``(y, degradation)`` from the sampler drawn for this batch (see :meth:`DegradationSampler.__call__`)."""
        u = float(torch.rand(1, generator=generator, dtype=torch.float64))
        edge = 0.0
        for share, sampler in self.parts:
            edge += share
            if u < edge:
                return sampler(x, generator)
        return self.parts[-1][1](x, generator)

    @property
    def trained_for(self) -> dict:
        """The parts' ``trained_for`` merged: every task, the noise range and low-noise share of the noisy parts
        (the guard's), the mask, and each part with its share under ``mixture``."""
        merged: dict[str, Any] = {"tasks": sorted({t for _, p in self.parts for t in p.tasks}),
                                  "kernel_sha256": None}
        noisy = [p for _, p in self.parts if p.high > 0 or p.low_fraction]
        if noisy:
            merged["noise_sigma_range"] = [min(p.noise_sigma_range[0] for p in noisy),
                                           max(p.noise_sigma_range[1] for p in noisy)]
            for key in ("low_noise_share", "low_noise_sigma_max", "noise_maps"):
                found = [p.trained_for[key] for p in noisy if key in p.trained_for]
                if found:
                    merged[key] = found[0]
        else:
            merged["noise_sigma_range"] = [0.0, 0.0]
        masks = [p.mask_spec for _, p in self.parts if p.mask_spec is not None]
        if masks:
            merged["mask"] = masks[0]
        merged["mixture"] = [{"share": round(w, 6), **p.trained_for} for w, p in self.parts]
        return merged

    def describe(self) -> dict:
        return dict(self.trained_for)

    def __repr__(self) -> str:
        return f"SamplerMixture({self.describe()})"


__all__ = ["DegradationSampler", "SamplerMixture"]
