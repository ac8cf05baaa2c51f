"""restorekit.training: datasets, the loop (loss goes down, reproducible, resumable), checkpoints, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.degrade import DegradationSampler
from restorekit.errors import InputError
from restorekit.training import (CleanSamples, Patches, RandomCrops, TrainConfig, batch_generator,
                                 extract_patches, fit, fixed_pairs, image_files, load_checkpoint, load_images,
                                 mnist_images, save_checkpoint, seed_everything)
from restorekit.training.checkpoint import CHECKPOINT_NAME

DATA = Path(os.environ.get("RESTOREKIT_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def _smooth_images(n: int = 3, channels: int = 1, size: int = 48, seed: int = 0) -> list[torch.Tensor]:
    """Smooth random images (noise is easy to tell apart from them)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, size // 8, size // 8, generator=gen)
    return list(torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False))


def _net(channels: int = 1) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, channels, 3, padding=1))


#: How every batch of the tests is degraded (restore's Noise, one sigma per sample).
SAMPLER = DegradationSampler(sigma_range=(0.05, 0.15))


def _samples(seed: int = 0) -> CleanSamples:
    return CleanSamples(Patches(_smooth_images(), size=16), seed=seed)


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=4, lr=3e-3, progress=False, log_every=2)
    base.update(kw)
    return TrainConfig(**base)


def _state(net: torch.nn.Module) -> list[torch.Tensor]:
    return [v.clone() for v in net.state_dict().values()]


def _write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


# --------------------------------------------------------------------------- datasets
def test_patches_are_the_course_non_overlapping_grid():
    img = torch.arange(2 * 70 * 100, dtype=torch.float32).reshape(2, 70, 100)
    p = extract_patches([img], size=32)
    assert p.shape == (2 * 3, 2, 32, 32)  # 70 // 32 = 2 rows, 100 // 32 = 3 columns; borders dropped
    assert torch.equal(p[0], img[:, :32, :32]) and torch.equal(p[4], img[:, 32:64, 32:64])
    assert len(Patches([img, img], size=32)) == 12


def test_batches_are_degraded_per_step_and_change_with_the_epoch():
    clean = torch.stack([_samples()[i] for i in range(4)])
    a, _ = SAMPLER(clean, batch_generator(1, 0, 3))
    b, degradation = SAMPLER(clean, batch_generator(1, 0, 3))
    assert torch.equal(a, b) and a.shape == clean.shape and not torch.equal(a, clean)
    assert degradation.levels.shape == (4,)
    assert not torch.equal(SAMPLER(clean, batch_generator(1, 1, 3))[0], a)
    assert not torch.equal(SAMPLER(clean, batch_generator(2, 0, 3))[0], a)
    assert not torch.equal(SAMPLER(clean, batch_generator(1, 0, 3, rank=1))[0], a)


def test_noise_sigma_fixed_and_range():
    gen = torch.Generator().manual_seed(0)
    clean = torch.zeros(1, 1, 128, 128)
    assert abs(float(DegradationSampler(sigma=0.1)(clean, gen)[0].std()) - 0.1) < 0.005
    sigmas = DegradationSampler(sigma_range=(0.0, 0.2)).draw_sigmas(200, gen)
    assert 0 <= float(sigmas.min()) < 0.02 and 0.18 < float(sigmas.max()) <= 0.2
    with pytest.raises(InputError, match="not both"):
        DegradationSampler(0.1, (0, 0.2))
    with pytest.raises(InputError, match="low <= high"):
        DegradationSampler(sigma_range=(0.2, 0.1))


def test_blur_then_noise_inputs():
    kernel = torch.ones(3, 3) / 9
    clean = _smooth_images(1, 3, 32)[0][None]
    out, degradation = DegradationSampler(sigma=0.0, kernels=kernel)(clean, torch.Generator().manual_seed(0))
    from restorekit.degrade import Blur

    assert torch.allclose(out, Blur(kernel).forward(clean)) and degradation.kernel is not None


def test_random_crops_with_flips():
    crops = RandomCrops(_smooth_images(2, 3, 40), size=24, length=10)
    samples = CleanSamples(crops, seed=0)
    assert len(samples) == 10 and samples[7].shape == (3, 24, 24)
    samples.set_epoch(1)
    first = samples[0]
    samples.set_epoch(2)
    assert not torch.equal(first, samples[0])
    with pytest.raises(InputError, match="smaller than the 64x64 crop"):
        RandomCrops(_smooth_images(1, 1, 40), size=64)


