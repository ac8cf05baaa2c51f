"""The ``pnp`` restorer: a registered denoiser inside an HQS or ADMM solver.

The denoiser is checked and built when ``pnp`` is built (so a bad
``denoiser=`` fails before any image is read): it must be a registered
restorer for the task ``denoise``, not a pipeline and not ``pnp`` itself.
The measurement decides the task: a degradation that downsamples
(``degradation.scale > 1``) is super-resolution, one with a mask is
inpainting, any other (a blur) deblurring. The start ``x_0`` is the
measurement itself for deblurring, the observed pixels with the holes filled
by normalised Gaussian averaging of their observed neighbours for inpainting
(:func:`fill_holes`), and a bicubic upsampling (``align_corners=False``, which
puts each low-resolution pixel back on the block it was averaged from under
the default bicubic ``Downsample``) for super-resolution. Everything stays on the input's device; a denoiser taking
a ``device`` parameter is built once more for a non-CPU input's device.
"""

from __future__ import annotations

import sys
import warnings

import torch
import torch.nn.functional as F

import restorekit
from restorekit.degrade import Noise
from restorekit.errors import InputError, ParameterError, RestorekitWarning, UnknownRestorerError
from restorekit.restorer import Pipeline, Restorer

from . import TASKS, ensemble, schedule, solvers
from .params import DEFAULT_ITERATIONS, PARAMS, SUMMARY


def _denoiser_spec(name: str, owner: str):
    """The registered spec of the denoiser ``name``, or a one-line :class:`ParameterError`."""
    hint = "name a denoiser, e.g. denoiser=dncnn ('restorekit list' shows those for the task denoise)"
    if name == owner:
        raise ParameterError(f"{owner!r} cannot use itself as its denoiser; {hint}")
    specs = {s.name: s for s in restorekit.list_restorers()}
    if name not in specs and "+" in name:
        raise ParameterError(f"denoiser={name!r} is a pipeline; {owner!r} needs a single denoiser: {hint}")
    if name not in specs:
        try:
            restorekit.create(name)
        except UnknownRestorerError as exc:
            raise ParameterError(f"parameter 'denoiser' of {owner!r}: {exc}") from None
        raise ParameterError(f"denoiser={name!r} is not a registered restorer; {hint}")
    spec = specs[name]
    if spec.is_pipeline:
        raise ParameterError(f"denoiser={name!r} is a pipeline; {owner!r} needs a single denoiser: {hint}")
    if "denoise" not in spec.tasks:
        denoisers = ", ".join(s.name for s in specs.values() if "denoise" in s.tasks and not s.is_pipeline)
        raise ParameterError(f"denoiser={name!r} restores {', '.join(sorted(spec.tasks))}, not denoise; "
                             f"choose one of: {denoisers or 'none installed'}")
    return spec


