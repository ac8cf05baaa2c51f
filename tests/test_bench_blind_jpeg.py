"""benchmarks/bench_blind_jpeg.py: refinement settings compared on JPEG'd photos (runs on a tiny folder)."""
from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.parametrize("argv, fragment", [
    (["--cases", "0-2"], "--cases takes A:B pairs"),
    (["--settings", "3"], "--settings takes A:B[:C] items"),
    (["--settings", "3:1:vertical:x"], "--settings takes A:B[:C] items"),
    (["--settings", "3:1:sideways"], "starts must be one or more of"),
    (["--settings", "3:0"], "relaxation must be a number in (0, 4]"),
    (["--settings=-1:2"], "ROUNDS"),
])
def test_bad_arguments_exit_with_one_line(argv, fragment, load_benchmark):
    with pytest.raises(SystemExit) as stop:
        load_benchmark("bench_blind_jpeg").main(argv)
    assert fragment in str(stop.value) and "\n" not in str(stop.value)


def test_runs_and_writes_the_table(tmp_path, load_benchmark):
    from skimage import data

    from restorekit.imageio import write_image

    folder = tmp_path / "photos"
    folder.mkdir()
    import torch

    crop = data.astronaut()[:80, 150:230].astype(np.float32) / 255
    write_image(folder / "a.png", torch.from_numpy(crop).permute(2, 0, 1)[None])
    out = tmp_path / "res"
    assert load_benchmark("bench_blind_jpeg").main(["--data", str(folder), "--cases", "0:2", "--settings", "0:1:horizontal,1:2", "--size", "9",
                        "--out", str(out)]) == 0
    table = (tmp_path / "res.md").read_text()
    assert "| a.png | levin:2 |" in table
    from restorekit.estimate.kernel import KERNEL_STARTS

    assert f"1 rounds x2, {'+'.join(KERNEL_STARTS)} - 0 rounds x1, horizontal" in table
    record = json.loads((tmp_path / "res.json").read_text())
    assert record["settings"] == [[0, 1.0, ["horizontal"]], [1, 2.0, list(KERNEL_STARTS)]]
    assert len(record["cases"][0]["psnr"]) == 2
    assert all(np.isfinite(record["cases"][0]["psnr"]))
    with pytest.raises(SystemExit, match="outside the 1 images"):
        load_benchmark("bench_blind_jpeg").main(["--data", str(folder), "--cases", "3:2", "--out", str(out)])