def test_folders_bsds_layout_grayscale(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "images" / "test").mkdir()
    for i in range(2):
        _write_png(tmp_path / "images" / "train" / f"{i}.png", rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    _write_png(tmp_path / "images" / "test" / "t.png", rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    assert [p.name for p in image_files(tmp_path)] == ["0.png", "1.png"]
    assert [p.name for p in image_files(tmp_path, split="test")] == ["t.png"]
    imgs = load_images(tmp_path, split="train", grayscale=True)
    assert len(imgs) == 2 and imgs[0].shape == (1, 20, 30)
    colour = load_images(tmp_path / "images" / "train")[0]
    assert torch.allclose(imgs[0], (colour * torch.tensor([0.2125, 0.7154, 0.0721]).view(3, 1, 1)).sum(0, keepdim=True))


def test_empty_and_unreadable_folders(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_images(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="holds no images"):
        load_images(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match=r"cannot read training image .*broken\.png.*remove or replace"):
        load_images(tmp_path)
    with pytest.raises(InputError, match="images/test"):
        image_files(tmp_path, split="test")


def test_mnist_needs_a_root(tmp_path):
    with pytest.raises(InputError, match="MNIST/raw"):
        mnist_images(tmp_path)


@pytest.mark.data
@pytest.mark.skipif(not (DATA / "MNIST" / "raw").is_dir(), reason="needs ../shared/data/MNIST")
def test_mnist_from_torchvision_root():
    digits = mnist_images(DATA, train=False, limit=10)
    assert digits.shape == (10, 1, 28, 28) and 0 <= float(digits.min()) and float(digits.max()) <= 1


# --------------------------------------------------------------------------- the loop
def test_a_few_steps_reduce_the_loss(tmp_path):
    seed_everything(0)
    net = _net()
    samples = _samples()
    val = fixed_pairs(_smooth_images(1, 1, 32, seed=5), DegradationSampler(sigma=0.1))
    clean = torch.stack([samples[i] for i in range(8)])
    batch = SAMPLER(clean, torch.Generator().manual_seed(0))[0], clean
    with torch.no_grad():
        before = float(torch.nn.functional.mse_loss(net(batch[0]), batch[1]))
    result = fit(net, samples, _cfg(epochs=4), val_pairs=val, out=tmp_path, sampler=SAMPLER)
    with torch.no_grad():
        after = float(torch.nn.functional.mse_loss(net(batch[0]), batch[1]))
    assert after < 0.5 * before
    h = result.history
    assert h["steps_per_epoch"] == 6 and len(h["epoch_loss"]) == 4 and h["epoch_loss"][-1] < h["epoch_loss"][0]
    assert len(h["val_psnr"]) == 4 and h["val_psnr"][-1] > h["val_psnr"][0]
    assert len(h["val_seconds"]) == 4 and h["val_seconds"] == sorted(h["val_seconds"]) <= [h["seconds"]] * 4
    assert {p.name for p in tmp_path.iterdir()} == {CHECKPOINT_NAME, "history.json", "curves.png"}


def test_seeded_runs_are_identical():
    runs = []
    for _ in range(2):
        seed_everything(3)
        net = _net()
        fit(net, _samples(), _cfg(seed=3, samples_per_epoch=12), sampler=SAMPLER)
        runs.append(_state(net))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_resume_matches_an_uninterrupted_run(tmp_path):
    seed_everything(0)
    straight = _net()
    fit(straight, _samples(), _cfg(epochs=2), sampler=SAMPLER)
    seed_everything(0)
    net = _net()
    fit(net, _samples(), _cfg(epochs=1), sampler=SAMPLER, out=tmp_path)
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 1
    seed_everything(99)  # the resumed run takes everything from the checkpoint
    resumed = _net()
    result = fit(resumed, _samples(), _cfg(epochs=2), sampler=SAMPLER, out=tmp_path, resume=True)
    assert len(result.history["epoch_loss"]) == 2
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_state(straight), _state(resumed)))


def test_a_history_from_before_val_seconds_gets_none_for_its_earlier_validations(tmp_path):
    val = fixed_pairs(_smooth_images(1, 1, 32, seed=5), DegradationSampler(sigma=0.1))
    fit(_net(), _samples(), _cfg(epochs=1), val_pairs=val, sampler=SAMPLER, out=tmp_path)
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    del state["history"]["val_seconds"]  # as a checkpoint of an earlier version has it
    torch.save(state, tmp_path / CHECKPOINT_NAME)
    result = fit(_net(), _samples(), _cfg(epochs=2), val_pairs=val, sampler=SAMPLER, out=tmp_path, resume=True)
    first, second = result.history["val_seconds"]
    assert first is None and 0 < second <= result.history["seconds"]


def test_crash_mid_epoch_resumes_from_the_last_checkpoint(tmp_path):
    seed_everything(0)
    straight = _net()
    fit(straight, _samples(), _cfg(epochs=1), sampler=SAMPLER)
    calls = {"n": 0}

    def crashing_loss(out, ref):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("simulated crash")
        return torch.nn.functional.mse_loss(out, ref)

    seed_everything(0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(_net(), _samples(), _cfg(epochs=1, checkpoint_every=2), sampler=SAMPLER, out=tmp_path, loss_fn=crashing_loss)
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert (state["epoch"], state["step_in_epoch"]) == (0, 4)
    resumed = _net()
    fit(resumed, _samples(), _cfg(epochs=1, checkpoint_every=2), sampler=SAMPLER, out=tmp_path, resume=True)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_state(straight), _state(resumed)))


