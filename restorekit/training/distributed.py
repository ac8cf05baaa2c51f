"""Data-parallel training under ``torchrun`` (PyTorch DDP).

Launch any training command with ``torchrun`` and it runs on several
processes, each on its share of every epoch's samples::

    torchrun --nproc-per-node 2 -m restorekit.cli.main train dncnn --data DIR --out runs/x

:func:`setup` reads the variables ``torchrun`` sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and joins
the process group: ``gloo`` on the CPU, ``nccl`` on CUDA GPUs (one per local
rank). Without them it returns a single-process context and nothing changes.
The training loop wraps the model in ``DistributedDataParallel``, shards the
samples with ``DistributedSampler``, and lets rank 0 alone show progress,
validate, write checkpoints and figures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank, the number of processes, its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that logs and writes files)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when the environment says this process is one of several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str = "cpu") -> DistContext:
    """Join the process group when launched by ``torchrun``; otherwise a single-process context.

    Parameters
    ----------
    device : str
        ``"cpu"`` (gloo backend) or ``"cuda"`` (nccl; each process takes GPU ``LOCAL_RANK``).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistContext(rank, world, local, _device(device, local), False)
    if not launched_by_torchrun():
        return DistContext(device=device)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    dev = _device(device, local)
    backend = "nccl" if dev.startswith("cuda") else "gloo"
    if dev.startswith("cuda"):
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local, dev, True)


def _device(device: str, local_rank: int) -> str:
    if device.startswith("cuda") and ":" not in device:
        return f"cuda:{local_rank}"
    return device


def cleanup(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup` joined it."""
    import torch.distributed as dist

    if ctx.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op in a single process)."""
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def mean_over_processes(value: float, ctx: DistContext) -> float:
    """The mean of ``value`` over all processes (``value`` itself in a single process)."""
    if not ctx.distributed:
        return float(value)
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def broadcast_float(value: float, ctx: DistContext) -> float:
    """Rank 0's ``value`` on every process."""
    if not ctx.distributed:
        return float(value)
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.broadcast(t, src=0)
    return float(t.item())


__all__ = ["DistContext", "barrier", "broadcast_float", "cleanup", "launched_by_torchrun", "mean_over_processes",
           "setup"]
