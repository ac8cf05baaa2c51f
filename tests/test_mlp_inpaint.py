"""mlp-inpaint: shipped weights, restoring digits, refusing anything else, and the hand-written training."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import restorekit
from restorekit.degrade import Compose, Mask, Noise
from restorekit.errors import InputError, WeightsError
from restorekit_plugins.mlp_inpaint.model import lower_half_mask
from restorekit_plugins.mlp_inpaint.restorer import WEIGHTS_DIR
from restorekit_plugins.mlp_inpaint.train import GradientDescent, TrainConfig, half_psnr, load_mnist, train

DATA = Path(os.environ.get("RESTOREKIT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
HAS_MNIST = (DATA / "MNIST" / "raw").is_dir()


def _ring_digit() -> torch.Tensor:
    """A hand-drawn '0' (an ellipse of white strokes on black), 28x28, as MNIST draws it."""
    from skimage.draw import ellipse_perimeter
    from skimage.filters import gaussian

    img = torch.zeros(28, 28).numpy()
    rr, cc = ellipse_perimeter(14, 14, 9, 6)
    img[rr, cc] = 1.0
    img = gaussian(img, sigma=0.8)
    return torch.from_numpy(img / img.max()).float()[None, None]


def test_shipped_weights_and_metadata():
    meta = json.loads((WEIGHTS_DIR / "mlp-inpaint.json").read_text())
    assert "MNIST" in json.dumps(meta)


def test_restores_the_lower_half_of_a_drawn_digit(monkeypatch, tmp_path):
    monkeypatch.setenv("RESTOREKIT_DATA", str(tmp_path / "no-data"))  # nothing from ../shared at run time
    x = _ring_digit()
    mask = Mask.lower_half(28, 28)
    y = mask.apply(x)
    out = restorekit.create("mlp-inpaint")(y, mask)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out[..., :14, :], y[..., :14, :])  # the observed half is kept
    assert float(half_psnr(out, x)) > float(half_psnr(y, x)) + 1.0
    assert torch.equal(restorekit.create("mlp-inpaint")(y), out)  # no mask given: the lower half is assumed


def test_backends_agree():
    from restorekit.nn import extension

    if not extension.available():
        pytest.skip("restorekit._C is not built")
    y = Mask.lower_half(28, 28).apply(_ring_digit())
    a = restorekit.create("mlp-inpaint", backend="python")(y)
    b = restorekit.create("mlp-inpaint", backend="compiled")(y)
    assert torch.allclose(a, b, atol=1e-5)


def test_anything_but_lower_half_digits_is_refused():
    r = restorekit.create("mlp-inpaint")
    with pytest.raises(InputError, match="28x28"):
        r(torch.rand(1, 1, 32, 32))
    with pytest.raises(InputError, match="grayscale"):
        r(torch.rand(1, 3, 28, 28))
    with pytest.raises(InputError, match="lower half"):
        r(torch.rand(1, 1, 28, 28), Mask.random(28, 28, 0.5))
    upper = Mask(1 - lower_half_mask())
    with pytest.raises(InputError, match="lower half"):
        r(torch.rand(1, 1, 28, 28), Compose(upper, Noise(0.0)))


def test_damaged_weights_are_refused(tmp_path):
    with pytest.raises(WeightsError):
        restorekit.create("mlp-inpaint", weights=str(tmp_path / "absent.pt"))
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"mlp-inpaint{suffix}", tmp_path / f"w{suffix}")
    data = bytearray((tmp_path / "w.pt").read_bytes())
    data[-100] ^= 0x01
    (tmp_path / "w.pt").write_bytes(bytes(data))
    with pytest.raises(WeightsError):
        restorekit.create("mlp-inpaint", weights=str(tmp_path / "w.pt"))


def test_gradient_descent_update_is_p_minus_lr_grad():
    net = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in net.parameters()]
    net(torch.ones(1, 3)).sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    opt = GradientDescent(net.parameters(), lr=2.0)
    opt.step()
    for p, b, g in zip(net.parameters(), before, grads):
        assert torch.allclose(p, b - 2.0 * g)
    assert opt.state_dict()["state"] == {}  # nothing but the rate to checkpoint
    with pytest.raises(InputError, match="positive"):
        GradientDescent(net.parameters(), lr=0.0)


def _noisy_rings(n: int = 96) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (_ring_digit() + 0.2 * torch.rand(n, 1, 28, 28, generator=gen)).clamp(0, 1)


def test_a_few_epochs_of_gradient_descent_in_fit_reduce_the_loss(tmp_path):
    cfg = TrainConfig(epochs=4, val_digits=16, lr=0.5, backend="python")
    net, history = train(cfg, tmp_path, digits=_noisy_rings(), progress=False)
    assert history["epoch_loss"][-1] < history["epoch_loss"][0]
    assert history["val_psnr"][-1] > history["val_psnr"][0]
    assert history["steps_per_epoch"] == 3  # 80 digits in batches of 32: 32, 32 and the 16 left over
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.pt", "curves.png", "history.json"}
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # fit's checkpoint, no pickled objects
    assert state["epoch"] == 4 and state["config"]["drop_last"] is False


def test_resumed_gradient_descent_matches_an_uninterrupted_run(tmp_path):
    digits = _noisy_rings()
    straight, _ = train(TrainConfig(epochs=2, val_digits=16, lr=0.5, backend="python"), None, digits=digits,
                        progress=False)
    train(TrainConfig(epochs=1, val_digits=16, lr=0.5, backend="python"), tmp_path, digits=digits, progress=False)
    resumed, history = train(TrainConfig(epochs=2, val_digits=16, lr=0.5, backend="python"), tmp_path,
                             digits=digits, resume=True, progress=False)
    assert len(history["epoch_loss"]) == 2
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.skipif(not HAS_MNIST, reason="needs ../shared/data/MNIST (or RESTOREKIT_DATA)")
def test_beats_biharmonic_on_held_apart_digits():
    import numpy as np
    from skimage.restoration import inpaint_biharmonic

    truth = load_mnist(DATA, train=False)[:100]
    mask = Mask.lower_half(28, 28)
    y = mask.apply(truth)
    ours = float(half_psnr(restorekit.create("mlp-inpaint")(y, mask), truth).mean())
    missing = np.zeros((28, 28), bool)
    missing[14:] = True
    bh = torch.stack([torch.from_numpy(inpaint_biharmonic(d[0].numpy(), missing)).float()[None] for d in y])
    assert ours > float(half_psnr(bh, truth).mean()) + 1.0


@pytest.mark.skipif(not HAS_MNIST, reason="needs ../shared/data/MNIST (or RESTOREKIT_DATA)")
def test_restorekit_train_mlp_inpaint(tmp_path):
    from restorekit.cli.main import main

    dest = tmp_path / "w.pt"
    code = main(["train", "mlp-inpaint", "--data", str(DATA), "--limit", "480", "--epochs", "2",
                 "--out", str(tmp_path / "run"), "--export", str(dest), "--no-progress", "--", "--val-digits", "80"])
    assert code == 0
    meta = json.loads(dest.with_suffix(".json").read_text())["metadata"]
    assert meta["epochs"] == 2 and meta["updates"] == 2 * 13
    assert main(["train", "mlp-inpaint", "--sigma", "0.1", "--out", str(tmp_path / "x")]) == 2