def test_crash_while_writing_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT_NAME
    save_checkpoint(path, {"model": {"w": torch.ones(3)}, "epoch": 1})
    real_save = torch.save

    def dying_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as handle:
            handle.truncate(10)  # half-written file...
        raise KeyboardInterrupt  # ...and the process is stopped

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "epoch": 2})
    monkeypatch.setattr(torch, "save", real_save)
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]


def test_resume_errors(tmp_path):
    with pytest.raises(InputError, match="no checkpoint"):
        fit(_net(), _samples(), _cfg(), sampler=SAMPLER, out=tmp_path, resume=True)
    fit(_net(), _samples(), _cfg(epochs=1), sampler=SAMPLER, out=tmp_path)
    with pytest.raises(InputError, match="batch_size"):
        fit(_net(), _samples(), _cfg(batch_size=2), sampler=SAMPLER, out=tmp_path, resume=True)
    with pytest.raises(InputError, match="another model"):
        fit(_net(3), CleanSamples(Patches(_smooth_images(3, 3), 16)), _cfg(), out=tmp_path, resume=True,
            sampler=SAMPLER)
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"garbage")
    with pytest.raises(InputError, match="damaged"):
        load_checkpoint(tmp_path / CHECKPOINT_NAME)


def test_too_few_samples_for_a_batch():
    with pytest.raises(InputError, match="fewer than one batch"):
        fit(_net(), _samples(), _cfg(batch_size=64), sampler=SAMPLER)


# --------------------------------------------------------------------------- optimizers, metrics, RNG state
def test_an_optimizer_instance_or_factory_runs_in_fit(tmp_path):
    seed_everything(0)
    net = _net()
    sgd = torch.optim.SGD(net.parameters(), lr=0.05)
    fit(net, _samples(), _cfg(epochs=1, lr_drop_at=0.5), sampler=SAMPLER, optimizer=sgd)
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.005)  # its own rate, divided by 10 for the second half
    seed_everything(0)
    a = _net()
    fit(a, _samples(), _cfg(epochs=1), sampler=SAMPLER, optimizer=lambda params: torch.optim.SGD(params, lr=0.05), out=tmp_path)
    seed_everything(0)
    b = _net()
    fit(b, _samples(), _cfg(epochs=1), sampler=SAMPLER, optimizer=torch.optim.SGD(b.parameters(), lr=0.05))
    assert all(torch.equal(x, y) for x, y in zip(_state(a), _state(b)))
    saved = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert saved["optimizer"]["param_groups"][0]["lr"] == 0.05
    with pytest.raises(InputError, match="not the model's"):
        fit(_net(), _samples(), _cfg(), sampler=SAMPLER, optimizer=torch.optim.SGD(_net().parameters(), lr=0.1))
    with pytest.raises(InputError, match="not a torch.optim.Optimizer"):
        fit(_net(), _samples(), _cfg(), sampler=SAMPLER, optimizer=lambda params: "adam")


def test_resume_with_another_optimizer_is_refused(tmp_path):
    fit(_net(), _samples(), _cfg(epochs=1), sampler=SAMPLER, out=tmp_path)  # Adam
    with pytest.raises(InputError, match="another optimizer"):
        net = _net()
        fit(net, _samples(), _cfg(epochs=2), sampler=SAMPLER, out=tmp_path, resume=True,
            optimizer=torch.optim.SGD([{"params": [p]} for p in net.parameters()], lr=0.1))


def test_validation_metric_and_the_last_partial_batch():
    seed_everything(0)
    seen = []

    def metric(output, clean):
        seen.append(output.shape)
        return 7.0

    val = fixed_pairs(_smooth_images(1, 1, 32, seed=5), DegradationSampler(sigma=0.1))
    result = fit(_net(), _samples(), _cfg(epochs=1, batch_size=5, drop_last=False), val_pairs=val, val_metric=metric,
                 sampler=SAMPLER)
    assert result.history["val_psnr"] == [7.0] and seen == [(1, 1, 32, 32)]
    assert result.history["steps_per_epoch"] == 6  # 27 patches: five batches of 5 and one of 2
    assert fit(_net(), _samples(), _cfg(epochs=1, batch_size=5), sampler=SAMPLER).history["steps_per_epoch"] == 5


