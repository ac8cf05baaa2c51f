"""The training loop: :func:`fit` a network on ``(degraded, clean)`` pairs.

One loop serves every learned restorer: it knows nothing of the model or the
degradation, only of a dataset of pairs (see :mod:`.datasets`), a loss
(mean squared error by default) and optional fixed validation pairs.

* **Adam**, learning rate 1e-3 and batches of 32 by default (the course's),
  optionally divided by 10 for the last part of the run (``lr_drop_at``);
* **seeded and reproducible**: the epoch's sample order and subset come from
  ``seed`` and the epoch, every sample's noise from ``(seed, epoch, index)``;
  build the model after :func:`seed_everything` so its initial weights are too;
* **tqdm progress**, the mean loss every ``log_every`` steps, and the
  **validation PSNR** after every epoch;
* **checkpoints** written atomically after every epoch (and every
  ``checkpoint_every`` steps), so ``resume=True`` continues a run that was
  stopped, even mid-epoch, where its last checkpoint left it;
* ``history.json`` and a figure of the loss and PSNR curves (``curves.png``)
  beside the checkpoint, both replaced atomically;
* **DDP** when launched by ``torchrun``: samples sharded with
  ``DistributedSampler``, gradients averaged by ``DistributedDataParallel``,
  rank 0 alone validating and writing files.

Examples
--------
>>> import torch
>>> from restorekit.training import fit, TrainConfig, seed_everything
>>> from restorekit.training.datasets import Patches, DegradedPairs, AddNoise
>>> seed_everything(0)
>>> net = torch.nn.Conv2d(1, 1, 3, padding=1)
>>> pairs = DegradedPairs(Patches([torch.rand(1, 64, 64)], size=16), AddNoise(0.1))
>>> result = fit(net, pairs, TrainConfig(epochs=2, batch_size=4, progress=False))
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
RESUME_KEYS = ("batch_size", "seed", "samples_per_epoch", "world_size")


@dataclass
class TrainConfig:
    """What defines a training run (stored in its checkpoints).

    Parameters
    ----------
    epochs : int
        Passes over the training set (or over ``samples_per_epoch`` samples).
    batch_size : int
        Samples per step and per process (the course's 32).
    lr : float
        Adam's learning rate (the course's 1e-3).
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

    @property
    def is_main(self) -> bool:
        """True in the process that should write results (rank 0, or the only process)."""
        return self.rank == 0

    @property
    def final_val_psnr(self) -> float | None:
        values = self.history.get("val_psnr") or []
        return values[-1] if values else None


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (call before building the model)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(output, target)


def new_history() -> dict:
    return {"step": [], "loss": [], "epoch_loss": [], "val_step": [], "val_epoch": [], "val_psnr": [],
            "seconds": 0.0, "steps_per_epoch": 0}


def evaluate_psnr(model: torch.nn.Module, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
                  device: torch.device | str = "cpu") -> float:
    """Mean PSNR (dB) of ``model(degraded).clamp(0, 1)`` against ``clean`` over ``pairs``."""
    from ..metrics import psnr

    was_training = model.training
    model.eval()
    values = []
    with torch.no_grad():
        for degraded, clean in pairs:
            out = model(degraded.to(device)).clamp(0, 1).cpu()
            values.append(psnr(out, clean))
    model.train(was_training)
    return float(sum(values) / len(values))