class PnPRestorer(Restorer):
    """Plug-and-play restoration: HQS or ADMM with any registered denoiser as the prior."""

    name = "pnp"
    tasks = TASKS
    params = PARAMS
    summary = SUMMARY
    needs_degradation = True

    def __init__(self, **params) -> None:
        super().__init__(**params)
        name = self.config["denoiser"]
        self._spec = _denoiser_spec(name, self.name)
        self.denoiser = restorekit.create(name)
        if isinstance(self.denoiser, (Pipeline, PnPRestorer)):
            raise ParameterError(f"denoiser={name!r} builds a {type(self.denoiser).__name__}; "
                                 f"{self.name!r} needs a single denoiser such as dncnn")
        self._by_device: dict[str, Restorer] = {}
        # What the denoiser takes, pnp takes (read by restorekit.testing.check_restorer).
        self.channels = tuple(getattr(self.denoiser, "channels", Restorer.channels))
        self.min_size = int(getattr(self.denoiser, "min_size", 1))
        self._warn_blind = not getattr(self.denoiser, "uses_noise_level", False)

    # ------------------------------------------------------------------ pieces
    def denoiser_for(self, device: torch.device) -> Restorer:
        """The denoiser to call for tensors on ``device`` (built there once when it takes ``device``)."""
        if device.type == "cpu" or not any(p.name == "device" for p in self._spec.params):
            return self.denoiser
        key = str(device)
        if key not in self._by_device:
            self._by_device[key] = restorekit.create(self.config["denoiser"], device=key)
        return self._by_device[key]

    def task_of(self, degradation) -> str:
        """``"superresolve"``, ``"inpaint"`` or ``"deblur"``: what ``degradation`` asks of pnp."""
        if int(getattr(degradation, "scale", 1)) > 1:
            return "superresolve"
        return "inpaint" if getattr(degradation, "mask", None) is not None else "deblur"

    def schedule(self, degradation, task: str) -> tuple[list[float], list[float]]:
        """The denoiser levels ``sigma_k`` and penalties ``rho_k`` of every iteration."""
        count = self.config["iterations"] or DEFAULT_ITERATIONS[task]
        sigma = float(degradation.sigma)
        end = self.config["sigma_end"]
        if end == "auto":
            end = schedule.end_level(sigma, int(getattr(degradation, "scale", 1)))
        levels = schedule.noise_levels(count, self.config["sigma_start"], end)
        return levels, schedule.penalties(levels, sigma, self.config["rho"])

    def start(self, y: torch.Tensor, degradation, task: str) -> torch.Tensor:
        """The first estimate ``x_0`` (see the module docstring)."""
        if task == "superresolve":
            scale = int(degradation.scale)
            return F.interpolate(y, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
        if task == "inpaint":
            return fill_holes(y, observed_pixels(degradation, y))
        return y

    # ------------------------------------------------------------------ restore
    def restore(self, image: torch.Tensor, degradation=None) -> torch.Tensor:
        if degradation is None or not hasattr(degradation, "prox"):
            raise InputError(
                "'pnp' needs the degradation (its blur kernel, mask or scale) for its data step; pass one, e.g. "
                "Compose(Blur(load_kernel('levin:1')), Noise(0.01)), or --kernel/--mask/--scale on the command line")
        if self._warn_blind:  # once per instance, on its first use (where the CLI shows warnings on one line)
            self._warn_blind = False
            warnings.warn(
                f"pnp: denoiser {self.config['denoiser']!r} is blind (it does not declare that it reads the noise "
                "level), so it cannot follow the noise-level schedule; a noise-level-aware denoiser usually "
                "restores better", RestorekitWarning, stacklevel=3)
        task = self.task_of(degradation)
        y = image if image.dtype in (torch.float32, torch.float64) else image.float()
        levels, rhos = self.schedule(degradation, task)
        denoiser = self.denoiser_for(y.device)
        use_ensemble = self.config["ensemble"]

        def data_step(v: torch.Tensor, rho: float) -> torch.Tensor:
            return degradation.prox(y, v, rho)

        def denoise(v: torch.Tensor, k: int) -> torch.Tensor:
            v = v.clamp(0, 1)
            if use_ensemble:
                return ensemble.untransform(denoiser(ensemble.transform(v, k), Noise(levels[k])), k)
            return denoiser(v, Noise(levels[k]))

        x0 = self.start(y, degradation, task)
        solve = solvers.solver(self.config["solver"])
        out = solve(data_step, denoise, x0, rhos, steps=self._steps(len(rhos), task))
        return out.clamp(0, 1).to(image.dtype)

    def _steps(self, count: int, task: str):
        show = self.config["progress"]
        if show is False:
            return range(count)
        from tqdm.auto import tqdm

        return tqdm(range(count), desc=f"pnp {task}", unit="it", leave=False, file=sys.stderr,
                    disable=None if show == "auto" else False)


def observed_pixels(degradation, like: torch.Tensor) -> torch.Tensor:
    """The degradation's mask (1 = observed) broadcast to ``like``; refuses a mask hiding every pixel."""
    mask = degradation.mask.to(device=like.device, dtype=like.dtype)
    try:
        observed = torch.broadcast_to(mask, like.shape)
    except RuntimeError:
        raise InputError(f"the mask of shape {tuple(mask.shape)} does not fit the image batch {tuple(like.shape)}: "
                         "it must have the image's height and width") from None
    seen = observed.flatten(1).sum(dim=1)
    if bool((seen == 0).any()):
        first = int((seen == 0).nonzero()[0])
        raise InputError(f"the mask hides every pixel of image {first} of the batch; 'pnp' needs observed pixels "
                         "to restore from (mask: 1 = observed, 0 = missing)")
    return observed


def fill_holes(y: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """``y`` with its missing pixels filled by normalised Gaussian averaging of the observed ones.

    Each hole gets ``(G * (m y)) / (G * m)`` (``m`` the observed indicator, ``G`` a
    Gaussian), with the narrowest width of 1, 2, 4, ... pixels whose window holds
    observed pixels (weight above 1e-3); a hole wider than every window gets its
    channel's observed mean. Observed pixels are kept as they are.
    """
    counts = observed.sum(dim=(-2, -1), keepdim=True)
    means = (y * observed).sum(dim=(-2, -1), keepdim=True) / counts.clamp_min(1)
    filled = observed * y + (1 - observed) * torch.where(counts > 0, means, torch.full_like(means, 0.5))
    todo = observed < 0.5
    width = 1.0
    while bool(todo.any()) and width <= max(y.shape[-2:]) / 4:
        values, weight = _gaussian_blur(y * observed, width), _gaussian_blur(observed, width)
        ok = todo & (weight > 1e-3)
        filled = torch.where(ok, values / weight.clamp_min(1e-3), filled)
        todo = todo & ~ok
        width *= 2
    return filled


def _gaussian_blur(x: torch.Tensor, width: float) -> torch.Tensor:
    """Separable Gaussian blur of standard deviation ``width`` pixels, zero outside the image."""
    radius = int(3 * width)
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    g = torch.exp(-taps**2 / (2 * width**2))
    g = g / g.sum()
    c = x.shape[1]
    flat = x
    flat = F.conv2d(flat, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return F.conv2d(flat, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)
