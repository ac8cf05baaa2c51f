"""The ``pnp`` restorer: a registered denoiser inside an HQS or ADMM solver.

The denoiser is checked and built when ``pnp`` is built (so a bad
``denoiser=`` fails before any image is read): it must be a registered
restorer for the task ``denoise``, not a pipeline and not ``pnp`` itself.
The measurement decides the task: a degradation that downsamples
(``degradation.scale > 1``) is super-resolution, one with a mask is
inpainting, any other (a blur) deblurring, and with ``solver=auto`` (the
default) the task picks the splitting (:data:`DEFAULT_SOLVER`): HQS for
deblurring, ADMM for inpainting and super-resolution, whose dual keeps feeding
back what the denoiser's output misses of the measurement. The start ``x_0`` is the
measurement itself for deblurring, the biharmonic fill of the holes for inpainting
(:func:`biharmonic_fill`), and a bicubic upsampling (``align_corners=False``, which
puts each low-resolution pixel back on the block it was averaged from under
the default bicubic ``Downsample``) for super-resolution. Everything stays on
the input's device; a denoiser taking a ``device`` parameter is built once
more for a non-CPU input's device.

The denoiser is found in the registry that builds ``pnp`` (it passes itself
as ``registry``), so a private :class:`~restorekit.registry.Registry` with its
own denoisers works without touching the process-wide one. ``tile`` and
``max_memory`` go to the denoiser when it takes them (``--tile`` for one that
does not is refused); ``max_memory`` also bounds the data step, which works
on the whole image and cannot be tiled (:meth:`PnPRestorer.check_memory`). On
the reflect border the data step runs at most ``cg_iterations`` (20)
conjugate-gradient iterations, where the exact solve needs up to 100 in the
first iterations (small ``rho_k``, the prior dominating anyway);
``reflect_step=pad`` pads, solves in closed form and crops (:mod:`.datastep`):
faster still, but less accurate near the border. A learned denoiser is built
with its ``low_noise_guard`` off (:data:`DENOISER_GUARD`): its SURE blend
would cost a second network call at every level up to 0.02 and measured no
different inside pnp, whose schedule already sets how hard it smooths.

Super-resolution by 3 or more holds the last level for 16 more iterations
(``hold``), so the outputs it averages all come from that level (at x2 it
measured lower, so x2 holds none). For inpainting and
super-resolution the result is the mean of the last 8
denoiser outputs (``average``: with ``ensemble``, one per flip/rotation) and,
when the measurement is noise-free, one more data step (``final_data_step``),
which puts the observed pixels back (to within the last penalty, rho_k about
0.004 of the gap) or makes the result reproduce the low-resolution image.
Inpainting stops its schedule at 2/255 (the data step puts the observed pixels
back; the last levels only shape the missing ones). Deblurring keeps DPIR's
schedule and returns the last denoiser output.

:meth:`PnPRestorer.solve` is the loop both ways share: :meth:`~PnPRestorer.restore`
runs it with the registered denoiser under ``no_grad``, and
:meth:`~PnPRestorer.forward` with the denoiser's network and the gradient
through the last :data:`BACKPROP_ITERATIONS` iterations, which
:func:`restorekit.training.fit` trains (``restorekit train drunet
--pnp-share``; :meth:`~PnPRestorer.with_denoiser` hands pnp the restorer around
the network being trained). Weights a denoiser ships trained so for a task
(its class's ``pnp_weights``) are what pnp builds it with for that task
(``tuned``; :meth:`~PnPRestorer.tuned_weights`).
"""

from __future__ import annotations

import sys
import warnings

import torch
import torch.nn.functional as F

from restorekit.degrade import Noise
from restorekit.errors import InputError, ParameterError, RestorekitWarning, UnknownRestorerError
from restorekit.registry import default_registry
from restorekit.restorer import Pipeline, Restorer, scale_of

from . import TASKS, ensemble, schedule, solvers
from .datastep import padded_step
from .params import (DEFAULT_AVERAGE, DEFAULT_HOLD, DEFAULT_ITERATIONS, DEFAULT_SOLVER, HOLD_MIN_SCALE, PARAMS,
                     SUMMARY)


def _denoiser_spec(registry, name: str, owner: str):
    """The spec of the denoiser ``name`` registered in ``registry``, or a one-line :class:`ParameterError`."""
    hint = "name a denoiser, e.g. denoiser=dncnn ('restorekit list' shows those for the task denoise)"
    if name == owner:
        raise ParameterError(f"{owner!r} cannot use itself as its denoiser; {hint}")
    specs = {s.name: s for s in registry.specs()}
    if name not in specs and "+" in name:
        raise ParameterError(f"denoiser={name!r} is a pipeline; {owner!r} needs a single denoiser: {hint}")
    if name not in specs:
        try:
            registry.get(name)
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


