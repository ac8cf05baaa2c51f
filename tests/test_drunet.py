"""drunet: the DRUNet-style prior (model, restorer, trainer and its stop-and-ship path, shipped weights)."""

from __future__ import annotations

import json

import pytest
import torch

import restorekit
from restorekit.degrade import Noise
from restorekit.metrics import psnr
from restorekit_plugins.drunet.model import DRUNet
from restorekit_plugins.drunet.restorer import WEIGHTS_DIR


def test_model_keeps_any_size_starts_as_identity_and_reads_a_map():
    net = DRUNet(channels=3, widths=(4, 4, 8, 8), blocks=1)
    x = torch.rand(2, 3, 13, 30)
    assert torch.equal(net.denoise(x, torch.tensor([0.05, 0.1])), x)  # zero tail: the identity
    torch.nn.init.normal_(net.tail.weight, std=0.1)
    flat = net.denoise(x, 0.1)
    mapped = net.denoise(x, torch.full((2, 1, 13, 30), 0.1))
    assert flat.shape == x.shape and torch.allclose(flat, mapped)
    assert not torch.allclose(net.denoise(x, 0.0), net.denoise(x, 0.2))  # the level is read
    assert net.arch() == {"channels": 3, "widths": [4, 4, 8, 8], "blocks": 1}


def test_model_refuses_bad_shapes():
    with pytest.raises(ValueError, match="widths"):
        DRUNet(widths=(8, 8, 8))
    with pytest.raises(ValueError, match="image \\+ sigma map"):
        DRUNet(widths=(4, 4, 4, 4), blocks=0)(torch.rand(1, 3, 8, 8))


def test_shipped_weights_denoise_better_than_ffdnet_at_sigma_0_1():
    import numpy as np
    import skimage.data as data

    x = torch.from_numpy(data.astronaut()[100:228, 100:228].astype(np.float32) / 255).permute(2, 0, 1)[None]
    y = Noise(0.1).apply(x, seed=0)
    ours = float(psnr(restorekit.create("drunet")(y, Noise(0.1)), x))
    assert ours > float(psnr(y, x)) + 8
    assert ours > float(psnr(restorekit.create("ffdnet")(y, Noise(0.1)), x))


def test_the_sidecar_says_how_the_run_ended_and_how_to_rerun_it():
    meta = json.loads((WEIGHTS_DIR / "drunet-color.json").read_text())["metadata"]
    # a grown network counts its own steps (its epochs) and, in "steps", those of the network it was grown from
    assert meta["finished"] is True and meta.get("steps_this_network", meta["steps"]) == meta["epochs"] * 266
    assert meta["steps"] >= meta["epochs"] * 266
    assert meta["trained_for"]["noise_sigma_range"] == [0.0, 0.21]
    assert meta["command"].startswith("python -m restorekit_plugins.drunet.train")  # make weights re-runs it
    folders = {meta["command"].split("--out ")[1].split()[0]}  # then each stage resumes a run or grows one's network
    for later in meta["continue_commands"]:
        out = later.split("--out ")[1].split()[0]
        if "--init-from" in later:
            assert later.split("--init-from ")[1].split()[0] in {f"{f}/checkpoint.pt" for f in folders}, later
        else:
            assert "--resume" in later and out in folders, later
        folders.add(out)
    assert "benchmarks/training/drunet-color" in meta["run_history"]  # the committed run it came from
    assert meta["machine"]["cpu"] and meta["precision"] in ("float32", "bfloat16 autocast")


def _tiny_image_folder(tmp_path):
    """Three random 40x40 colour images to train a toy DRUNet on."""
    from restorekit.imageio import write_image

    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"{i}.png", torch.rand(1, 3, 40, 40))
    return folder


def test_a_run_is_shipped_from_its_checkpoint_and_resumes_with_more_epochs(tmp_path):
    from restorekit_plugins.drunet import train

    folder = _tiny_image_folder(tmp_path)
    args = ["--data", str(folder), "--gray-fraction", "0", "--widths", "4,4,8,8", "--blocks", "1", "--patch", "16",
            "--crops-per-epoch", "8", "--batch-size", "4", "--epochs", "3", "--val-crop", "16", "--no-progress",
            "--out", str(tmp_path / "run")]
    assert train.run_request.main(args[:-2] + ["--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    shipped = tmp_path / "w.pt"
    assert train.run_request.main(args + ["--resume", "--export", str(shipped), "--export-checkpoint"]) == 0
    meta = json.loads(shipped.with_suffix(".json").read_text())["metadata"]
    assert meta["finished"] is True and meta["steps"] == 2 and meta["epochs_planned"] == 1  # its own plan
    assert train.run_request.main(args + ["--resume"]) == 0  # continues to 3 epochs
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["epoch_loss"]) == 3
    built = restorekit.create("drunet", weights=str(shipped))
    assert built(torch.rand(1, 3, 20, 20), Noise(0.05)).shape == (1, 3, 20, 20)


def test_a_new_run_starts_from_another_runs_network_with_another_batch(tmp_path):
    """--init-from (the GPU recipe's larger batch): the new run's first network is the checkpoint's."""
    from restorekit.errors import InputError
    from restorekit_plugins.drunet import train

    folder = _tiny_image_folder(tmp_path)
    args = ["--data", str(folder), "--gray-fraction", "0", "--widths", "4,4,8,8", "--blocks", "1", "--patch", "16",
            "--crops-per-epoch", "8", "--epochs", "1", "--val-crop", "16", "--no-progress"]
    assert train.run_request.main(args + ["--batch-size", "4", "--out", str(tmp_path / "a")]) == 0
    source = tmp_path / "a" / "checkpoint.pt"
    shipped = tmp_path / "b.pt"
    assert train.run_request.main(args + ["--batch-size", "8", "--lr", "1e-12", "--init-from", str(source),
                                          "--out", str(tmp_path / "b"), "--export", str(shipped)]) == 0
    first = torch.load(source, weights_only=True)["model"]
    second = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.allclose(first[k], second[k], atol=1e-6) for k in first)  # lr 1e-12: still the source's
    meta = json.loads(shipped.with_suffix(".json").read_text())["metadata"]
    assert str(source) in meta["initialized_from"]
    # a wider, deeper network grows from it (Net2Net) and says so; a narrower one is refused
    wide = DRUNet(channels=3, widths=(8, 8, 8, 8), blocks=2)
    assert "grown from widths 4-4-8-8 x1 to 8-8-8-8 x2" in train.initialize_from(wide, source, seed=3)
    with pytest.raises(InputError, match="must not shrink"):
        train.train_drunet(train.DRUNetOptions(**{"data": str(folder), "gray_fraction": 0.0, "widths": "2,4,8,8",
                                                  "blocks": 1, "patch": 16, "crops_per_epoch": 8, "epochs": 1,
                                                  "val_crop": 16, "init_from": str(source)}),
                           tmp_path / "c", progress=False)
    with pytest.raises(InputError, match="choose one"):
        train.initialize_from(None, source, resume=True)


