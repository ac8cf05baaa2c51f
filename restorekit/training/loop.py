"""The training loop: :func:`fit` a learned restorer on clean samples degraded by a sampler.

One loop serves every learned restorer, the way it restores: each batch of
clean samples is degraded by a :class:`~restorekit.degrade.DegradationSampler`
(``y, degradation = sampler(x, generator)``, restore's operators and noise,
one level per sample), the restorer's own differentiable forward
(:meth:`restorekit.learned.LearnedRestorer.forward`) runs on it, and the loss
(mean squared error by default) compares the result with the clean batch.
Validation pairs are drawn once by the same sampler (:func:`.datasets.fixed_pairs`).
A plain ``torch.nn.Module`` trained on a dataset of ``(input, target)`` pairs
(no sampler) works too, for models whose inputs hold no noise.

* **Adam**, learning rate 1e-3 and batches of 32 by default (the course's),
  or any optimizer (``optimizer=``: an instance, or a factory taking the
  parameters), its rate optionally divided by 10 for the last part of the
  run (``lr_drop_at``);
* **seeded and reproducible**: the epoch's sample order and subset come from
  ``seed`` and the epoch, every sample's crop from ``(seed, epoch, index)``,
  every batch's degradation from ``(seed, epoch, step, rank)``;
  build the model after :func:`seed_everything` so its initial weights are too;
* **tqdm progress**, the mean loss every ``log_every`` steps, and the
  **validation PSNR** after every epoch;
* **checkpoints** written atomically after every epoch (and every
  ``checkpoint_every`` steps), so ``resume=True`` continues a run that was
  stopped, even mid-epoch, where its last checkpoint left it; they hold only
  what ``torch.load(..., weights_only=True)`` reads (state dicts, numbers,
  lists, the random generators' states as tensors and lists), and the
  hidden temporary files of a killed run are removed when the next starts;
* ``history.json`` (after every checkpoint) and a figure of the loss and
  PSNR curves (``curves.png``: at the end, and after an epoch when a minute
  has passed since the last one) beside the checkpoint, both replaced
  atomically;
* **bfloat16 autocast** of the forward pass when asked (``bf16=True``: where
  the CPU computes bfloat16 natively, AMX or AVX512-BF16, see :mod:`.machine`);
* **DDP** when launched by ``torchrun``: samples sharded with
  ``DistributedSampler``, gradients averaged by ``DistributedDataParallel``,
  rank 0 alone validating and writing files.

Examples
--------
>>> import torch
>>> from restorekit.degrade import DegradationSampler
>>> from restorekit.training import fit, TrainConfig, seed_everything
>>> from restorekit.training.datasets import Patches
>>> seed_everything(0)
>>> net = torch.nn.Conv2d(1, 1, 3, padding=1)
>>> samples = Patches([torch.rand(1, 64, 64)], size=16)
>>> result = fit(net, samples, TrainConfig(epochs=2, batch_size=4, progress=False),
...              sampler=DegradationSampler(sigma=0.1))
>>> len(result.history["epoch_loss"])
2
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import InputError
from . import distributed
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint

#: Settings that must not change when a run is resumed (they define its samples and steps).
RESUME_KEYS = ("batch_size", "seed", "samples_per_epoch", "world_size", "drop_last")
#: Seconds between two redraws of ``curves.png`` during a run (it is always drawn when the run ends).
CURVES_EVERY_S = 60.0
#: What a checkpoint written by :func:`fit` holds (an older or foreign file lacks some).
CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "step_in_epoch", "history")


@dataclass
class TrainConfig:
    """What defines a training run (stored in its checkpoints).

    Parameters
    ----------
    epochs : int
        Passes over the training set (or over ``samples_per_epoch`` samples).
    batch_size : int
        Samples per step and per process (the course's 32).
    drop_last : bool
        True: whole batches only (the samples left over wait for another
        epoch's order); False: a last, smaller batch takes them.
    lr : float
        Adam's learning rate (the course's 1e-3); an ``optimizer`` given to
        :func:`fit` keeps its own.
    lr_drop_at : float, optional
        Fraction of the run after which the rate is divided by 10 (e.g. 0.8).
    seed : int
        Seeds the sample order, the per-epoch subset and the noise.
    samples_per_epoch : int, optional
        Train each epoch on a random subset of this many samples (drawn
        afresh every epoch) instead of the whole set.
    log_every : int
        Steps between two points of the loss curve.
    checkpoint_every : int
        Steps between mid-epoch checkpoints (0: only at the end of an epoch).
    num_workers : int
        DataLoader worker processes (0: load in the training process).
    device : str
        ``"cpu"`` or ``"cuda"``.
    progress : bool
        Show a tqdm bar (on rank 0).
    world_size : int
        Filled in by :func:`fit`: the number of processes.
    """

    epochs: int = 1
    batch_size: int = 32
    lr: float = 1e-3
    lr_drop_at: float | None = None
    seed: int = 0
    samples_per_epoch: int | None = None
    log_every: int = 50
    checkpoint_every: int = 0
    num_workers: int = 0
    device: str = "cpu"
    progress: bool = True
    world_size: int = 1
    drop_last: bool = True

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(f"epochs and batch size must be at least 1, got {self.epochs} and {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"the learning rate must be a positive number, got {self.lr}")
        if self.samples_per_epoch is not None and self.samples_per_epoch < 1:
            raise InputError(f"samples per epoch must be at least 1, got {self.samples_per_epoch}")
        if self.lr_drop_at is not None and not (0 < self.lr_drop_at < 1):
            raise InputError(f"lr_drop_at is a fraction of the run in (0, 1), got {self.lr_drop_at}")


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model (unwrapped), its history, the output folder."""

    model: torch.nn.Module
    history: dict
    out: Path | None = None
    config: TrainConfig = field(default_factory=TrainConfig)
    rank: int = 0
    restorer: Any = None  #: the learned restorer trained (None when a plain module was)

    @property
    def is_main(self) -> bool:
        """True in the process that should write results (rank 0, or the only process)."""
        return self.rank == 0

    @property
    def final_val_psnr(self) -> float | None:
        values = self.history.get("val_psnr") or []
        return values[-1] if values else None

    def summary(self) -> str:
        """One line: epochs done, the last validation PSNR, the training time."""
        h = self.history
        psnr = f", validation PSNR {self.final_val_psnr:.2f} dB" if self.final_val_psnr is not None else ""
        return f"{len(h['epoch_loss'])} epochs{psnr}, {h['seconds']:.0f} s"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (call before building the model)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(output, target)


def new_history() -> dict:
    """An empty training history; ``val_seconds`` is the run's ``seconds`` at each validation (``None`` for
    validations of a history written before it was kept), so runs compare per second as well as per step."""
    return {"step": [], "loss": [], "epoch_loss": [], "val_step": [], "val_epoch": [], "val_psnr": [],
            "val_seconds": [], "seconds": 0.0, "steps_per_epoch": 0}


def clamped_psnr(output: torch.Tensor, clean: torch.Tensor) -> float:
    """PSNR (dB) of ``output`` clamped to [0, 1] against ``clean``: the default validation metric."""
    from ..metrics import psnr

    return float(psnr(output.clamp(0, 1), clean))


def evaluate_psnr(model: Any, pairs: Sequence[tuple], device: torch.device | str = "cpu",
                  metric: Callable[[torch.Tensor, torch.Tensor], float] | None = None, bf16: bool = False) -> float:
    """Mean of ``metric(output, clean)`` over ``pairs``: PSNR (dB) of the clamped output by default.

    ``pairs`` holds ``(degraded, degradation, clean)`` (what :func:`.datasets.fixed_pairs`
    draws with a sampler: ``output = model.forward(degraded, degradation)`` for a
    learned restorer) or ``(degraded, clean)`` (``output = model(degraded)``).
    """
    metric = metric or clamped_psnr
    module, forward = _trainable(model)
    was_training = module.training
    module.eval()
    values = []
    with torch.no_grad():
        for item in pairs:
            degraded, degradation, clean = item if len(item) == 3 else (item[0], None, item[1])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = forward(degraded.to(device), _on(degradation, device), module)
            values.append(float(metric(out.float().cpu(), clean)))
    module.train(was_training)
    return float(sum(values) / len(values))


def _trainable(model: Any) -> tuple[torch.nn.Module, Callable[[torch.Tensor, Any, torch.nn.Module], torch.Tensor]]:
    """``(module whose parameters are trained, forward(y, degradation, module))`` of ``model``.

    A learned restorer (a :class:`~restorekit.learned.LearnedRestorer`, or
    anything with a ``net`` module and ``forward(y, degradation, net)``)
    trains its ``net`` through its own ``forward``; a plain module is called
    on the input alone.
    """
    if not isinstance(model, torch.nn.Module) and isinstance(getattr(model, "net", None), torch.nn.Module) \
            and callable(getattr(model, "forward", None)):
        return model.net, lambda y, degradation, net: model.forward(y, degradation, net)
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"fit trains a torch.nn.Module or a learned restorer (with .net and .forward), got "
                         f"{type(model).__name__}")
    return model, lambda y, degradation, net: net(y)


