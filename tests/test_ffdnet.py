"""ffdnet: the noise-level-aware denoiser (model, restorer, noise-level sources, training, shipped weights)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import restorekit
from restorekit.degrade import Blur, Compose, Noise
from restorekit.errors import ParameterError, RestorekitWarning
from restorekit.metrics import psnr
from restorekit_plugins.ffdnet.model import FFDNet
from restorekit_plugins.ffdnet.restorer import WEIGHTS_DIR, FFDNetRestorer

SHIPPED = WEIGHTS_DIR / "ffdnet-color.pt"


@pytest.fixture
def tiny_weights(tmp_path):
    """A small FFDNet saved like shipped weights (sidecar, SHA-256, trained_for)."""
    from restorekit.weights import save_model

    torch.manual_seed(0)
    net = FFDNet(channels=3, hidden_layers=1, hidden_channels=8)
    for conv in net.net:
        if isinstance(conv, torch.nn.Conv2d):
            torch.nn.init.normal_(conv.weight, std=0.05)
    path = tmp_path / "tiny.pt"
    save_model(net, path, arch=net.arch(), metadata={
        "restorer": "ffdnet", "trained_for": {"tasks": ["denoise"], "kernel_sha256": None,
                                              "noise_sigma_range": [0.0, 0.21]}})
    return path


@pytest.mark.parametrize("downscale", [1, 2])
def test_model_keeps_odd_sizes_and_starts_as_identity(downscale):
    net = FFDNet(channels=3, hidden_layers=2, hidden_channels=8, downscale=downscale)
    x = torch.rand(2, 3, 17, 22)
    out = net.denoise(x, torch.tensor([0.05, 0.1]))
    assert out.shape == x.shape
    assert torch.equal(out, x)  # zero last layer: a new network is the identity
    assert net.receptive_field == downscale * (2 * 4 + 1)


def test_model_refuses_another_downscale():
    with pytest.raises(ValueError, match="downscale"):
        FFDNet(downscale=3)


def test_model_refuses_a_missing_sigma_map():
    with pytest.raises(ValueError, match="image \\+ sigma map"):
        FFDNet(channels=3, hidden_layers=1, hidden_channels=4)(torch.rand(1, 3, 8, 8))


def test_the_sigma_map_changes_the_output(tiny_weights):
    r = FFDNetRestorer(weights=str(tiny_weights))
    y = torch.rand(1, 3, 24, 30)
    low, high = r(y, Noise(0.01)), r(y, Noise(0.2))
    assert (low - high).abs().max() > 1e-4


def test_noise_level_sources_in_order(tiny_weights):
    y = torch.rand(2, 3, 24, 30)
    assert FFDNetRestorer(weights=str(tiny_weights), sigma=0.07).noise_levels(y, Noise(0.2)) == [0.07, 0.07]
    r = FFDNetRestorer(weights=str(tiny_weights))
    assert r.noise_levels(y, Noise(0.2)) == [0.2, 0.2]
    assert r.noise_levels(y, Noise(0.0)) == [0.0, 0.0]
    clean = torch.linspace(0, 1, 64)[None, None, :, None].expand(2, 3, 64, 64).contiguous()
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    estimated = r.noise_levels(noisy, None)
    assert len(estimated) == 2 and all(abs(s - 0.1) < 0.02 for s in estimated)


def test_declares_it_uses_the_noise_level():
    assert FFDNetRestorer.uses_noise_level is True
    assert restorekit.list_restorers("denoise")  # registered through the entry point
    assert "ffdnet" in [s.name for s in restorekit.list_restorers("denoise")]


@pytest.mark.parametrize("bad", ["25", "-0.1", "nan", "yes"])
def test_bad_sigma_parameter_is_one_clear_error(tiny_weights, bad):
    with pytest.raises(ParameterError, match="sigma"):
        FFDNetRestorer(weights=str(tiny_weights), sigma=bad)


def test_gray_goes_through_the_colour_model(tiny_weights):
    r = FFDNetRestorer(weights=str(tiny_weights))
    gray = 0.3 + 0.4 * torch.rand(1, 1, 26, 31)  # stays inside [0, 1], where clipping is the identity
    out = r(gray, Noise(0.05))
    expected = r(gray.expand(1, 3, -1, -1).contiguous(), Noise(0.05)).mean(dim=1, keepdim=True)
    assert out.shape == gray.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_tiled_matches_whole(tiny_weights):
    y = torch.rand(1, 3, 96, 90)
    whole = FFDNetRestorer(weights=str(tiny_weights))(y, Noise(0.1))
    tiled = FFDNetRestorer(weights=str(tiny_weights), tile=40)(y, Noise(0.1))
    assert psnr(tiled, whole) > 60


def test_warns_outside_its_training_range(tiny_weights):
    r = FFDNetRestorer(weights=str(tiny_weights))
    with pytest.warns(RestorekitWarning, match="outside"):
        r(torch.rand(1, 3, 24, 24), Noise(0.4))


def test_trains_and_exports(tmp_path, monkeypatch):
    from PIL import Image
    import numpy as np

    from restorekit_plugins.ffdnet import train

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((40, 44, 3)) * 255).astype("uint8")).save(folder / f"{i}.png")
    monkeypatch.setattr(train, "WEIGHTS_DIR", tmp_path / "weights")
    opts = train.FFDNetOptions(data=str(folder), gray_fraction=0.0, hidden_layers=1, hidden_channels=4, patch=16,
                               init_from="",
                               crops_per_epoch=8, epochs=1, batch_size=4, val_crop=16, checkpoint_every=0)
    result = train.train_ffdnet(opts, tmp_path / "run", export="mini", progress=False)
    assert len(result.history["epoch_loss"]) == 1
    meta = json.loads((tmp_path / "weights" / "mini.json").read_text())
    assert meta["metadata"]["trained_for"]["noise_sigma_range"] == [0.0, 0.21]
    assert meta["metadata"]["machine"]["cpu"]
    loaded = FFDNetRestorer(weights=str(tmp_path / "weights" / "mini.pt"))
    assert loaded.net.arch() == {"channels": 3, "hidden_layers": 1, "hidden_channels": 4, "downscale": 1}


def test_initialised_from_the_blind_dncnn_equals_it_until_trained():
    from restorekit_plugins.ffdnet.train import initialise_from

    net = FFDNet(channels=3, hidden_layers=10, hidden_channels=32)
    described = initialise_from(net, "dncnn")
    assert described.startswith("dncnn")
    donor = restorekit.create("dncnn")
    y = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(net.denoise(y, 0.1), donor.net(y))


def test_initialising_from_another_shape_is_one_clear_error():
    from restorekit.errors import InputError
    from restorekit_plugins.ffdnet.train import initialise_from

    with pytest.raises(InputError, match="--init-from"):
        initialise_from(FFDNet(channels=3, hidden_layers=3, hidden_channels=8), "dncnn")


@pytest.mark.skipif(not SHIPPED.is_file(), reason="ffdnet-color weights not trained yet")
def test_shipped_model_denoises_a_photo_given_the_level():
    from skimage import data

    clean = torch.from_numpy(data.astronaut()[100:228, 150:278]).permute(2, 0, 1)[None].float() / 255
    r = restorekit.create("ffdnet")
    for sigma in (0.05, 0.1, 0.2):
        d = Noise(sigma)
        noisy = d.apply(clean, seed=1)
        gain = psnr(r(noisy, d), clean) - psnr(noisy.clamp(0, 1), clean)
        assert gain > 4, (sigma, gain)
    assert math.isclose(r.trained_for["noise_sigma_range"][1], 0.21)
