"""One learned path (issue 13, item 1): one sampler in degrade/, one forward, one export, no noise made elsewhere.

* ``Noise`` holds one level per image (or a map), so one training batch holds several levels;
* :class:`restorekit.degrade.DegradationSampler` draws them (range, low share, kernels, masks,
  downsampling), applies the operators restoration uses and says what it drew (``trained_for``);
* ``LearnedRestorer.forward`` is what ``restore`` runs (under no_grad, with the guard, tiling,
  dtype and clipping around it), and each shipped model gives through ``restore`` exactly what
  its raw network gives;
* the trainers train ``restorer.forward`` on ``sampler(x)`` and export through one ``export``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import restorekit
from restorekit.degrade import Blur, Compose, DegradationSampler, Noise
from restorekit.errors import InputError


# ------------------------------------------------------------------ Noise with one level per image
def test_noise_takes_one_level_per_image_and_a_map():
    x = torch.zeros(3, 3, 64, 64)
    y = Noise(torch.tensor([0.0, 0.05, 0.2])).apply(x, seed=0)
    stds = y.flatten(1).std(dim=1)
    assert float(stds[0]) == 0.0
    assert abs(float(stds[1]) - 0.05) < 0.003 and abs(float(stds[2]) - 0.2) < 0.01
    levels = torch.zeros(3, 1, 64, 64)
    levels[:, :, :, 32:] = 0.1
    y = Noise(levels).apply(x, seed=0)
    assert float(y[..., :32].abs().max()) == 0.0 and abs(float(y[..., 32:].std()) - 0.1) < 0.005
    n = Noise(torch.tensor([0.01, 0.1]))
    assert abs(n.sigma - 0.1) < 1e-7 and n.sigma_map(torch.zeros(2, 3, 5, 7)).shape == (2, 1, 5, 7)
    assert Noise(0.1).sigma_map(x) is None and Noise(0.1).levels is None


def test_noise_levels_are_checked():
    with pytest.raises(InputError, match="above 1"):
        Noise(torch.tensor([0.1, 25.0]))
    with pytest.raises(InputError, match=">= 0"):
        Noise(torch.tensor([-0.1, 0.1]))
    with pytest.raises(InputError, match="do not fit"):
        Noise(torch.tensor([0.1, 0.1])).apply(torch.zeros(3, 1, 8, 8), seed=0)


def test_a_scalar_tensor_is_one_level_and_seeds_give_the_same_noise_as_before():
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(Noise(torch.tensor(0.1)).apply(x, seed=3), Noise(0.1).apply(x, seed=3))
    # one level per image, all equal: the same draw as the single number
    assert torch.allclose(Noise(torch.tensor([0.1, 0.1])).apply(x, seed=3), Noise(0.1).apply(x, seed=3), atol=1e-7)


# ------------------------------------------------------------------ the sampler
def test_sampler_draws_levels_in_its_range_with_a_low_share():
    sampler = DegradationSampler(sigma_range=(0.0, 0.2), low_fraction=0.25, low_sigma=0.01)
    sigmas = sampler.draw_sigmas(4000, torch.Generator().manual_seed(0))
    assert float(sigmas.min()) >= 0 and float(sigmas.max()) <= 0.2
    low = float((sigmas <= 0.01).double().mean())
    assert 0.22 < low < 0.30  # 25% drawn in [0, 0.01] plus the 5% of the range's draws below 0.01
    tf = sampler.trained_for
    assert tf["noise_sigma_range"] == [0.0, 0.2] and tf["tasks"] == ["denoise"] and tf["kernel_sha256"] is None
    assert tf["low_noise_share"] == 0.25 and tf["low_noise_sigma_max"] == 0.01


def test_sampler_applies_restores_operators_and_is_reproducible():
    kernel = torch.ones(3, 3) / 9
    sampler = DegradationSampler(sigma_range=(0.01, 0.02), kernels=kernel)
    x = torch.rand(4, 3, 24, 24)
    y, degradation = sampler(x, torch.Generator().manual_seed(5))
    y2, _ = sampler(x, torch.Generator().manual_seed(5))
    assert torch.equal(y, y2)
    noise = degradation.parts()[-1]
    assert isinstance(degradation, Compose) and isinstance(noise, Noise) and noise.levels.shape == (4,)
    # the same operator and the same noise as restore's degradation, drawn from the same generator
    again = Compose(Blur(kernel), Noise(noise.levels)).apply(x, generator=_after_draws(sampler, 4, 5))
    assert torch.allclose(y, again, atol=1e-6)
    from restorekit.learned import kernel_sha256

    assert sampler.trained_for["kernel_sha256"] == kernel_sha256(kernel)
    assert sampler.trained_for["tasks"] == ["deblur", "denoise"]


def _after_draws(sampler, n, seed):
    gen = torch.Generator().manual_seed(seed)
    sampler.draw_sigmas(n, gen)
    return gen


def test_sampler_gives_a_gray_sample_its_noise_in_every_channel():
    x = torch.rand(2, 3, 16, 16)
    x[1] = x[1, :1].expand(3, -1, -1)
    y, _ = DegradationSampler(sigma=0.1)(x, torch.Generator().manual_seed(0))
    assert torch.equal(y[1, 0], y[1, 2]) and not torch.equal(y[0, 0], y[0, 2])


def test_sampler_masks_downsampling_and_several_kernels():
    x = torch.rand(3, 1, 16, 16)
    y, d = DegradationSampler(mask="random:0.5")(x, torch.Generator().manual_seed(0))
    assert d.mask.shape == (3, 1, 16, 16) and "inpaint" in DegradationSampler(mask=0.5).tasks
    y, d = DegradationSampler(sigma=0.01, scale=2)(x, torch.Generator().manual_seed(0))
    assert y.shape == (3, 1, 8, 8) and d.scale == 2
    k1, k2 = torch.ones(3, 3) / 9, torch.ones(5, 5) / 25
    s = DegradationSampler(kernels=[k1, k2], sigma=0.01)
    assert len(s.trained_for["kernel_sha256_set"]) == 2 and s.trained_for["kernel_sha256"] is None
    with pytest.raises(InputError, match="lower-half"):
        DegradationSampler(mask="stripes")
    with pytest.raises(InputError, match="not both"):
        DegradationSampler(sigma=0.1, sigma_range=(0, 0.2))
    with pytest.raises(InputError, match="low <= high"):
        DegradationSampler(sigma_range=(0.2, 0.1))


# ------------------------------------------------------------------ restore = forward + the wrapper
@pytest.mark.parametrize("name", ["drunet", "ffdnet"])
def test_forward_reads_one_level_per_sample_as_restore_does_one_image_at_a_time(name):
    restorer = restorekit.create(name, low_noise_guard="off")
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    levels = torch.tensor([0.05, 0.15])
    y = Noise(levels).apply(x, seed=1)
    with torch.no_grad():
        batch = restorer.forward(y, Noise(levels)).clamp(0, 1)
    for i in range(2):
        alone = restorer(y[i:i + 1], Noise(float(levels[i])))
        assert torch.allclose(batch[i:i + 1], alone, atol=1e-5)


@pytest.mark.parametrize("name", ["dncnn", "ffdnet", "drunet", "unet", "unet-wiener"])
def test_each_shipped_model_restores_exactly_what_its_raw_network_gives(name):
    restorer = restorekit.create(name, **({"low_noise_guard": "off"} if name in ("dncnn", "ffdnet", "drunet") else {}))
    net, _ = restorer.load_network(restorer.config["weights"])  # the verified weights, in the layout restore uses
    net.eval()
    x = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(2))
    degradation = Noise(0.1)
    if name.startswith("unet"):
        from restorekit.kernels import load_kernel

        degradation = Compose(Blur(load_kernel("course")), Noise(0.01))
    y = degradation.apply(x, seed=0)
    with torch.no_grad():
        if name in ("ffdnet", "drunet"):
            raw = net.denoise(y, torch.tensor([0.1]))
        elif name == "dncnn":
            raw = net(y)
        else:
            raw = net.forward_padded(y.clamp(0, 1))
    assert torch.equal(restorer(y, degradation), raw.clamp(0, 1))


def test_from_network_trains_and_restores_through_the_same_object():
    from restorekit_plugins.drunet.model import DRUNet
    from restorekit_plugins.drunet.restorer import DRUNetRestorer

    net = DRUNet(channels=3, widths=(4, 4, 4, 4), blocks=0)
    restorer = DRUNetRestorer.from_network(net, low_noise_guard="off")
    assert restorer.net is net and restorer.trained_for is None
    x = torch.rand(2, 3, 16, 16)
    y, degradation = DegradationSampler(sigma_range=(0.05, 0.1))(x, torch.Generator().manual_seed(0))
    net.train()
    loss = torch.nn.functional.mse_loss(restorer.forward(y, degradation), x)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


# ------------------------------------------------------------------ trainers: one sampler, one export
def _folder(tmp_path, n=3, size=48):
    import numpy as np
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(data / f"{i}.png")
    return data


def test_a_retrained_dncnn_keeps_its_guard(tmp_path):
    import json
    import warnings

    from restorekit.errors import RestorekitWarning
    from restorekit_plugins.dncnn.train import options_from, train_dncnn

    opts = options_from("course", data=str(_folder(tmp_path)), epochs=1, batch_size=8, hidden_layers=1,
                        hidden_channels=4, sigma=None, sigma_range=(0.0, 0.05), patch=16)
    result = train_dncnn(opts, tmp_path / "run", export=str(tmp_path / "tiny.pt"), progress=False,
                         command="restorekit train dncnn (test)")
    meta = json.loads((tmp_path / "tiny.json").read_text())["metadata"]
    assert meta["trained_for"] == {"tasks": ["denoise"], "kernel_sha256": None, "noise_sigma_range": [0.0, 0.05]}
    assert meta["steps"] == result.history["steps_per_epoch"] and meta["precision"] == "float32"
    assert meta["machine"]["cpu"] and meta["command"] == "restorekit train dncnn (test)"
    restorer = restorekit.create("dncnn", weights=str(tmp_path / "tiny.pt"), gray_weights="none")
    assert restorer.trained_for["noise_sigma_range"] == [0.0, 0.05]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restorer(torch.rand(1, 3, 16, 16), Noise(0.15))
    assert any(issubclass(w.category, RestorekitWarning) and "trained for 0-0.05" in str(w.message) for w in caught)
    # the low-noise guard of the restore path: at sigma 0 the input comes back
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(restorer(x, Noise(0.0)), x)


CHECKPOINT = Path(__file__).resolve().parents[1] / "benchmarks" / "training" / "drunet-color"
DATA = Path(os.environ.get("RESTOREKIT_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.mark.data
@pytest.mark.skipif(not (CHECKPOINT / "checkpoint.pt").is_file() or not (DATA / "CBSD432").is_dir(),
                    reason="needs the committed drunet-color run and ../shared/data/CBSD432")
def test_the_committed_drunet_run_resumes_on_the_new_path(tmp_path):
    """The lead's checkpoint (written before the sampler) loads into the new trainer: model, optimizer, history."""
    import shutil

    from restorekit.training import load_checkpoint
    from restorekit_plugins.drunet import train

    run = tmp_path / "drunet-color"
    shutil.copytree(CHECKPOINT, run)
    before = load_checkpoint(run / "checkpoint.pt")
    done = int(before["epoch"])
    result = train.train_drunet(train.DRUNetOptions(epochs=done, limit=20), run, resume=True, progress=False)
    assert result.history["epoch_loss"] == before["history"]["epoch_loss"]
    assert all(torch.equal(result.model.state_dict()[k], v) for k, v in before["model"].items())


