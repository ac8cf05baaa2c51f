"""Tiling: overlapping tiles blended without seams, sized from a memory budget; tiled = whole where it fits."""

from __future__ import annotations

import pytest
import torch

import restorekit
from restorekit.degrade import Blur, Compose, Noise
from restorekit.errors import ParameterError
from restorekit.metrics import psnr
from restorekit.tiling import blend_weights, parse_memory, plan_tiles, restore_in_tiles, tile_starts


def _photo(h: int, w: int) -> torch.Tensor:
    from skimage import data, transform

    img = transform.resize(data.astronaut(), (h, w), anti_aliasing=True)
    return torch.from_numpy(img).float().permute(2, 0, 1)[None].clamp(0, 1)


def _conv_stack(layers: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    mods = []
    for i in range(layers):
        mods += [torch.nn.Conv2d(3 if i == 0 else 6, 6 if i < layers - 1 else 3, 3, padding=1), torch.nn.ReLU()]
    return torch.nn.Sequential(*mods[:-1])


@pytest.mark.parametrize("shape, tile, align", [((61, 77), (24, 30), 1), ((64, 96), (32, 32), 8), ((50, 20), (24, 24), 4)])
def test_tiles_reproduce_the_whole_image_exactly_for_a_conv_stack(shape, tile, align):
    net = _conv_stack(3)  # receptive field 7: margin 3 suffices
    x = torch.rand(2, 3, *shape)
    with torch.no_grad():
        whole = net(x)
        tiled = restore_in_tiles(net, x, tile, margin=3, blend=4, align=align)
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_blend_weights_cover_every_pixel_and_fade_smoothly():
    length, tile, margin, blend = 100, 30, 5, 6
    spans = tile_starts(length, tile, tile - 2 * margin - blend)
    assert spans[0][0] == 0 and spans[-1][1] == length
    total = sum(torch.nn.functional.pad(blend_weights(a, b, length, margin, blend), (a, length - b))
                for a, b in spans)
    assert float(total.min()) > 0.4  # no pixel without a tile
    w = blend_weights(30, 60, length, margin, blend)
    assert w[:margin].abs().max() == 0 and w[-margin:].abs().max() == 0  # margins never used
    assert float(w[15]) == 1 and bool((w[margin:margin + blend].diff() >= 0).all())
    assert float(blend_weights(0, 30, length, margin, blend)[0]) == 1  # image border kept


def test_plan_from_a_memory_budget():
    assert plan_tiles(100, 100, 1, 100.0, 10**7, margin=10, blend=8) is None  # fits whole
    th, tw = plan_tiles(3000, 4000, 1, 400.0, 2**30, margin=12, blend=8)
    assert th * tw * 400 <= 2**30 and th > 1000
    th, tw = plan_tiles(3000, 4000, 2, 400.0, 2**30, margin=12, blend=8, align=8)
    assert th % 8 == 0 and (th + 8) * (tw + 8) * 400 * 2 <= 2**30  # the batch counts, last tile's slack too
    th, tw = plan_tiles(40, 100000, 1, 400.0, 2**26, margin=12, blend=8)
    assert th == 40 and 40 * tw * 400 <= 2**26  # a thin strip: full height, long tiles
    with pytest.raises(ParameterError, match=r"max_memory.*does not hold.*--max-memory"):
        plan_tiles(3000, 4000, 1, 400.0, 10**5, margin=50, blend=25, owner="unet")
    with pytest.raises(ParameterError, match=r"'tile' of 'unet' is 64, too small.*tile >= 1"):
        plan_tiles(3000, 4000, 1, 400.0, 2**30, margin=50, blend=25, tile=64, owner="unet")
    assert plan_tiles(300, 400, 1, 400.0, 10, margin=5, blend=8, tile=512) is None  # tile larger than the image


def test_memory_sizes():
    assert parse_memory("2GiB") == 2 * 2**30 and parse_memory("512 MiB") == 512 * 2**20
    assert parse_memory("1.5GB") == 1_500_000_000 and parse_memory(4096) == 4096 and parse_memory("Auto") == "auto"
    for bad in ("-1GiB", "two", "0", "1 parsec", True):
        with pytest.raises(ValueError):
            parse_memory(bad)


def test_dncnn_tiled_agrees_with_whole_within_0_05_db():
    x = _photo(90, 120)
    y = Noise(0.1).apply(x, seed=0)
    whole = restorekit.create("dncnn")(y)
    tiled_r = restorekit.create("dncnn", tile=64)
    assert tiled_r.plan(tiled_r.net, y) == (64, 64)
    tiled = tiled_r(y)
    assert abs(psnr(tiled, x) - psnr(whole, x)) < 0.05
    assert float((tiled - whole).abs().max()) < 1e-3  # margins cover the receptive field: no seams


def test_unet_tiled_agrees_with_whole_within_0_05_db():
    from restorekit.kernels import load_kernel

    x = _photo(150, 180)
    d = Compose(Blur(load_kernel("course")), Noise(0.01))
    y = d.apply(x, seed=0)
    whole = restorekit.create("unet")(y, d)
    tiled_r = restorekit.create("unet", tile=136)
    rows, cols = tiled_r.plan(tiled_r.net, y, d)
    assert (rows, cols) == (136, 136) and rows % tiled_r.net.multiple == 0
    tiled = tiled_r(y, d)
    assert abs(psnr(tiled, x) - psnr(whole, x)) < 0.05
    assert float((tiled - whole).abs().max()) < 1e-3


def test_a_small_budget_tiles_automatically_and_a_tiny_one_is_refused():
    y = Noise(0.1).apply(_photo(64, 80), seed=1)
    r = restorekit.create("dncnn", max_memory="1MiB")
    plan = r.plan(r.net, y)
    assert plan is not None and plan[0] * plan[1] * r.bytes_per_pixel(r.net, 3) <= 2**20
    assert abs(psnr(r(y), y) - psnr(restorekit.create("dncnn")(y), y)) < 0.05
    with pytest.raises(ParameterError, match="max_memory"):
        restorekit.create("dncnn", max_memory="10KiB")(y)


@pytest.mark.slow
def test_restore_cli_tile_and_max_memory(tmp_path, capsys):
    import numpy as np

    from restorekit.cli.main import main

    y = Noise(0.1).apply(_photo(70, 90), seed=2)[0].permute(1, 2, 0).numpy()
    src = tmp_path / "noisy.npy"
    np.save(src, y.astype("float32"))
    assert main(["restore", str(src), "-o", str(tmp_path / "whole.npy"), "--method", "dncnn"]) == 0
    assert main(["restore", str(src), "-o", str(tmp_path / "tiled.npy"), "--method", "dncnn", "--tile", "48"]) == 0
    whole, tiled = np.load(tmp_path / "whole.npy"), np.load(tmp_path / "tiled.npy")
    assert np.abs(whole - tiled).max() < 1e-3
    capsys.readouterr()
    assert main(["restore", str(src), "-o", str(tmp_path / "x.npy"), "--method", "dncnn", "--tile", "8"]) == 2
    assert "too small" in capsys.readouterr().err
    assert main(["restore", str(src), "-o", str(tmp_path / "x.npy"), "--method", "dncnn",
                 "--max-memory", "10KiB"]) == 2
    assert "raise max_memory" in capsys.readouterr().err
    assert main(["restore", str(src), "-o", str(tmp_path / "x.npy"), "--method", "wiener", "--kernel", "course",
                 "--max-memory", "10KiB"]) == 2
    assert "'wiener' needs about" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()