def _epoch_batches(n: int, cfg: TrainConfig, epoch: int, ctx: distributed.DistContext) -> list[list[int]]:
    """This process's batches of sample indices for ``epoch`` (whole batches only)."""
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
    subset = torch.randperm(n, generator=gen)[: cfg.samples_per_epoch].tolist() if cfg.samples_per_epoch else list(range(n))
    sampler = DistributedSampler(subset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    order = [subset[i] for i in sampler]
    count = len(order) // cfg.batch_size
    return [order[i * cfg.batch_size:(i + 1) * cfg.batch_size] for i in range(count)]


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


def fit(model: torch.nn.Module, train_set: Any, config: TrainConfig | None = None,
        val_pairs: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
        out: str | os.PathLike | None = None, resume: bool = False,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        title: str = "", extra_state: dict | None = None) -> FitResult:
    """Train ``model`` on ``train_set`` with Adam; checkpoint, validate and plot along the way.

    Parameters
    ----------
    model : torch.nn.Module
        The network; called as ``model(degraded)`` and compared with ``clean``.
    train_set : Dataset
        Yields ``(degraded, clean)`` pairs; ``set_epoch(epoch)`` is called
        before each epoch when it exists (see :class:`.datasets.DegradedPairs`).
    config : TrainConfig
        The run's settings.
    val_pairs : sequence of (degraded, clean), optional
        Fixed ``(1, C, H, W)`` pairs whose mean PSNR is measured after every epoch.
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
    n = len(train_set)
    per_epoch = min(n, cfg.samples_per_epoch or n)
    steps_per_epoch = per_epoch // (cfg.batch_size * ctx.world_size)
    if steps_per_epoch < 1:
        raise InputError(f"the training set has {per_epoch} samples per epoch, fewer than one batch of "
                         f"{cfg.batch_size} per process ({ctx.world_size} process(es)); lower --batch-size or add images")
    total_steps = steps_per_epoch * cfg.epochs

    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = new_history()
    history["steps_per_epoch"] = steps_per_epoch
    start_epoch, start_step = 0, 0
    if resume:
        if out_dir is None:
            raise InputError("resume=True needs the output folder of the run to continue (--out)")
        state = load_checkpoint(out_dir / CHECKPOINT_NAME)
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
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        start_epoch, start_step = int(state["epoch"]), int(state["step_in_epoch"])

    net = model
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def checkpoint(epoch: int, step_in_epoch: int) -> None:
        if out_dir is None or not ctx.is_main:
            return
        save_checkpoint(out_dir / CHECKPOINT_NAME, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
            "step_in_epoch": step_in_epoch, "history": history, "config": asdict(cfg),
            "extra": dict(extra_state or {}),
        })
        write_history(out_dir, history)

    def set_lr(global_step: int) -> None:
        drop = cfg.lr_drop_at is not None and global_step >= cfg.lr_drop_at * total_steps
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * (0.1 if drop else 1.0)

    bar = tqdm(total=total_steps, initial=start_epoch * steps_per_epoch + start_step, desc=title or "training",
               disable=not (cfg.progress and ctx.is_main), dynamic_ncols=True)
    started = time.time() - float(history.get("seconds", 0.0))
    net.train()
    try:
        for epoch in range(start_epoch, cfg.epochs):
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            batches = _epoch_batches(n, cfg, epoch, ctx)[:steps_per_epoch]
            first = start_step if epoch == start_epoch else 0
            loader = DataLoader(train_set, batch_sampler=batches[first:], num_workers=cfg.num_workers)
            interval, epoch_sum, epoch_count = [], 0.0, 0
            for step, (degraded, clean) in enumerate(loader, start=first):
                global_step = epoch * steps_per_epoch + step
                set_lr(global_step)
                degraded, clean = degraded.to(device), clean.to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(net(degraded), clean)
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
                    checkpoint(epoch, step + 1)
            history["epoch_loss"].append(
                distributed.mean_over_processes(epoch_sum / max(epoch_count, 1), ctx) if epoch_count else float("nan"))
            if val_pairs:
                value = evaluate_psnr(model, val_pairs, device) if ctx.is_main else 0.0
                value = distributed.broadcast_float(value, ctx)
                history["val_step"].append((epoch + 1) * steps_per_epoch)
                history["val_epoch"].append(epoch + 1)
                history["val_psnr"].append(value)
                if ctx.is_main and cfg.progress:
                    bar.write(f"epoch {epoch + 1}/{cfg.epochs}: loss {history['epoch_loss'][-1]:.4g}, "
                              f"validation PSNR {value:.2f} dB")
            history["seconds"] = time.time() - started
            checkpoint(epoch + 1, 0)
            if out_dir is not None and ctx.is_main:
                curves_figure(history, out_dir / "curves.png", title)
            distributed.barrier(ctx)
    finally:
        bar.close()
        distributed.cleanup(ctx)
    return FitResult(model=model, history=history, out=out_dir, config=cfg, rank=ctx.rank)


__all__ = ["FitResult", "TrainConfig", "curves_figure", "evaluate_psnr", "fit", "mse_loss", "new_history",
           "seed_everything", "write_history"]