@pytest.mark.parametrize("widths, blocks", [((8, 16, 16, 16), 1), ((6, 9, 8, 12), 3)])
def test_a_grown_network_computes_the_same_function_and_its_copies_grow_apart(widths, blocks):
    """widen_state_dict: wider (any widths not below the old) and deeper, the same output; training splits copies."""
    from restorekit_plugins.drunet.widen import architecture_of, widen_state_dict

    torch.manual_seed(0)
    small = DRUNet(channels=3, widths=(4, 8, 8, 8), blocks=1)
    for p in small.parameters():
        torch.nn.init.normal_(p, std=0.05)  # far from the identity, so equal outputs mean something
    big = DRUNet(channels=3, widths=widths, blocks=blocks)
    big.load_state_dict(widen_state_dict(small.state_dict(), widths, blocks, seed=1))
    assert architecture_of(big.state_dict()) == big.arch()
    x = torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        before, grown = small.denoise(x, 0.1), big.denoise(x, 0.1)
    assert (before - x).abs().max() > 0.05 and torch.allclose(grown, before, rtol=1e-4, atol=1e-5)
    # head's output maps 4.. copy maps 0..3 (same incoming weights); one step of training makes them differ
    head = big.head.weight
    copies = [(j, int(torch.nonzero((head[:4] == head[j]).flatten(1).all(1))[0])) for j in range(4, widths[0])]
    loss = (big.denoise(x, 0.1) - x.flip(-1)).square().mean()
    loss.backward()
    assert any(not torch.allclose(head.grad[j], head.grad[i]) for j, i in copies)
    with pytest.raises(ValueError, match="must not shrink"):
        widen_state_dict(small.state_dict(), (2, 8, 8, 8), 1)
    with pytest.raises(ValueError, match="must not fall"):
        widen_state_dict(big.state_dict(), widths, blocks - 1)


def test_bfloat16_precision_is_close_above_the_guard_and_exact_float32_within_it(monkeypatch):
    """precision=bfloat16: autocast above LOW_NOISE (within 0.1 dB here), float32 where the SURE probe runs."""
    from restorekit.training import machine

    monkeypatch.setattr(machine, "cpu_has_native_bf16", lambda: True)
    torch.manual_seed(0)
    clean = torch.rand(1, 3, 48, 64).cumsum(-1) / 64  # smooth ramps plus texture
    clean = (clean / clean.max()).clamp(0, 1)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    plain, fast = restorekit.create("drunet"), restorekit.create("drunet", precision="bfloat16")
    a, b = plain(noisy, Noise(0.1)), fast(noisy, Noise(0.1))
    assert not torch.equal(a, b)  # it did run in bfloat16
    assert b.dtype == torch.float32 and abs(psnr(a, clean) - psnr(b, clean)) < 0.1
    light = clean + 0.01 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    assert torch.equal(plain(light, Noise(0.01)), fast(light, Noise(0.01)))  # the guard's levels stay float32


def test_bfloat16_precision_warns_once_where_the_cpu_emulates_it(monkeypatch):
    from restorekit.errors import RestorekitWarning
    from restorekit.training import machine

    monkeypatch.setattr(machine, "cpu_has_native_bf16", lambda: False)
    fast = restorekit.create("drunet", precision="bfloat16")
    image = torch.rand(1, 3, 16, 16)
    with pytest.warns(RestorekitWarning, match="emulated"):
        fast(image, Noise(0.1))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast(image, Noise(0.1))  # once per instance


def test_map_share_reaches_the_training_sampler_and_its_record(capsys):
    from restorekit_plugins.drunet import train

    assert "noise_maps" not in train.training_sampler(train.DRUNetOptions()).trained_for
    sampler = train.training_sampler(train.DRUNetOptions(map_share=0.25))
    assert sampler.map_share == 0.25
    assert sampler.trained_for["noise_maps"] == {"share": 0.25, "kinds": ["mask", "signal"]}
    assert train.run_request.main(["--map-share", "1.5", "--out", "/nonexistent/never"]) == 2
    assert "--map-share must be below 1" in capsys.readouterr().err
