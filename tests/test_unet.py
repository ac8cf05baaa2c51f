"""The unet plugin: shipped weights, restoring, bad input, and training on tiny data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import restorekit
from restorekit.degrade import Blur, Compose, Noise
from restorekit.errors import InputError, WeightsError
from restorekit_plugins.unet.model import UNet
from restorekit_plugins.unet.restorer import WEIGHTS_DIR
from restorekit_plugins.unet.train import UNetTrainConfig, export, train


def _photo(size: int = 96) -> torch.Tensor:
    """A colour photograph shipped with scikit-image, as a (1, 3, size, size) batch."""
    from skimage import data, transform

    img = transform.resize(data.astronaut()[80:240, 150:310], (size, size), anti_aliasing=True)
    return torch.from_numpy(img).float().permute(2, 0, 1)[None].clamp(0, 1)


def _psnr(x, ref) -> float:
    return float(10 * torch.log10(1 / (x.clamp(0, 1) - ref).square().mean()))


def _course_degradation(sigma: float = 0.01):
    from restorekit.kernels import load_kernel

    return Compose(Blur(load_kernel("course")), Noise(sigma))


def test_model_any_size_and_residual_shape():
    net = UNet(channels=3, base_channels=4, depth=2)
    for h, w in [(16, 16), (37, 50)]:
        assert net.forward_padded(torch.rand(2, 3, h, w)).shape == (2, 3, h, w)
    assert net.min_size == 16 and net.arch() == {"channels": 3, "base_channels": 4, "depth": 2}


@pytest.mark.parametrize("name", ["unet-deblur", "unet-wiener"])
def test_shipped_weights_are_packaged_with_metadata(name):
    assert (WEIGHTS_DIR / f"{name}.pt").is_file()
    meta = __import__("json").loads((WEIGHTS_DIR / f"{name}.json").read_text())
    text = str(meta)
    for key in ("CBSD432", "0.02"):
        assert key in text


def test_unet_deblurs_a_photo(monkeypatch, tmp_path):
    monkeypatch.setenv("RESTOREKIT_DATA", str(tmp_path / "no-data"))  # nothing from ../shared at run time
    x = _photo()
    d = _course_degradation(0.01)
    y = d.apply(x, seed=0)
    out = restorekit.create("unet")(y, d)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert _psnr(out, x) > _psnr(y, x) + 1.5


def test_unet_grayscale_by_channel_replication():
    x = _photo().mean(dim=1, keepdim=True)
    d = _course_degradation(0.005)
    y = d.apply(x, seed=1)
    out = restorekit.create("unet")(y, d)
    assert out.shape == (1, 1, 96, 96)
    assert _psnr(out, x) > _psnr(y, x) + 1.0


def test_unet_bad_input_is_a_clear_error():
    r = restorekit.create("unet")
    with pytest.raises(InputError, match="channels"):
        r(torch.rand(1, 4, 64, 64))
    with pytest.raises(InputError, match="smaller than"):
        r(torch.rand(1, 3, 20, 64))


def test_weights_missing_tampered_or_other_architecture(tmp_path):
    with pytest.raises(WeightsError):
        restorekit.create("unet", weights=str(tmp_path / "absent.pt"))
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"unet-deblur{suffix}", tmp_path / f"copy{suffix}")
    data = bytearray((tmp_path / "copy.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "copy.pt").write_bytes(bytes(data))
    with pytest.raises(WeightsError):
        restorekit.create("unet", weights=str(tmp_path / "copy.pt"))
    (tmp_path / "copy.pt").write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(WeightsError):
        restorekit.create("unet", weights=str(tmp_path / "copy.pt"))


def _tiny_images(n: int = 6, size: int = 48) -> list[torch.Tensor]:
    """Smooth random colour images (3 x size x size in [0, 1]): blobs that a blur visibly damages."""
    gen = torch.Generator().manual_seed(0)
    low = torch.rand(n, 3, 6, 6, generator=gen)
    up = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return list(up)


def _tiny_config(**kw) -> UNetTrainConfig:
    base = dict(variant="deblur", epochs=3, crops_per_epoch=80, batch_size=8, patch=32, base_channels=4, depth=1,
                val_images=2, val_size=32, lr=3e-3, threads=1)
    base.update(kw)
    return UNetTrainConfig(**base)


def test_a_few_training_steps_reduce_the_loss_and_export(tmp_path):
    result = train(_tiny_config(), tmp_path / "run", progress=False, images=_tiny_images())
    h = result.history
    assert h["loss"][-1] < h["loss"][0]
    assert h["val_psnr"][-1] > h["val_psnr"][0]
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and (tmp_path / "run" / "curves.png").is_file()
    path = export(tmp_path / "run", tmp_path / "w" / "tiny.pt")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["arch"] == {"channels": 3, "base_channels": 4, "depth": 1}
    assert meta["metadata"]["noise_sigma_range"] == [0.0, 0.02] and meta["metadata"]["epochs"] == 3
    restored = restorekit.create("unet", weights=str(path))(torch.rand(1, 3, 40, 40))
    assert restored.shape == (1, 3, 40, 40)
    # a retrained model keeps its guard: trained_for from the sampler (the course kernel, the noise range)
    from restorekit.kernels import load_kernel
    from restorekit.learned import kernel_sha256

    trained_for = meta["metadata"]["trained_for"]
    assert trained_for["kernel_sha256"] == kernel_sha256(load_kernel("course"))
    assert trained_for["noise_sigma_range"] == [0.0, 0.02] and trained_for["tasks"] == ["deblur"]
    with pytest.raises(InputError, match="trained for one blur kernel only"):
        restorekit.create("unet", weights=str(path))(torch.rand(1, 3, 40, 40), Blur(torch.ones(3, 3) / 9))


def test_export_refuses_an_unfinished_run(tmp_path):
    train(_tiny_config(epochs=1), tmp_path, progress=False, images=_tiny_images())
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state["extra"]["unet_config"]["epochs"] = 2
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(InputError, match="--resume"):
        export(tmp_path, tmp_path / "x.pt")


def test_training_needs_colour_images_and_enough_of_them(tmp_path):
    with pytest.raises(InputError, match="colour"):
        train(_tiny_config(), None, progress=False, images=[im[:1] for im in _tiny_images()])
    with pytest.raises(InputError, match="need more than"):
        train(_tiny_config(), None, progress=False, images=_tiny_images(2))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError):
        train(_tiny_config(data=str(empty)), None, progress=False)


def test_the_wiener_variant_trains_the_pipelines_own_forward():
    """unet-wiener learns from exactly what wiener+unet restores: the wiener restorer's output, then its forward."""
    from restorekit.kernels import load_kernel
    from restorekit_plugins.unet.restorer import UNetWiener
    from restorekit_plugins.unet.train import UNetTrainConfig, WienerThenUNet, training_sampler

    if "wiener" not in restorekit.registry.default_registry().names():
        pytest.skip("the wiener plugin is not registered")
    clean = _photo(64)
    y, degradation = training_sampler(UNetTrainConfig(), sigma=0.01)(clean, torch.Generator().manual_seed(3))
    assert torch.allclose(y, Compose(Blur(load_kernel("course")), Noise(0.01)).apply(clean, generator=_drawn(3)),
                          atol=1e-6)
    training = WienerThenUNet(UNetWiener(), 100.0)
    with torch.no_grad():
        ours = training.forward(y, degradation).clamp(0, 1)
    assert torch.allclose(ours, restorekit.create("wiener+unet")(y, Compose(Blur(load_kernel("course")),
                                                                            Noise(0.01))), atol=1e-6)