#: Peak working memory of the data step and the solver's state per restored value (image x channel x
#: pixel), in bytes: the peak RSS growth of a 2-iteration pnp with an identity denoiser on 1x3x1024^2
#: and 1x3x2048^2 images (one thread, benchmarks/pnp_data_step_memory.py) was 27-30 for a blur's
#: closed form, 52-61 for x2 super-resolution's, 37-45 for pad-and-crop and 55-109 for conjugate
#: gradients; rounded up here.
DATA_STEP_BYTES_PER_VALUE = {"closed": 72, "padded": 72, "cg": 112}
#: The ``low_noise_guard`` pnp builds a learned denoiser with. The guard blends a denoiser's output with its
#: input by SURE at levels up to 0.02, which costs a second network call; inside pnp the input's error is not
#: the white noise SURE assumes, the schedule sets the level, and the blend hardly changed anything (RESULTS.md,
#: session 8: without it the 20-image tables of Levin deblurring and x4 identical, 50% inpainting within 0.004 dB
#: per image, in 26-33% less time).
DENOISER_GUARD = "off"
#: The last iterations the gradient flows through when a denoiser is trained through pnp (:meth:`PnPRestorer.forward`):
#: the 8 whose outputs inpainting and super-resolution average, so every output averaged gets its gradient.
BACKPROP_ITERATIONS = 8
#: With ``progress=true`` the bar appears once a run has taken this long (short runs print nothing).
PROGRESS_DELAY_S = 2.0


def data_step_memory(shape: tuple[int, ...], kind: str) -> int:
    """Bytes ``pnp``'s data step and solver state need for a restored batch of ``shape`` (N, C, H, W).

    ``kind`` is ``"closed"`` (an FFT formula on the image's grid), ``"padded"``
    (the same on the grid mirrored by the kernel's size) or ``"cg"``
    (conjugate gradients). The figures of :data:`DATA_STEP_BYTES_PER_VALUE`
    were measured as peak RSS growth (``benchmarks/RESULTS.md``, the pnp section).
    """
    n, c, h, w = shape
    return int(n * c * h * w * DATA_STEP_BYTES_PER_VALUE[kind])


