"""Data-parallel training: two processes with gloo on the CPU, as torchrun would start them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp

from restorekit.degrade import DegradationSampler
from restorekit.training import CleanSamples, Patches, TrainConfig, fit, load_checkpoint, seed_everything


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _images():
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(2, 1, 4, 4, generator=gen)
    return list(torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    seed_everything(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 3, padding=1))
    samples = CleanSamples(Patches(_images(), size=8), seed=0)  # 32 patches: 4 steps of 2 x 4
    result = fit(net, samples, TrainConfig(epochs=3, batch_size=4, lr=5e-3, progress=False, log_every=1),
                 out=out if rank == 0 else None, sampler=DegradationSampler(sigma=0.1))
    torch.save({"state": net.state_dict(), "history": result.history, "rank": result.rank},
               Path(out).parent / f"rank{rank}.pt")


def test_two_processes_train_one_model(tmp_path):
    out = tmp_path / "run"
    mp.start_processes(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True, start_method="spawn")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert (r0["rank"], r1["rank"]) == (0, 1)
    for a, b in zip(r0["state"].values(), r1["state"].values()):
        assert torch.equal(a, b)  # gradients were averaged: both processes hold the same model
    h = r0["history"]
    assert h["steps_per_epoch"] == 4  # 32 samples / (batch 4 x 2 processes)
    assert h["epoch_loss"][-1] < h["epoch_loss"][0]
    assert h["loss"] == r1["history"]["loss"]  # the logged loss is the mean over both processes
    state = load_checkpoint(out / "checkpoint.pt")  # written by rank 0
    assert state["epoch"] == 3 and state["config"]["world_size"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "curves.png", "history.json"]


def test_torchrun_cli_two_processes(tmp_path):
    """`torchrun --nproc-per-node 2 -m restorekit.cli.main train dncnn ...` on a tiny folder."""
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data / f"{i}.png")
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-port", str(_free_port()), "-m", "restorekit.cli.main",
           "train", "dncnn", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "2",
           "--threads", "1", "--no-progress", "--", "--hidden-layers", "1", "--hidden-channels", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)  # generous: a loaded CI machine
    assert proc.returncode == 0, (proc.stdout[-1000:], proc.stderr[-3000:])
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["config"]["world_size"] == 2 and state["history"]["steps_per_epoch"] == 2  # 8 patches / (2 x 2)
