"""Super-resolution end to end: 'degrade --scale', 'restore --scale', 'bench --task superresolve', and the
bad inputs (a scale that is not an integer >= 2, an image too small, a kernel larger than the low-resolution
image), each one line with exit 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restorekit.bench import run_benchmark
from restorekit.cli._specs import image_seed
from restorekit.cli.main import main
from restorekit.degrade import Compose, Downsample, Noise
from restorekit.errors import InputError
from restorekit.imageio import read_image, write_image
from restorekit.kernels import load_kernel
from restorekit.metrics import psnr
from restorekit.registry import default_registry
from restorekit.restorer import TASKS


def _smooth(h, w, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, c, max(h // 6, 2), max(w // 6, 2), generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def expect_error(capsys, folder, argv, *fragments):
    before = _files(folder)
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert _files(folder) == before, "a failed command must not write anything"


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    write_image(path, _smooth(41, 50, seed=1))  # not a multiple of 2: degrade crops to 40x50
    return path


def _has_bicubic():
    if "bicubic" not in default_registry().names():
        pytest.skip("the interp plugin's entry point is not installed yet (pip install -e .)")


def test_superresolve_is_a_task():
    assert "superresolve" in TASKS


# --------------------------------------------------------------------------- degrade --scale
def test_degrade_scale_crops_to_a_multiple_and_matches_the_api(capsys, photo, tmp_path):
    out = tmp_path / "small.npy"
    code, stdout, err = run(capsys, "degrade", photo, "-o", out, "--scale", "2", "--noise", "0.01", "--seed", "3",
                            "--boundary", "circular")
    assert code == 0 and "degraded 1 image" in stdout
    assert "41x50" in err and "40x50" in err  # the note about the dropped row
    x = read_image(photo).tensor[..., :40, :50]
    expected = Compose(Downsample(2), Noise(0.01)).apply(x, seed=image_seed(3, "photo.png"))
    got = read_image(out).tensor
    assert got.shape == (1, 3, 20, 25) and torch.equal(got, expected)


def test_degrade_scale_with_a_kernel_uses_it_before_decimation(capsys, photo, tmp_path):
    out = tmp_path / "g.npy"
    code, _, _ = run(capsys, "degrade", photo, "-o", out, "--scale", "2", "--kernel", "gauss:1.0")
    assert code == 0
    x = read_image(photo).tensor[..., :40, :50]
    assert torch.allclose(read_image(out).tensor, Downsample(2, load_kernel("gauss:1.0"), "reflect").forward(x))


def test_degrade_scale_shrinks_the_alpha_channel(capsys, tmp_path):
    alpha = torch.ones(1, 1, 32, 32)
    write_image(tmp_path / "rgba.png", _smooth(32, 32), alpha=alpha)
    code, _, _ = run(capsys, "degrade", tmp_path / "rgba.png", "-o", tmp_path / "out.png", "--scale", "2")
    assert code == 0
    got = read_image(tmp_path / "out.png")
    assert got.tensor.shape == (1, 3, 16, 16) and got.alpha.shape == (1, 1, 16, 16)


@pytest.mark.parametrize("scale", ["1", "2.5", "two", "0", "-2"])
def test_degrade_refuses_a_scale_that_is_not_an_integer_of_at_least_2(capsys, photo, tmp_path, scale):
    expect_error(capsys, tmp_path, ["degrade", photo, "-o", tmp_path / "o.npy", "--scale", scale],
                 "scale must be an integer >= 2")


def test_degrade_refuses_an_image_too_small_for_the_scale(capsys, tmp_path):
    write_image(tmp_path / "tiny.png", _smooth(3, 3))
    expect_error(capsys, tmp_path, ["degrade", tmp_path / "tiny.png", "-o", tmp_path / "o.npy", "--scale", "4"],
                 "too small to downsample by 4")  # one file given: its name is the user's own argument


def test_degrade_refuses_a_kernel_larger_than_the_low_resolution_image(capsys, tmp_path):
    write_image(tmp_path / "small.png", _smooth(20, 20))
    expect_error(capsys, tmp_path, ["degrade", tmp_path / "small.png", "-o", tmp_path / "o.npy", "--scale", "2",
                                    "--kernel", "box:11"],
                 "kernel (11x11) is larger than the low-resolution image (10x10)")
    expect_error(capsys, tmp_path, ["degrade", tmp_path / "small.png", "-o", tmp_path / "o.npy", "--scale", "4"],
                 "anti-aliasing kernel for x4 (18x18) is larger than the low-resolution image (5x5)")


def test_degrade_refuses_a_mask_with_a_scale(capsys, photo, tmp_path):
    expect_error(capsys, tmp_path, ["degrade", photo, "-o", tmp_path / "o.npy", "--scale", "2", "--mask",
                                    "lower-half"], "--mask and --scale")


# --------------------------------------------------------------------------- restore --scale
def test_restore_scale_makes_the_output_scale_times_larger(capsys, tmp_path):
    _has_bicubic()
    x = _smooth(48, 64)
    d = Downsample(2, boundary="reflect")
    write_image(tmp_path / "small.npy", d.forward(x))
    code, stdout, _ = run(capsys, "restore", tmp_path / "small.npy", "-o", tmp_path / "big.npy",
                          "--method", "bicubic", "--scale", "2")
    assert code == 0, stdout
    got = read_image(tmp_path / "big.npy").tensor
    assert got.shape == (1, 3, 48, 64)
    assert torch.equal(got, F.interpolate(d.forward(x), scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1))


@pytest.mark.parametrize("extra,fragment", [
    (["--scale", "1.5"], "scale must be an integer >= 2"),
    (["--scale", "4"], "anti-aliasing kernel for x4 (18x18) is larger than the low-resolution image (12x16)"),
    (["--scale", "2", "--kernel", "box:13"], "kernel (13x13) is larger than the low-resolution image (12x16)"),
])
def test_restore_scale_bad_input(capsys, tmp_path, extra, fragment):
    _has_bicubic()
    write_image(tmp_path / "small.npy", _smooth(12, 16))
    expect_error(capsys, tmp_path, ["restore", tmp_path / "small.npy", "-o", tmp_path / "big.npy",
                                    "--method", "bicubic", *extra], fragment)


# --------------------------------------------------------------------------- bench
def test_bench_superresolve_scores_against_the_cropped_original():
    _has_bicubic()
    images = {"a": _smooth(49, 66, seed=2), "b": _smooth(48, 64, seed=3)}
    result = run_benchmark(images, "superresolve", ["bicubic"], sigmas=[0.0], scale=2, progress=False, keep=2)
    assert result.settings["scale"] == 2 and "x2" in result.settings["degradation"]
    row = result.row("bicubic", 0.0)
    # Measured again by hand: bicubic of the circularly downsampled image against the cropped original.
    x = images["a"][..., :48, :66]
    expected = psnr(F.interpolate(Downsample(2).forward(x), scale_factor=2, mode="bicubic",
                                  align_corners=False).clamp(0, 1), x)
    per_image = [r["psnr"] for r in result.records if r["image"] == "a"]
    assert per_image == [pytest.approx(expected, abs=1e-4)]
    assert row.psnr > result.baseline[0].psnr  # bicubic beats pixel repetition of the input
    assert result.examples[0].outputs["bicubic"].shape == (1, 3, 48, 66)


def test_bench_superresolve_cli_writes_json(capsys, tmp_path):
    _has_bicubic()
    data = tmp_path / "data"
    data.mkdir()
    write_image(data / "a.png", _smooth(72, 76))  # x4: the 18x18 default kernel fits the 18x19 input
    code, out, err = run(capsys, "bench", "--data", data, "--task", "superresolve", "--scale", "4", "--methods",
                         "bicubic", "--sigmas", "0", "--no-progress", "--json", tmp_path / "r.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["scale"] == 4 and report["rows"][0]["method"] == "bicubic"
    assert "| 0 | bicubic |" in out


@pytest.mark.parametrize("extra,fragment", [
    (["--task", "superresolve", "--scale", "1"], "scale must be an integer >= 2"),
    (["--task", "denoise", "--scale", "2"], "only used by --task superresolve"),
    (["--task", "superresolve", "--scale", "8"], "larger than the low-resolution image"),
])
def test_bench_superresolve_bad_input(capsys, tmp_path, extra, fragment):
    data = tmp_path / "data"
    data.mkdir()
    write_image(data / "a.png", _smooth(24, 24))
    expect_error(capsys, tmp_path, ["bench", "--data", data, "--no-progress", "--methods", "bicubic", *extra], fragment)


def test_bench_superresolve_refuses_images_smaller_than_one_block():
    with pytest.raises(InputError, match="too small to downsample by 4"):
        run_benchmark({"t": torch.rand(1, 1, 3, 8)}, "superresolve", ["bicubic"], scale=4, progress=False)
