"""The GPU recipe (benchmarks/gpu_check.sh) is ready for the day a GPU is lent: its syntax, its dry run on
the CPU (every step's command is printed, the timing script runs each case once on the CPU), and the
options it passes to the trainer exist."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run_recipe(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run(["bash", str(SCRIPT), "--python", sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_recipe_parses():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_dry_run_prints_every_step_and_runs_the_timings_on_the_cpu(tmp_path):
    out = tmp_path / "gpu"
    data = tmp_path / "data" / "CBSD432"
    data.mkdir(parents=True)  # the training step is planned only when training data is found
    result = run_recipe("--dry-run", "--out", str(out), "--data", str(data.parent), tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (out / "summary.txt").read_text()
    for step in ("step 02 build", "step 03 cuda-tests", "step 04 timings", "step 05 training"):
        assert step in summary, summary
    assert "--init-from benchmarks/training/drunet-color-deep/checkpoint.pt --widths 16,32,64,128 --blocks 4" in summary
    assert "--batch-size 64" in summary and "--device cuda" in summary
    timings = json.loads((out / "gpu_bench_dry_run.json").read_text())
    assert timings["dry_run"] is True and timings["gpu"] is None
    assert "cpu_s" in timings["cases"]["drunet"] and "cpu_s" in timings["cases"]["pnp"]


def test_dry_run_trains_the_network_a_given_checkpoint_holds(tmp_path):
    """--checkpoint (e.g. a grown network's): the training step reads its widths and blocks from it."""
    pytest.importorskip("torch")
    from restorekit.training import save_checkpoint
    from restorekit_plugins.drunet.model import DRUNet

    grown = save_checkpoint(tmp_path / "grown.pt", {"model": DRUNet(3, (8, 8, 16, 24), blocks=3).state_dict()})
    data = tmp_path / "data" / "CBSD432"
    data.mkdir(parents=True)
    result = run_recipe("--dry-run", "--out", str(tmp_path / "gpu"), "--data", str(data.parent),
                        "--checkpoint", str(grown), tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (tmp_path / "gpu" / "summary.txt").read_text()
    assert f"--init-from {grown} --widths 8,8,16,24 --blocks 3" in summary, summary


def test_bad_arguments_are_one_line(tmp_path):
    result = run_recipe("--train-seconds", "soon", tmp_path=tmp_path)
    assert result.returncode == 2 and "--train-seconds must be a whole number" in result.stderr
    result = run_recipe("--frobnicate", tmp_path=tmp_path)
    assert result.returncode == 2 and "unknown argument '--frobnicate'" in result.stderr


def test_without_a_gpu_the_real_run_refuses_in_one_line(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the real recipe would run")
    result = run_recipe("--out", str(tmp_path / "gpu"), tmp_path=tmp_path)
    assert result.returncode == 2
    assert "no CUDA device visible" in result.stdout


def test_gpu_bench_refuses_without_a_gpu_unless_dry():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py")], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 2 and "--dry-run" in result.stderr