def test_a_resumed_run_continues_the_random_streams(tmp_path):
    """Checkpoints keep torch's, NumPy's and Python's generator states (dropout resumes exactly)."""

    def dropout_net():
        return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Dropout(0.3),
                                   torch.nn.Conv2d(8, 1, 3, padding=1))

    seed_everything(0)
    straight = dropout_net()
    fit(straight, _samples(), _cfg(epochs=2), sampler=SAMPLER)
    seed_everything(0)
    fit(dropout_net(), _samples(), _cfg(epochs=1), sampler=SAMPLER, out=tmp_path)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert set(state["rng"]) >= {"python", "numpy", "torch"}
    seed_everything(123)  # a different stream until the checkpoint's is restored
    resumed = dropout_net()
    fit(resumed, _samples(), _cfg(epochs=2), sampler=SAMPLER, out=tmp_path, resume=True)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_state(straight), _state(resumed)))


def test_a_checkpoint_of_another_format_is_refused_on_resume(tmp_path):
    save_checkpoint(tmp_path / CHECKPOINT_NAME, {"model": {}, "generator": torch.zeros(3), "epoch": 2})
    with pytest.raises(InputError, match="not written by restorekit.training.fit.*--overwrite"):
        fit(_net(), _samples(), _cfg(), sampler=SAMPLER, out=tmp_path, resume=True)


def test_fit_removes_the_temporaries_of_a_killed_run(tmp_path):
    import subprocess

    from restorekit.atomic import TEMP_MARK

    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f".history.{gone.pid}-00ff00ff{TEMP_MARK}.json"
    stale.write_text("{")
    fit(_net(), _samples(), _cfg(epochs=1), sampler=SAMPLER, out=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {CHECKPOINT_NAME, "history.json", "curves.png"}


def test_gray_samples_as_colour_get_gray_noise_and_concatenated_samples():
    from restorekit.training import ConcatPairs, GrayAsColour

    gray = CleanSamples(Patches(_smooth_images(1, 1, 32), size=16), seed=0)
    colour = CleanSamples(Patches(_smooth_images(1, 3, 32), size=16), seed=0)
    mixed = ConcatPairs([colour, GrayAsColour(gray)])
    assert len(mixed) == 8
    clean = mixed[5]
    assert clean.shape == (3, 16, 16) and torch.equal(clean[0], clean[2]) and torch.equal(clean[0], gray[1][0])
    noisy, _ = DegradationSampler(sigma=0.1)(torch.stack([mixed[1], mixed[5]]), torch.Generator().manual_seed(0))
    assert torch.equal(noisy[1, 0], noisy[1, 2]) and not torch.equal(noisy[0, 0], noisy[0, 2])
    mixed.set_epoch(3)
    assert gray.epoch == colour.epoch == 3
    with_map = GrayAsColour([(torch.stack([torch.zeros(4, 4), torch.full((4, 4), 0.1)]), torch.zeros(1, 4, 4))])
    assert with_map[0][0].shape == (4, 4, 4) and float(with_map[0][0][3].mean()) == pytest.approx(0.1)


def test_a_learned_restorer_trains_through_its_forward_with_bf16_autocast():
    from restorekit_plugins.drunet.model import DRUNet
    from restorekit_plugins.drunet.restorer import DRUNetRestorer

    seed_everything(0)
    restorer = DRUNetRestorer.from_network(DRUNet(channels=1, widths=(4, 4, 4, 4), blocks=0))
    val = fixed_pairs(_smooth_images(1, 1, 32, seed=5), DegradationSampler(sigma=0.1))
    result = fit(restorer, _samples(), _cfg(epochs=1), val_pairs=val, sampler=SAMPLER, bf16=True)
    assert result.restorer is restorer and result.model is restorer.net
    assert len(result.history["val_psnr"]) == 1 and all(p.grad is not None for p in restorer.net.parameters())


def test_bf16_auto_follows_the_cpus_native_bfloat16(monkeypatch):
    """``--bf16 auto``: AMX-BF16 (Xeon) or AVX512-BF16 (EPYC Zen 4, 2.2x faster training there); float32 elsewhere."""
    from restorekit.training import machine

    for flags, expected in [({"avx2", "fma"}, False), ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16"}, True)]:
        monkeypatch.setattr(machine, "_cpu_flags", lambda flags=flags: set(flags))
        assert machine.use_bf16("auto", "cpu") is expected
        assert machine.use_bf16("auto", "cuda") is False
        assert machine.use_bf16("off", "cpu") is False
        assert machine.use_bf16("on", "cuda") is True
