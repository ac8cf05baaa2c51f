"""benchmarks/compare_kernel_starts.py: each start of the kernel estimate, and each set kept by its best fit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def test_a_set_keeps_the_kernel_of_least_misfit(load_benchmark):
    cases = [{"starts": {"a": {"similarity": 0.5, "misfit": 2.0}, "b": {"similarity": 0.9, "misfit": 1.0}}},
             {"starts": {"a": {"similarity": 0.95, "misfit": 1.0}, "b": {"similarity": 0.6, "misfit": 3.0}}}]
    rows = load_benchmark("compare_kernel_starts").table(cases, ["a", "b"])
    best = rows[2]  # header, rule, then the best set first
    assert best.startswith("| a+b | 2 | 0.9250 | 0.900 | 0 |")
    assert "| a | 1 | 0.7250 | 0.500 | 1 |" in rows and "| b | 1 | 0.7500 | 0.600 | 1 |" in rows
    assert rows[-1].startswith("| oracle (the most similar of all) | 2 | 0.9250")


def test_similarity_forgives_shifts_only(load_benchmark):
    module = load_benchmark("compare_kernel_starts")
    k = np.zeros((9, 9))
    k[4, 2:7] = 0.2
    assert module.similarity(np.roll(k, 2, axis=1), k) == pytest.approx(1.0)
    assert module.similarity(k.T, k) < 0.5


def test_runs_writes_and_resumes(tmp_path, load_benchmark):
    import torch
    from skimage import data

    from restorekit.imageio import write_image

    folder = tmp_path / "photos"
    folder.mkdir()
    crop = data.astronaut()[:72, 150:222].astype(np.float32) / 255
    write_image(folder / "a.png", torch.from_numpy(crop).permute(2, 0, 1)[None])
    out = str(tmp_path / "starts")
    argv = ["--data", str(folder), "--images", "1", "--kernels", "gauss:1.2", "--size", "9", "--out", out]
    assert load_benchmark("compare_kernel_starts").main(argv) == 0
    record = json.loads(Path(out + ".json").read_text())
    assert [c["kernel"] for c in record["cases"]] == ["gauss:1.2"]
    assert set(record["cases"][0]["starts"]) == {"horizontal", "vertical", "diagonal", "antidiagonal"}
    assert "| oracle" in Path(out + ".md").read_text()
    assert load_benchmark("compare_kernel_starts").main(argv) == 0  # resumes: the case is read back, not run again
    assert json.loads(Path(out + ".json").read_text()) == record
