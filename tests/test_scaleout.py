"""restore and bench spread over processes: sharding, merging, and two CPU processes under torchrun."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from restorekit.bench import run_benchmark
from restorekit.errors import RestorekitError
from restorekit.imageio import write_image
from restorekit.scaleout import merge_bench_results, run_everywhere, shard, shard_indices
from restorekit.training.distributed import DistContext


def _images(n=5, size=32):
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 3, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def test_shard_gives_every_item_to_exactly_one_rank():
    items = list(range(7))
    parts = [shard(items, DistContext(rank=r, world_size=3)) for r in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    assert [list(shard_indices(7, DistContext(rank=r, world_size=3))) for r in range(3)] == parts
    assert shard(items, DistContext()) == items


def test_run_everywhere_in_one_process():
    assert run_everywhere(lambda: 3, DistContext()) == [3]

    def bad():
        raise RestorekitError("image x.png is damaged")

    with pytest.raises(RestorekitError, match="x.png is damaged"):
        run_everywhere(bad, DistContext())


def test_bench_parts_merge_into_the_whole_run():
    """Each rank's part (its images, their own seeds) merged equals one process measuring everything."""
    images = _images(3, size=16)
    kwargs = dict(methods=["wiener", "wiener:snr=100"], sigmas=[0.01, 0.02], progress=False, seed=3)
    whole = run_benchmark(images, "deblur", **kwargs)
    parts = [run_benchmark(images, "deblur", part=(r, 2), **kwargs) for r in range(2)]
    assert [len({rec["image"] for rec in p.records}) for p in parts] == [2, 1]
    merged = merge_bench_results(parts)
    assert merged.settings["processes"] == 2 and merged.settings["images"] == 3
    assert [(r["image"], r["sigma"], r["method"]) for r in merged.records] == \
        [(r["image"], r["sigma"], r["method"]) for r in whole.records]
    assert [r["psnr"] for r in merged.records] == pytest.approx([r["psnr"] for r in whole.records], abs=1e-9)
    for got, want in zip(merged.rows + merged.baseline, whole.rows + whole.baseline):
        assert (got.method, got.sigma, got.images) == (want.method, want.sigma, want.images)
        assert got.psnr == pytest.approx(want.psnr, abs=1e-9) and got.ssim == pytest.approx(want.ssim, abs=1e-9)


def test_a_method_that_failed_on_one_rank_is_left_out_everywhere():
    images = _images(4, size=16)
    kwargs = dict(methods=["wiener"], sigmas=[0.01], progress=False)
    parts = [run_benchmark(images, "deblur", part=(r, 2), **kwargs) for r in range(2)]
    parts[1].records = []
    from restorekit.bench import Skipped

    parts[1].skipped.append(Skipped("wiener", "failed on image1: out of range"))
    merged = merge_bench_results(parts)
    assert merged.rows == [] and merged.records == [] and [k.method for k in merged.skipped] == ["wiener"]
    assert merged.baseline[0].images == 4 and not math.isnan(merged.baseline[0].psnr)


# --------------------------------------------------------------------------- torchrun, two CPU processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*argv, nproc=2):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    cmd = [str(torchrun), "--nproc-per-node", str(nproc), "--master-port", str(_free_port()),
           "-m", "restorekit.cli.main", *map(str, argv)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def _cli(*argv):
    from restorekit.cli.main import main

    return main([str(a) for a in argv])


@pytest.mark.slow  # two fresh interpreters import torch
def test_torchrun_restore_shares_the_files_and_reports_once(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i, image in enumerate(_images(5)):
        write_image(src / f"{'abcde'[i]}.png", image[None])
    (src / "b.png").write_bytes((src / "a.png").read_bytes()[:60])  # damaged: rank 1's first file
    proc = _torchrun("restore", src, "-o", tmp_path / "out", "--method", "dncnn")
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("restorekit restore:")]
    assert len(ours) == 2, proc.stderr[-3000:]
    assert "b.png" in ours[0] or "b.png" in ours[1]
    summary = [line for line in ours if "of 5 images failed" in line]
    assert len(summary) == 1 and "4 restored" in summary[0], ours
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png", "d.png", "e.png"]
    assert "restored 4 images with dncnn" in proc.stdout and "(2 processes)" in proc.stdout
    # the same bytes as one process writes
    (src / "b.png").unlink()
    assert _cli("restore", src, "-o", tmp_path / "one", "--method", "dncnn") == 0
    for name in "acde":
        assert (tmp_path / "out" / f"{name}.png").read_bytes() == (tmp_path / "one" / f"{name}.png").read_bytes()


@pytest.mark.slow  # two fresh interpreters import torch
def test_torchrun_bench_gathers_the_table_on_rank_0(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    for i, image in enumerate(_images(3)):
        write_image(src / f"{i}.png", image[None])
    args = ["bench", "--data", src, "--task", "deblur", "--methods", "wiener", "--sigmas", "0.01", "--no-progress"]
    proc = _torchrun(*args, "--json", tmp_path / "two.json", "--markdown", tmp_path / "two.md", "--figure", tmp_path / "two.png")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # issue 16: under load a rank once aborted at exit ("terminate called without an active exception", a C++
    # thread left running); every rank now leaves through the same barrier and process-group cleanup
    assert "terminate called" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout.count("| 0.01 | wiener |") == 1, "rank 0 alone prints the table"
    assert "2 processes" in proc.stdout
    assert (tmp_path / "two.png").stat().st_size > 0 and (tmp_path / "two.md").read_text().count("| wiener |") == 1
    assert _cli(*args, "--json", tmp_path / "one.json") == 0
    two, one = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("two", "one"))
    assert [r["image"] for r in two["records"]] == [r["image"] for r in one["records"]] == ["0.png", "1.png", "2.png"]
    assert [r["psnr"] for r in two["records"]] == pytest.approx([r["psnr"] for r in one["records"]], abs=1e-9)
    assert two["rows"][0]["psnr"] == pytest.approx(one["rows"][0]["psnr"], abs=1e-9) and two["rows"][0]["images"] == 3
    assert two["settings"]["processes"] == 2