def _drawn(seed):
    gen = torch.Generator().manual_seed(seed)
    torch.rand(1, generator=gen, dtype=torch.float64)  # the sampler's sigma draw comes first
    return gen


def test_restorekit_train_unet_on_a_tiny_folder(tmp_path):
    """`restorekit train unet` runs the plugin's trainer through the register_trainers hook, then exports."""
    from skimage import io as skio

    from restorekit.cli.main import main

    folder = tmp_path / "images"
    folder.mkdir()
    for i, img in enumerate(_tiny_images(4)):
        skio.imsave(folder / f"{i}.png", (img.permute(1, 2, 0).numpy() * 255).round().astype("uint8"),
                    check_contrast=False)
    dest = tmp_path / "w" / "tiny.pt"
    dest.parent.mkdir()
    code = main(["train", "unet", "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--patch", "32",
                 "--threads", "1", "--out", str(tmp_path / "run"), "--export", str(dest), "--no-progress", "--",
                 "--variant", "wiener", "--crops-per-epoch", "8", "--base-channels", "4", "--depth", "1",
                 "--val-images", "1"])
    assert code == 0 and dest.is_file()
    meta = json.loads(dest.with_suffix(".json").read_text())["metadata"]
    assert "Wiener" in meta["input"] and meta["epochs"] == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "unet", "--data", str(empty), "--out", str(tmp_path / "run2"), "--no-progress"]) == 2


def test_unet_trains_data_parallel_under_torchrun_with_two_processes(tmp_path):
    """The same command under `torchrun --nproc-per-node 2` trains with DDP (gloo on CPU)."""
    import os
    import subprocess
    import sys

    from skimage import io as skio

    folder = tmp_path / "images"
    folder.mkdir()
    for i, img in enumerate(_tiny_images(4)):
        skio.imsave(folder / f"{i}.png", (img.permute(1, 2, 0).numpy() * 255).round().astype("uint8"),
                    check_contrast=False)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "restorekit.cli.main",
           "train", "unet", "--data", str(folder), "--epochs", "2", "--batch-size", "4", "--patch", "32",
           "--threads", "1", "--out", str(tmp_path / "run"), "--no-progress", "--",
           "--crops-per-epoch", "16", "--base-channels", "4", "--depth", "1", "--val-images", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["config"]["world_size"] == 2 and state["epoch"] == 2
    assert len(state["history"]["val_psnr"]) == 2


def test_weights_of_another_architecture_are_refused(tmp_path):
    from restorekit.weights import save_model

    path = save_model(UNet(3, 4, 1), tmp_path / "small.pt", arch={"channels": 3, "base_channels": 4, "depth": 1})
    sidecar = json.loads(path.with_suffix(".json").read_text())
    sidecar["arch"]["base_channels"] = 8  # the .json now describes another network than the .pt holds
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(WeightsError, match="another architecture"):
        restorekit.create("unet", weights=str(path))
    with pytest.raises(WeightsError, match="another architecture"):
        restorekit.create("mlp-inpaint", weights=str(WEIGHTS_DIR / "unet-deblur.pt"))
