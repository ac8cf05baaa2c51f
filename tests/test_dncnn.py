"""The dncnn plugin: shipped weights, denoising colour and gray images, bad input, the model itself."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import restorekit
from restorekit.degrade import Noise
from restorekit.errors import InputError, WeightsError
from restorekit.metrics import psnr
from restorekit_plugins.dncnn.model import DnCNN
from restorekit_plugins.dncnn.restorer import SHIPPED, WEIGHTS_DIR


def _photo(size: int = 96) -> torch.Tensor:
    """A colour photograph shipped with scikit-image, as a (1, 3, size, size) batch."""
    from skimage import data, transform

    img = transform.resize(data.astronaut()[60:260, 140:340], (size, size), anti_aliasing=True)
    return torch.from_numpy(img).float().permute(2, 0, 1)[None].clamp(0, 1)


@pytest.fixture(scope="module")
def dncnn():
    return restorekit.create("dncnn")


def test_model_layout_depth_width_bias():
    net = DnCNN(channels=3, hidden_layers=4, hidden_channels=16, use_bias=False)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 6 and all(c.bias is None and c.kernel_size == (3, 3) for c in convs)
    assert [c.out_channels for c in convs] == [16] * 5 + [3]
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.modules()) == 5
    assert net.receptive_field == 13 and net.arch()["use_bias"] is False
    x = torch.rand(2, 3, 20, 24)
    assert torch.allclose(net(x), x - net.net(x))  # residual: the network predicts the noise
    assert all(c.bias is not None for c in DnCNN(1, 1, 4).modules() if isinstance(c, torch.nn.Conv2d))


def test_shipped_weights_and_provenance():
    gray = json.loads((WEIGHTS_DIR / "dncnn-gray.json").read_text())
    assert gray["arch"]["channels"] == 1 and "Train400" in gray["metadata"]["training_data"]
    assert gray["metadata"]["noise_sigma_range"] == [0.0, 0.2]
    meta = json.loads((WEIGHTS_DIR / f"{SHIPPED}.json").read_text())
    assert meta["arch"]["channels"] == 3
    m = meta["metadata"]
    assert m["noise_sigma_range"] == [0.0, 0.2] and "CBSD432" in m["training_data"]
    assert m["epochs"] >= 1 and m["val_psnr_db"] > 25 and "restorekit_plugins.dncnn.train" in m["command"]
    assert (WEIGHTS_DIR / f"{SHIPPED}.pt").stat().st_size < 5_000_000


@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.2])
def test_denoises_a_colour_photo_without_shared_data(dncnn, sigma, monkeypatch, tmp_path):
    monkeypatch.setenv("RESTOREKIT_DATA", str(tmp_path / "no-data"))  # nothing from ../shared at run time
    x = _photo()
    d = Noise(sigma)
    y = d.apply(x, seed=1)
    out = dncnn(y, d)
    assert out.shape == x.shape and out.dtype == x.dtype and 0 <= float(out.min()) and float(out.max()) <= 1
    assert psnr(out, x) > psnr(y.clamp(0, 1), x) + 3


def test_grayscale_images_use_the_gray_model(dncnn):
    x = _photo().mean(dim=1, keepdim=True)
    y = Noise(0.1).apply(x, seed=2)
    out = dncnn(y)
    assert out.shape == (1, 1, 96, 96)
    assert psnr(out, x) > psnr(y.clamp(0, 1), x) + 3
    assert dncnn.gray_net().channels == 1 and "Train400" in dncnn.gray_metadata["metadata"]["training_data"]
    # the documented alternative: gray repeated into the colour model's three channels, outputs averaged
    via_colour = restorekit.create("dncnn", gray_weights="none")(y)
    assert via_colour.shape == (1, 1, 96, 96) and psnr(via_colour, x) > psnr(y.clamp(0, 1), x) + 3
    assert not torch.equal(via_colour, out)


def test_batches_match_single_images(dncnn):
    y = Noise(0.1).apply(torch.cat([_photo(64), _photo(64).flip(-1)]), seed=3)
    both = dncnn(y)
    assert torch.allclose(both[1:], dncnn(y[1:]), atol=1e-5)


def test_bad_channels_and_small_images(dncnn):
    with pytest.raises(InputError, match="got 4 channels.*alpha"):
        dncnn(torch.rand(1, 4, 64, 64))
    with pytest.raises(InputError, match="got 2 channels"):
        dncnn(torch.rand(1, 2, 64, 64))
    rf = dncnn.net.receptive_field
    with pytest.raises(InputError, match=f"smaller than .*receptive field \\({rf}x{rf}\\).*pad"):
        dncnn(torch.rand(1, 3, rf - 1, 64))
    assert dncnn(torch.rand(1, 3, rf, rf)).shape == (1, 3, rf, rf)


def test_bad_weights_files(tmp_path):
    pt, side = WEIGHTS_DIR / f"{SHIPPED}.pt", WEIGHTS_DIR / f"{SHIPPED}.json"
    with pytest.raises(WeightsError, match="missing"):
        restorekit.create("dncnn", weights=str(tmp_path / "nothing.pt"))
    copy = tmp_path / "copy.pt"
    shutil.copy(pt, copy)
    shutil.copy(side, copy.with_suffix(".json"))
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256"):
        restorekit.create("dncnn", weights=str(copy))
    copy.write_bytes(pt.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="truncated"):
        restorekit.create("dncnn", weights=str(copy))
    # the right bytes described as another architecture
    shutil.copy(pt, copy)
    meta = json.loads(side.read_text())
    meta["arch"]["hidden_channels"] += 1
    copy.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="another architecture"):
        restorekit.create("dncnn", weights=str(copy))


def test_gray_only_model_refuses_colour(tmp_path):
    from restorekit.weights import save_model

    path = save_model(DnCNN(channels=1, hidden_layers=1, hidden_channels=4), tmp_path / "gray.pt",
                      arch={"channels": 1, "hidden_layers": 1, "hidden_channels": 4, "use_bias": True})
    gray = restorekit.create("dncnn", weights=str(path))
    assert gray(torch.rand(1, 1, 16, 16)).shape == (1, 1, 16, 16)
    with pytest.raises(InputError, match="1-channel images, got 3"):
        gray(torch.rand(1, 3, 16, 16))