def test_sampler_draws_per_pixel_maps_for_its_map_share():
    x = torch.rand(64, 3, 24, 24) * 0.8 + 0.1
    sampler = DegradationSampler(sigma_range=(0.05, 0.2), map_share=0.5)
    y, d = sampler(x, torch.Generator().manual_seed(1))
    levels = d.sigma_map(y)
    assert levels.shape == (64, 1, 24, 24)
    flat = levels.flatten(1)
    uniform = flat.max(dim=1).values - flat.min(dim=1).values < 1e-12
    masked = (flat == 0).any(dim=1) & ~uniform
    signal = ~uniform & ~masked
    assert 16 <= int((~uniform).sum()) <= 48 and int(masked.sum()) >= 5 and int(signal.sum()) >= 5
    # mask kind: no noise where the map is 0; elsewhere noise of the map's level
    i = int(masked.nonzero()[0])
    zero = levels[i, 0] == 0
    assert float((y[i] - x[i])[:, zero].abs().max()) == 0.0
    # signal kind: the level grows with the clean image's intensity
    j = int(signal.nonzero()[0])
    v = x[j].mean(dim=0).flatten().double()
    assert torch.corrcoef(torch.stack([v, levels[j, 0].flatten()]))[0, 1] > 0.99
    # everywhere the noise is the map's level
    z = ((y - x) / levels.clamp(min=1e-9).float())[levels.expand_as(y) > 0]
    assert abs(float(z.std()) - 1.0) < 0.02
    assert sampler.trained_for["noise_maps"] == {"share": 0.5, "kinds": ["mask", "signal"]}
    # map_share 0: the draws of before, and nothing recorded
    plain = DegradationSampler(sigma_range=(0.05, 0.2))
    assert "noise_maps" not in plain.trained_for
    assert plain(x, torch.Generator().manual_seed(1))[1].levels.shape == (64,)


@pytest.mark.parametrize("kwargs, words", [({"map_share": 1.0}, "in [0, 1)"), ({"map_share": "x"}, "in [0, 1)"),
                                           ({"map_share": 0.2, "scale": 2}, "downsampling")])
def test_sampler_refuses_bad_map_shares(kwargs, words):
    with pytest.raises(InputError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        DegradationSampler(sigma=0.1, **kwargs)