class PnPRestorer(Restorer):
    """Plug-and-play restoration: HQS or ADMM with any registered denoiser as the prior."""

    name = "pnp"
    tasks = TASKS
    params = PARAMS
    summary = SUMMARY
    needs_degradation = True
    #: Training through the solver (:meth:`forward`): the gradient flows through this many last iterations.
    backprop_iterations = BACKPROP_ITERATIONS

    def __init__(self, registry=None, **params) -> None:
        super().__init__(**params)
        #: Where the denoiser is found: the registry that builds this pnp (the process-wide one when
        #: the class is called directly).
        self.registry = registry if registry is not None else default_registry()
        name = self.config["denoiser"]
        self._spec = _denoiser_spec(self.registry, name, self.name)
        self._denoiser_params = self._denoiser_build_params()
        self.denoiser = self.registry.create(name, **self._denoiser_params)
        if isinstance(self.denoiser, (Pipeline, PnPRestorer)):
            raise ParameterError(f"denoiser={name!r} builds a {type(self.denoiser).__name__}; "
                                 f"{self.name!r} needs a single denoiser such as dncnn")
        self._by_device: dict[tuple[str, str | None], Restorer] = {}
        self._own_denoiser = True  # built here from the registry (not handed in by with_denoiser)
        # What the denoiser takes, pnp takes (read by restorekit.testing.check_restorer).
        self.channels = tuple(getattr(self.denoiser, "channels", Restorer.channels))
        self.min_size = int(getattr(self.denoiser, "min_size", 1))
        self._warn_blind = not getattr(self.denoiser, "uses_noise_level", False)

    def with_denoiser(self, denoiser: Restorer) -> "PnPRestorer":
        """This pnp with the denoiser instance ``denoiser`` in place of the one it built; returns ``self``.

        For a network being trained through :meth:`forward`, e.g.
        ``registry.create("pnp").with_denoiser(DRUNetRestorer.from_network(net))``
        (``restorekit train drunet --pnp-share``). A denoiser handed in is
        used for every task: weights tuned for a task (:meth:`tuned_weights`)
        replace only a denoiser pnp built itself.
        """
        self.denoiser = denoiser
        self._by_device = {}
        self._own_denoiser = False
        self._warn_blind = not getattr(denoiser, "uses_noise_level", False)
        return self

    def _rebuilt(self, params: dict) -> "PnPRestorer":
        """For :meth:`~restorekit.restorer.Restorer.replaced`: the denoiser found in this pnp's registry."""
        return type(self)(registry=self.registry, **params)

    # ------------------------------------------------------------------ pieces
    def _denoiser_build_params(self) -> dict:
        """What the denoiser is built with: ``tile``, ``max_memory`` and ``precision`` when given, its guard off.

        A value set on ``pnp`` (``--tile``, ``--max-memory``) for a denoiser
        that takes no such parameter is refused: pnp would otherwise ignore
        it silently. ``max_memory`` also bounds pnp's own data step (see
        :meth:`check_memory`), so it is kept even when the denoiser does not
        tile. A learned denoiser's ``low_noise_guard`` is turned off
        (:data:`DENOISER_GUARD`): the schedule sets how hard it smooths.
        """
        takes = {p.name for p in self._spec.params}
        out = {"low_noise_guard": DENOISER_GUARD} if "low_noise_guard" in takes else {}
        if self.config["precision"] != "float32":
            if "precision" not in takes:
                raise ParameterError(
                    f"pnp: precision={self.config['precision']} was given but the denoiser "
                    f"{self.config['denoiser']!r} has no 'precision' parameter; drop it, or choose a learned "
                    "denoiser that reads the noise level (drunet, ffdnet)")
            out["precision"] = self.config["precision"]
        for pname, unset in (("tile", 0), ("max_memory", "auto")):
            value = self.config[pname]
            if pname in takes:
                if value != unset:
                    out[pname] = value
            elif pname == "tile" and value != unset:
                raise ParameterError(
                    f"pnp: tile={value} was given but the denoiser {self.config['denoiser']!r} does not restore in "
                    "tiles (it has no 'tile' parameter); drop --tile, or choose a denoiser that tiles (dncnn, "
                    "drunet, ffdnet); pnp's own data step works on the whole image (its FFTs cannot be tiled)")
        return out

    def tuned_weights(self, task: str) -> str | None:
        """The denoiser's weights trained through pnp's solver for ``task``, when it ships them and ``tuned`` is on.

        A denoiser class declares them as ``pnp_weights = {task: weights}``
        (``drunet``: ``{"inpaint": "drunet-color-pnp"}``, its network trained
        through this solver's inpainting by :meth:`forward`); pnp then builds
        the denoiser with those weights for that task. None otherwise, and for
        a denoiser handed in by :meth:`with_denoiser`.
        """
        if not (self.config["tuned"] and self._own_denoiser) or not any(p.name == "weights" for p in self._spec.params):
            return None
        return dict(getattr(type(self.denoiser), "pnp_weights", None) or {}).get(task)

    def denoiser_for(self, device: torch.device, task: str | None = None) -> Restorer:
        """The denoiser to call for tensors on ``device`` for ``task`` (built once per device and tuned weights).

        It is the one built with pnp unless the denoiser takes ``device`` and
        ``device`` is not the CPU, or it ships weights tuned for ``task``
        (:meth:`tuned_weights`).
        """
        weights = self.tuned_weights(task) if task is not None else None
        on_device = device.type != "cpu" and any(p.name == "device" for p in self._spec.params)
        if not on_device and weights is None:
            return self.denoiser
        key = (str(device) if on_device else "cpu", weights)
        if key not in self._by_device:
            extra = {"device": key[0]} if on_device else {}
            if weights is not None:
                extra["weights"] = weights
            self._by_device[key] = self.registry.create(self.config["denoiser"], **extra, **self._denoiser_params)
        return self._by_device[key]

    def check_memory(self, shape: tuple[int, ...], kind: str, device: torch.device) -> None:
        """Refuse, in one line, a batch whose data step needs more than ``max_memory`` (auto: what is free).

        The denoiser keeps to ``max_memory`` by tiling (when it tiles); the
        data step cannot tile, since its FFTs span the whole image, so its
        need (:func:`data_step_memory`) is checked before the first iteration.
        """
        from restorekit.tiling import available_memory, format_bytes

        need = data_step_memory(shape, kind)
        limit = self.config["max_memory"]
        budget = available_memory(device) if limit == "auto" else int(limit)
        if budget is None or need <= budget:
            return
        n, c, h, w = shape
        what = "the memory free now" if limit == "auto" else "max_memory"
        raise InputError(
            f"pnp: the data step works on the whole image (its FFTs cannot be tiled) and needs about "
            f"{format_bytes(need)} for {n}x{c}x{h}x{w}, more than {what} ({format_bytes(budget)}); restore fewer or "
            "smaller images at once, free memory, or raise --max-memory")

    def task_of(self, degradation) -> str:
        """``"superresolve"``, ``"inpaint"`` or ``"deblur"``: what ``degradation`` asks of pnp."""
        if int(getattr(degradation, "scale", 1)) > 1:
            return "superresolve"
        return "inpaint" if getattr(degradation, "mask", None) is not None else "deblur"

    def solver_name(self, task: str) -> str:
        """``"hqs"`` or ``"admm"``: the ``solver`` given, or with ``auto`` the task's (:data:`DEFAULT_SOLVER`)."""
        name = self.config["solver"]
        if name != "auto":
            return name
        return DEFAULT_SOLVER[task]

    def schedule(self, degradation, task: str) -> tuple[list[float], list[float]]:
        """The denoiser levels ``sigma_k`` and penalties ``rho_k`` of every iteration."""
        count = self.config["iterations"] or DEFAULT_ITERATIONS[task]
        sigma = float(degradation.sigma)
        end = self.config["sigma_end"]
        if end == "auto":
            end = schedule.end_level(sigma, int(getattr(degradation, "scale", 1)), inpaint=task == "inpaint")
        first = self.config["sigma_start"]
        if first == "auto":
            first = schedule.DEFAULT_SIGMA_START
        hold = self.config["hold"]
        if hold is None:  # x2 super-resolution measured lower with the hold: none below HOLD_MIN_SCALE
            below = task == "superresolve" and int(getattr(degradation, "scale", 1)) < HOLD_MIN_SCALE
            hold = 0 if below else DEFAULT_HOLD[task]
        levels = schedule.noise_levels(count, first, end)
        levels = levels + [levels[-1]] * hold
        return levels, schedule.penalties(levels, sigma, self.config["rho"])

    def start(self, y: torch.Tensor, degradation, task: str) -> torch.Tensor:
        """The first estimate ``x_0`` (see the module docstring)."""
        if task == "superresolve":
            scale = int(degradation.scale)
            return F.interpolate(y, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
        if task == "inpaint":
            return biharmonic_fill(y, observed_pixels(degradation, y))
        return y

    # ------------------------------------------------------------------ restore
    def restore(self, image: torch.Tensor, degradation=None) -> torch.Tensor:
        if degradation is None or not hasattr(degradation, "prox"):
            raise InputError(
                "'pnp' needs the degradation (its blur kernel, mask or scale) for its data step; pass one, e.g. "
                "Compose(Blur(load_kernel('levin:1')), Noise(0.01)), or --kernel/--mask/--scale on the command line")
        if not set(getattr(degradation, "tasks", ())) & {"deblur", "inpaint", "superresolve"}:
            raise InputError(
                "'pnp' got a degradation with no blur, mask or downsampling (nothing for its data step to invert); "
                "give the kernel (--kernel SPEC, or --kernel auto to estimate it from the image: "
                "restorekit.estimate_kernel), a --mask or a --scale; for noise alone use a denoiser such as ffdnet")
        if self._warn_blind:  # once per instance, on its first use (where the CLI shows warnings on one line)
            self._warn_blind = False
            warnings.warn(
                f"pnp: denoiser {self.config['denoiser']!r} is blind (its Restorer class does not set "
                "uses_noise_level = True), so it cannot follow the noise-level schedule; a noise-level-aware "
                "denoiser such as ffdnet usually restores better (a denoiser that reads degradation.sigma declares "
                "uses_noise_level = True)", RestorekitWarning, stacklevel=3)
        y = image if image.dtype in (torch.float32, torch.float64) else image.float()
        denoiser = self.denoiser_for(y.device, self.task_of(degradation))
        out = self.solve(y, degradation, lambda v, noise, k: denoiser(v, noise), check_memory=True)
        return out.clamp(0, 1).to(image.dtype)

    def solve(self, y: torch.Tensor, degradation, prior, check_memory: bool = False,
              progress: bool = True) -> torch.Tensor:
        """Run the solver on the measurement ``y``; ``prior(v, noise, k)`` is iteration ``k``'s denoiser call.

        What :meth:`restore` (the registered denoiser, no gradient) and
        :meth:`forward` (the network being trained, differentiable) share: the
        task, the schedule, the data step, the start, the ensemble's flips and
        rotations and the final data step. ``v`` arrives clipped to [0, 1];
        ``noise`` is the :class:`~restorekit.degrade.Noise` of the level
        ``sigma_k`` (times the missing map with ``inpaint_map``). The result is
        not clipped.
        """
        task = self.task_of(degradation)
        levels, rhos = self.schedule(degradation, task)
        use_ensemble = self.config["ensemble"]
        height, width = y.shape[-2] * scale_of(degradation), y.shape[-1] * scale_of(degradation)
        padded = padded_step(degradation, y, (height, width)) if self.config["reflect_step"] == "pad" else None
        kind = "padded" if padded is not None else ("cg" if _needs_cg(degradation) else "closed")
        cg_iterations = self.config["cg_iterations"]

        weight = noise_weight(degradation, y)
        if weight is not None:  # signal-dependent noise: the data term weighted by 1 / variance, by CG
            kind = "cg"
        if check_memory:
            self.check_memory((y.shape[0], y.shape[1], height, width), kind, y.device)

        def data_step(v: torch.Tensor, rho: float) -> torch.Tensor:
            if weight is not None:
                return weighted_prox(degradation, y, v, rho, weight, cg_iterations)
            if padded is not None:
                return padded(v, rho)
            return degradation.prox(y, v, rho, iterations=cg_iterations)

        missing = self.missing_map(degradation, y, task)

        def noise(k: int, turn: int | None) -> Noise:
            if missing is None:
                return Noise(levels[k])
            return Noise(levels[k] * (missing if turn is None else ensemble.transform(missing, turn)))

        def denoise(v: torch.Tensor, k: int) -> torch.Tensor:
            v = v.clamp(0, 1)
            if use_ensemble:
                return ensemble.untransform(prior(ensemble.transform(v, k), noise(k, k), k), k)
            return prior(v, noise(k, None), k)

        x0 = self.start(y, degradation, task)
        solve = solvers.solver(self.solver_name(task))
        average = self.config["average"] or DEFAULT_AVERAGE[task]
        steps = self._steps(len(rhos), task) if progress else range(len(rhos))
        out = solve(data_step, denoise, x0, rhos, steps=steps, average=average)
        if self.final_data_step(degradation, task):
            out = data_step(out.clamp(0, 1), rhos[-1])
        return out

    # ------------------------------------------------------------------ training through the solver
    @property
    def net(self):
        """The denoiser's network (what :func:`restorekit.training.fit` trains through :meth:`forward`)."""
        found = getattr(self.denoiser, "net", None)
        if found is None:
            raise ParameterError(f"pnp: the denoiser {self.config['denoiser']!r} has no network to train "
                                 "(train through pnp with a learned denoiser such as drunet)")
        return found

    def forward(self, y: torch.Tensor, degradation=None, net=None) -> torch.Tensor:
        """The differentiable solve: what :meth:`restore` runs, with the denoiser's network ``net`` as the prior.

        :func:`restorekit.training.fit` trains the denoiser's network through
        the whole solver on ``y, degradation = sampler(x)``: every iteration
        runs, and the gradient flows through the last
        :attr:`backprop_iterations` denoiser calls and data steps (the earlier
        ones run without it: truncated backpropagation, so memory and time stay
        those of a few calls). A degradation of noise alone (no blur, mask or
        scale) is one prior step, the denoiser's own forward: a training
        mixture of Gaussian denoising and restoration through the solver trains
        one network for both. The start (a biharmonic fill, a bicubic
        upsampling) depends on the measurement alone, so it carries no
        gradient. No guard, tiling or progress; the result is not clipped.
        """
        net = self.net if net is None else net
        if degradation is None or not set(getattr(degradation, "tasks", ())) & {"deblur", "inpaint", "superresolve"}:
            return self.denoiser.forward(y, degradation, net)
        first_with_grad = len(self.schedule(degradation, self.task_of(degradation))[0]) - self.backprop_iterations

        def prior(v: torch.Tensor, noise: Noise, k: int) -> torch.Tensor:
            with torch.set_grad_enabled(torch.is_grad_enabled() and k >= first_with_grad):
                return self.denoiser.forward(v, noise, net).clamp(0, 1)

        return self.solve(y, degradation, prior, progress=False)

    def missing_map(self, degradation, y: torch.Tensor, task: str) -> torch.Tensor | None:
        """For inpainting with ``inpaint_map``: 1 on the missing pixels, 0 on the observed ``(N, 1, H, W)``.

        The denoiser is then told ``sigma_k`` times this map, a per-pixel noise
        map: the observed pixels are exact (the data step puts them back), the
        missing ones carry the error. None when the map is off, the task is
        not inpainting, or the measurement is noisy (its observed pixels are
        not exact).
        """
        if not self.config["inpaint_map"] or task != "inpaint" or float(degradation.sigma) > 0:
            return None
        observed = observed_pixels(degradation, y)
        return 1.0 - observed.to(y.dtype).amin(dim=1, keepdim=True)

    def final_data_step(self, degradation, task: str) -> bool:
        """Whether the result is one more data step from the denoiser's (see ``final_data_step``)."""
        wanted = self.config["final_data_step"]
        if wanted != "auto":
            return bool(wanted)
        return task in ("inpaint", "superresolve") and float(degradation.sigma) == 0.0

    def _steps(self, count: int, task: str):
        show = self.config["progress"]
        if show is False:
            return range(count)
        from tqdm.auto import tqdm

        # true: on stderr even when it is not a terminal (a log, a pipe), once the run has taken PROGRESS_DELAY_S
        return tqdm(range(count), desc=f"pnp {task}", unit="it", leave=False, file=sys.stderr,
                    disable=None if show == "auto" else False, delay=0 if show == "auto" else PROGRESS_DELAY_S)


def noise_weight(degradation, y: torch.Tensor) -> torch.Tensor | None:
    """Per-pixel data weights ``sigma^2 / sigma_map^2`` (mean about 1) for signal-dependent noise, else None.

    With Poisson-Gaussian noise (:meth:`~restorekit.degrade.PoissonGaussian.sigma_map`) the
    data term becomes ``||y - A x||^2_W`` with ``W`` the inverse noise variance scaled by the
    RMS variance ``sigma^2`` that the schedule's penalties use, so dark pixels (less noise)
    are trusted more than bright ones. None for noise of one sigma (the unweighted step).
    """
    sigma_map = getattr(degradation, "sigma_map", None)
    found = sigma_map(y) if callable(sigma_map) else None
    if found is None:
        return None
    variance = found.to(y.dtype).pow(2).clamp_min(1e-12)
    return variance.flatten(1).mean(dim=1).reshape(-1, 1, 1, 1) / variance


def weighted_prox(degradation, y: torch.Tensor, z: torch.Tensor, rho: float, weight: torch.Tensor,
                  iterations: int) -> torch.Tensor:
    """``argmin_x ||y - A x||^2_W + rho ||x - z||^2`` by conjugate gradients started from ``z``."""
    from restorekit.degrade import conjugate_gradient

    rhs = degradation.adjoint(weight * y) + rho * z
    return conjugate_gradient(lambda v: degradation.adjoint(weight * degradation.forward(v)) + rho * v, rhs, x0=z,
                              iterations=iterations)


def _needs_cg(degradation) -> bool:
    """Whether ``degradation.prox`` falls back to conjugate gradients (a reflect border, or a mask after a blur)."""
    parts = [p for p in degradation.parts() if hasattr(p, "boundary") and getattr(p, "kernel", None) is not None]
    return any(p.boundary != "circular" for p in parts) or (
        getattr(degradation, "mask", None) is not None and bool(parts))


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


def biharmonic_fill(y: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """``y`` with its missing pixels filled by solving the biharmonic equation (scikit-image), observed kept.

    The smooth fill the ``biharmonic`` baseline gives (``inpaint_biharmonic``),
    image by image on the CPU, one call for all channels where they share the
    mask, else channel by channel; returned on ``y``'s device and dtype.
    """
    import numpy as np
    from skimage.restoration import inpaint_biharmonic

    values = y.detach().to("cpu", torch.float64).numpy()
    missing = (observed < 0.5).to("cpu").numpy()
    out = values.copy()
    for n in range(values.shape[0]):
        holes = missing[n]
        if not holes.any():
            continue
        if (holes == holes[:1]).all():
            out[n] = np.moveaxis(inpaint_biharmonic(np.moveaxis(values[n], 0, -1), holes[0], channel_axis=-1), -1, 0)
        else:
            for c in range(values.shape[1]):
                if holes[c].any():
                    out[n, c] = inpaint_biharmonic(values[n, c], holes[c])
    filled = torch.from_numpy(out).to(device=y.device, dtype=y.dtype)
    return torch.where(observed > 0.5, y, filled)
