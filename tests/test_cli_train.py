"""`restorekit train`: listing trainers, training dncnn on a tiny folder, resuming, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from restorekit import hookimpl
from restorekit.cli.main import main
from restorekit.registry import default_registry
from restorekit.training import load_checkpoint
from restorekit.training.trainers import TrainerSpec, TrainRequest

TINY = ["--", "--hidden-layers", "1", "--hidden-channels", "4"]


@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data / f"{i}.png")
    return data


def test_list_shows_dncnn(capsys):
    assert main(["train", "--list"]) == 0
    assert "dncnn" in capsys.readouterr().out


def test_train_dncnn_tiny_then_resume_and_export(folder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    args = ["train", "dncnn", "--data", str(folder), "--out", str(out), "--epochs", "1", "--batch-size", "4",
            "--sigma-range", "0,0.2", "--seed", "1", "--no-progress"]
    assert main(args + TINY) == 0
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] == 1 and state["history"]["steps_per_epoch"] == 3  # 3 images x 4 patches / 4
    opts = state["extra"]["options"]
    assert opts["sigma_range"] == [0.0, 0.2] and opts["sigma"] is None and opts["seed"] == 1
    assert state["extra"]["arch"] == {"channels": 3, "hidden_layers": 1, "hidden_channels": 4, "use_bias": True}
    assert "validation PSNR" in capsys.readouterr().out
    # resume for a second epoch, then ship the result to a weights folder of our own
    import restorekit_plugins.dncnn.train as dtrain

    monkeypatch.setattr(dtrain, "WEIGHTS_DIR", tmp_path / "weights")
    args[args.index("--epochs") + 1] = "2"
    # a second run into the same folder neither replaces nor continues the first unless told which
    assert main(args + TINY) == 2
    assert "holds the checkpoint of an earlier run; continue it with --resume, replace it with --overwrite" in \
        capsys.readouterr().err
    assert main(args + ["--resume", "--export", "tiny"] + TINY) == 0
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2
    meta = json.loads((tmp_path / "weights" / "tiny.json").read_text())
    assert meta["metadata"]["epochs"] == 2 and meta["metadata"]["noise_sigma_range"] == [0.0, 0.2]
    import restorekit

    net = restorekit.create("dncnn", weights=str(tmp_path / "weights" / "tiny.pt"))
    assert net(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
    assert "--resume" not in meta["metadata"]["command"] and "--hidden-channels 4" in meta["metadata"]["command"]
    # --overwrite starts again from scratch in the same folder
    args[args.index("--epochs") + 1] = "1"
    assert main(args + ["--overwrite"] + TINY) == 0
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1


def test_train_help_shows_the_plugins_options(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "dncnn", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: restorekit train dncnn")
    for flag in ("--preset", "--hidden-channels", "--no-bias", "--sigma-range", "--crops-per-epoch", "--overwrite",
                 "--resume", "--export"):
        assert flag in text


@pytest.mark.parametrize("argv, message", [
    (["--threads", "-1"], "--threads must be at least 0, got -1"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--epochs", "-3"], "--epochs must be at least 1, got -3"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--", "--hidden-channels", "0"], "--hidden-channels must be at least 1, got 0"),
    (["--", "--hidden-layers", "-1"], "--hidden-layers must be at least 1, got -1"),
    (["--patch", "0"], "--patch must be at least 1, got 0"),
    (["--lr", "0"], "--lr must be above 0, got 0"),
    (["--sigma", "25"], "--sigma 25 is above 1: sigmas are on the [0, 1] scale"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--resume", "--overwrite"], "not allowed with argument"),
])
def test_training_audit_cases_are_one_line_errors(argv, message, tmp_path, capsys):
    assert main(["train", "dncnn", "--out", str(tmp_path / "r")] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_train_on_cuda_without_a_gpu_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "dncnn", "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--device: 'cuda' was asked for but no CUDA GPU is visible to torch; use cpu" in err
    assert err.count("\n") == 1


def test_train_out_naming_a_plain_file_is_refused(tmp_path, capsys):
    plain = tmp_path / "notes.txt"
    plain.write_text("mine")
    assert main(["train", "dncnn", "--out", str(plain)] + TINY) == 2
    assert "is a file, not a folder; name a folder for the run" in capsys.readouterr().err
    assert plain.read_text() == "mine"


def test_bad_input_gives_one_line_errors(folder, tmp_path, capsys):
    assert main(["train", "nosuch"]) == 2
    assert "no trainer named 'nosuch'" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "dncnn", "--data", str(empty), "--out", str(tmp_path / "r")] + TINY) == 2
    assert "holds no images" in capsys.readouterr().err
    (folder / "bad.jpg").write_bytes(b"not a jpeg")
    assert main(["train", "dncnn", "--data", str(folder), "--out", str(tmp_path / "r")] + TINY) == 2
    assert "bad.jpg" in capsys.readouterr().err
    (folder / "bad.jpg").unlink()
    assert main(["train", "dncnn", "--epochs", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert main(["train", "dncnn", "--data", str(folder), "--out", str(tmp_path / "none"), "--resume", "--batch-size", "4"] + TINY) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_a_plugin_registers_its_own_trainer():
    seen = []

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(TrainerSpec(name="toy", run=lambda req: seen.append(req) or 0, summary="a toy"))

    reg = default_registry()
    reg.add_plugin(Plugin(), name="toy-plugin")
    try:
        assert main(["train", "toy", "--epochs", "3", "--sigma", "0.05", "--", "--depth", "2"]) == 0
    finally:
        reg.remove_plugin("toy-plugin")
    req = seen[0]
    assert isinstance(req, TrainRequest) and req.name == "toy" and req.epochs == 3 and req.sigma == 0.05
    assert req.extra == ["--depth", "2"] and req.out == "runs/toy" and req.batch_size is None