class _Step(torch.nn.Module):
    """``forward(y, degradation, net)`` as a module around ``net`` (what DDP wraps)."""

    def __init__(self, net: torch.nn.Module, forward: Callable[[torch.Tensor, Any, torch.nn.Module], torch.Tensor]):
        super().__init__()
        self.net = net
        self._forward = forward

    def forward(self, y: torch.Tensor, degradation: Any = None) -> torch.Tensor:
        return self._forward(y, degradation, self.net)


def _on(degradation: Any, device: torch.device | str) -> Any:
    return None if degradation is None else degradation.to(device)


def batch_generator(seed: int, epoch: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator of one batch's degradation: the same for a step whatever came before (resume, DDP)."""
    key = (((int(seed) * 1_000_003 + int(epoch)) * 1_000_000_007 + int(step)) * 131 + int(rank)) % (1 << 63)
    return torch.Generator().manual_seed(key)


def _epoch_batches(n: int, cfg: TrainConfig, epoch: int, ctx: distributed.DistContext) -> list[list[int]]:
    """This process's batches of sample indices for ``epoch`` (whole batches only)."""
    gen = torch.Generator().manual_seed((cfg.seed * 7919 + epoch) % (1 << 63))
    subset = torch.randperm(n, generator=gen)[: cfg.samples_per_epoch].tolist() if cfg.samples_per_epoch else list(range(n))
    sampler = DistributedSampler(subset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    order = [subset[i] for i in sampler]
    count = len(order) // cfg.batch_size if cfg.drop_last else -(-len(order) // cfg.batch_size)
    return [order[i * cfg.batch_size:(i + 1) * cfg.batch_size] for i in range(count)]


def _steps_per_epoch(per_epoch: int, cfg: TrainConfig, world_size: int) -> int:
    """Steps each process takes per epoch (``DistributedSampler`` gives each ``per_epoch // world_size``)."""
    if cfg.drop_last:
        return per_epoch // (cfg.batch_size * world_size)
    return -(-(per_epoch // world_size) // cfg.batch_size)


def rng_states() -> dict:
    """Python's, NumPy's and torch's (CPU, and CUDA when used) generator states, in ``weights_only`` form."""
    import numpy as np

    state = np.random.get_state(legacy=False)
    state["state"]["key"] = state["state"]["key"].tolist()
    saved = {"python": random.getstate(), "numpy": state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        saved["cuda"] = torch.cuda.get_rng_state_all()
    return saved


def set_rng_states(saved: dict) -> None:
    """Restore what :func:`rng_states` returned (the parts present)."""
    import numpy as np

    if "python" in saved:
        version, internal, gauss = saved["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in saved:
        state = dict(saved["numpy"])
        state["state"] = {**state["state"], "key": np.asarray(state["state"]["key"], dtype=np.uint32)}
        np.random.set_state(state)
    if "torch" in saved:
        torch.set_rng_state(saved["torch"])
    if "cuda" in saved and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])


def write_history(out: Path, history: dict) -> None:
    from ..atomic import write_text_atomic

    write_text_atomic(out / "history.json", json.dumps(history, indent=1) + "\n")


def curves_figure(history: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Training loss and validation PSNR against the step, written atomically to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_output

    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 3.8))
    if history["step"]:
        ax_loss.plot(history["step"], history["loss"], lw=1)
        if min(history["loss"]) > 0:
            ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss (mean over the interval)")
    ax_loss.grid(alpha=0.3)
    if history["val_step"]:
        ax_psnr.plot(history["val_step"], history["val_psnr"], "o-")
    ax_psnr.set_xlabel("step")
    ax_psnr.set_ylabel("validation PSNR (dB)")
    ax_psnr.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def fit(model: Any, train_set: Any, config: TrainConfig | None = None,
        val_pairs: Sequence[tuple] | None = None,
        out: str | os.PathLike | None = None, resume: bool = False,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        title: str = "", extra_state: dict | None = None,
        optimizer: torch.optim.Optimizer | Callable[[Any], torch.optim.Optimizer] | None = None,
        val_metric: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
        sampler: Any = None, bf16: bool = False) -> FitResult:
    """Train ``model`` on ``train_set`` (Adam unless told otherwise); checkpoint, validate and plot along the way.

    Parameters
    ----------
    model : LearnedRestorer or torch.nn.Module
        A learned restorer (e.g. ``DRUNetRestorer.from_network(net)``): its
        ``net`` is trained through its own ``forward(y, degradation)``, the
        pass ``restore`` runs. A plain module is called as ``model(y)``.
    train_set : Dataset
        With a ``sampler``: clean samples ``(C, H, W)`` (see
        :class:`.datasets.CleanSamples`); without: ``(input, target)`` pairs.
        ``set_epoch(epoch)`` is called before each epoch when it exists.
    config : TrainConfig
        The run's settings.
    val_pairs : sequence, optional
        Fixed ``(degraded, degradation, clean)`` triples (:func:`.datasets.fixed_pairs`)
        or ``(degraded, clean)`` pairs, ``(1, C, H, W)``, whose mean PSNR is
        measured after every epoch.
    out : path, optional
        Folder for ``checkpoint.pt``, ``history.json`` and ``curves.png``
        (nothing is written without it).
    resume : bool
        Continue from ``out/checkpoint.pt`` (same batch size, seed, subset
        size and number of processes as the run that wrote it).
    loss_fn : callable, optional
        ``loss_fn(output, clean)``; mean squared error by default.
    title : str
        Title of the figure and the progress bar.
    extra_state : dict, optional
        Saved in every checkpoint (e.g. the architecture), for the caller.
    optimizer : torch.optim.Optimizer or callable, optional
        The optimizer, built on ``model.parameters()``, or a factory called
        with them (e.g. ``lambda params: torch.optim.SGD(params, lr=0.1)``);
        default ``Adam(lr=config.lr)``. Its state is checkpointed and
        restored on resume; ``lr_drop_at`` divides its own rates by 10.
    val_metric : callable, optional
        ``val_metric(output, clean) -> float`` on each validation pair
        (``output`` is the model's, unclamped); its mean is
        ``history["val_psnr"]``. Default: PSNR (dB) of the output clamped to [0, 1].
    sampler : DegradationSampler, optional
        Degrades each batch of clean samples: ``y, degradation = sampler(clean,
        generator)`` with a generator seeded by ``(seed, epoch, step, rank)``.
    bf16 : bool
        Run the forward pass under CPU bfloat16 autocast (the loss in float32).

    Returns
    -------
    FitResult
        The trained model (not wrapped in DDP), the history and the folder.
    """
    from tqdm.auto import tqdm

    cfg = config or TrainConfig()
    cfg.check()
    ctx = distributed.setup(cfg.device)
    cfg.world_size = ctx.world_size
    loss_fn = loss_fn or mse_loss
    device = torch.device(ctx.device)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None and ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    if out_dir is not None and ctx.is_main:
        from ..atomic import remove_stale_temporaries

        remove_stale_temporaries(out_dir, older_than_s=0)  # left by a killed run (their process is gone)
    n = len(train_set)
    per_epoch = min(n, cfg.samples_per_epoch or n)
    steps_per_epoch = _steps_per_epoch(per_epoch, cfg, ctx.world_size)
    if steps_per_epoch < 1:
        raise InputError(f"the training set has {per_epoch} samples per epoch, fewer than one batch of "
                         f"{cfg.batch_size} per process ({ctx.world_size} process(es)); lower --batch-size or add images")
    total_steps = steps_per_epoch * cfg.epochs

    trained = model
    model, forward = _trainable(trained)
    model.to(device)
    optimizer = _make_optimizer(model, optimizer, cfg)
    base_lrs = [group["lr"] for group in optimizer.param_groups]  # this run's rates (a resumed one's too)
    history = new_history()
    history["steps_per_epoch"] = steps_per_epoch
    start_epoch, start_step = 0, 0
    if resume:
        if out_dir is None:
            raise InputError("resume=True needs the output folder of the run to continue (--out)")
        state = load_checkpoint(out_dir / CHECKPOINT_NAME)
        missing = [k for k in CHECKPOINT_KEYS if k not in state]
        if missing:
            raise InputError(f"the checkpoint in {out_dir} was not written by restorekit.training.fit (it lacks "
                             f"{', '.join(missing)}; an older version's?); start again with --overwrite, or use "
                             "another --out")
        saved = state.get("config", {})
        changed = [k for k in RESUME_KEYS if k in saved and saved[k] != getattr(cfg, k)]
        if changed:
            raise InputError("cannot resume with different " + ", ".join(
                f"{k} ({saved[k]} before, {getattr(cfg, k)} now)" for k in changed) + "; use the settings of the run")
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise InputError(f"the checkpoint in {out_dir} is for another model ({str(exc).splitlines()[0]}); "
                             "use the same architecture or another --out") from None
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise InputError(f"the checkpoint in {out_dir} holds the state of another optimizer ({exc}); resume "
                             "with the optimizer of the run, or use another --out") from None
        if "rng" in state:
            set_rng_states(state["rng"])
        history = state["history"]
        start_epoch, start_step = int(state["epoch"]), int(state["step_in_epoch"])

    # One module runs the step: the forward (the restorer's, with its own methods such as net.denoise) inside
    # a module call, so under DDP the gradients are averaged whatever method of the network the forward uses.
    net: torch.nn.Module = _Step(model, forward)
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    def checkpoint(epoch: int, step_in_epoch: int) -> None:
        if out_dir is None or not ctx.is_main:
            return
        save_checkpoint(out_dir / CHECKPOINT_NAME, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
            "step_in_epoch": step_in_epoch, "history": history, "config": asdict(cfg),
            "extra": dict(extra_state or {}), "rng": rng_states(),
        })
        write_history(out_dir, history)

    def set_lr(global_step: int) -> None:
        drop = cfg.lr_drop_at is not None and global_step >= cfg.lr_drop_at * total_steps
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * (0.1 if drop else 1.0)

    bar = tqdm(total=total_steps, initial=start_epoch * steps_per_epoch + start_step, desc=title or "training",
               disable=not (cfg.progress and ctx.is_main), dynamic_ncols=True)
    started = time.time() - float(history.get("seconds", 0.0))
    drawn = time.time()  # when curves.png was last drawn (a figure costs about a second)
    net.train()
    try:
        for epoch in range(start_epoch, cfg.epochs):
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            batches = _epoch_batches(n, cfg, epoch, ctx)[:steps_per_epoch]
            first = start_step if epoch == start_epoch else 0
            # Its own generator: making the loader draws no number from torch's global one, so a run resumed
            # mid-epoch sees the same global random stream (e.g. dropout) as an uninterrupted one.
            loader = DataLoader(train_set, batch_sampler=batches[first:], num_workers=cfg.num_workers,
                                generator=torch.Generator().manual_seed((cfg.seed * 7919 + epoch) % (1 << 63)))
            interval, epoch_sum, epoch_count = [], 0.0, 0
            if first:  # resumed mid-epoch: the loss summed over the steps before the checkpoint
                epoch_sum, epoch_count = (float(v) for v in history.get("partial_epoch_loss", (0.0, 0)))
                epoch_count = int(epoch_count)
            for step, batch in enumerate(loader, start=first):
                global_step = epoch * steps_per_epoch + step
                set_lr(global_step)
                if sampler is not None:
                    clean = batch[-1] if isinstance(batch, (list, tuple)) else batch
                    degraded, degradation = sampler(clean, batch_generator(cfg.seed, epoch, step, ctx.rank))
                else:
                    (degraded, clean), degradation = batch, None
                degraded, clean = degraded.to(device), clean.to(device)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    output = net(degraded, _on(degradation, device))
                loss = loss_fn(output.float(), clean)
                if not torch.isfinite(loss):
                    raise InputError(f"the training loss became {loss.item()} at step {global_step}; lower the "
                                     "learning rate (--lr) or check the data; the last checkpoint is kept")
                loss.backward()
                optimizer.step()
                value = float(loss.detach())
                interval.append(value)
                epoch_sum, epoch_count = epoch_sum + value, epoch_count + 1
                bar.update(1)
                if len(interval) >= cfg.log_every or step == steps_per_epoch - 1:
                    mean = distributed.mean_over_processes(sum(interval) / len(interval), ctx)
                    history["step"].append(global_step + 1)
                    history["loss"].append(mean)
                    interval = []
                    bar.set_postfix(loss=f"{mean:.3g}")
                if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < steps_per_epoch:
                    history["seconds"] = time.time() - started
                    # The epoch's loss so far (sum over this process's steps, the mean over processes), so a
                    # run resumed from here records the whole epoch's mean loss, not that of its last steps.
                    history["partial_epoch_loss"] = [distributed.mean_over_processes(epoch_sum, ctx), epoch_count]
                    checkpoint(epoch, step + 1)
            history.pop("partial_epoch_loss", None)
            history["epoch_loss"].append(
                distributed.mean_over_processes(epoch_sum / max(epoch_count, 1), ctx) if epoch_count else float("nan"))
            if val_pairs:
                value = evaluate_psnr(trained, val_pairs, device, val_metric, bf16) if ctx.is_main else 0.0
                value = distributed.broadcast_float(value, ctx)
                # (a history from before val_seconds was kept gets None for its earlier validations)
                history.setdefault("val_seconds", [None] * len(history["val_step"])).append(time.time() - started)
                history["val_step"].append((epoch + 1) * steps_per_epoch)
                history["val_epoch"].append(epoch + 1)
                history["val_psnr"].append(value)
                if ctx.is_main and cfg.progress:
                    bar.write(f"epoch {epoch + 1}/{cfg.epochs}: loss {history['epoch_loss'][-1]:.4g}, "
                              f"validation PSNR {value:.2f} dB")
            history["seconds"] = time.time() - started
            checkpoint(epoch + 1, 0)
            if out_dir is not None and ctx.is_main and (epoch + 1 == cfg.epochs or time.time() - drawn >= CURVES_EVERY_S):
                curves_figure(history, out_dir / "curves.png", title)
                drawn = time.time()
            distributed.barrier(ctx)
    finally:
        bar.close()
        distributed.cleanup(ctx)
    return FitResult(model=model, history=history, out=out_dir, config=cfg, rank=ctx.rank,
                     restorer=None if trained is model else trained)


def _make_optimizer(model: torch.nn.Module, optimizer: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``optimizer`` as an optimizer over ``model``'s parameters (Adam with ``cfg.lr`` when None)."""
    if optimizer is None:
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if not isinstance(optimizer, torch.optim.Optimizer):
        if not callable(optimizer):
            raise InputError(f"optimizer must be a torch.optim.Optimizer or a factory taking the parameters, got "
                             f"{type(optimizer).__name__}")
        optimizer = optimizer(model.parameters())
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InputError(f"the optimizer factory returned {type(optimizer).__name__}, not a torch.optim.Optimizer")
    own = {id(p) for p in model.parameters()}
    if any(id(p) not in own for group in optimizer.param_groups for p in group["params"]):
        raise InputError("the optimizer holds parameters that are not the model's; build it on model.parameters() "
                         "or pass a factory, e.g. optimizer=lambda params: torch.optim.SGD(params, lr=0.1)")
    return optimizer


__all__ = ["CHECKPOINT_KEYS", "FitResult", "TrainConfig", "batch_generator", "clamped_psnr", "curves_figure",
           "evaluate_psnr", "fit",
           "mse_loss", "new_history", "rng_states", "seed_everything", "set_rng_states", "write_history"]
