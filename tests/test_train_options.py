"""Training options declared once (restorekit.training.options): parser, presets, limits, run folder, entry points."""

from __future__ import annotations

import importlib
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from restorekit import hookimpl
from restorekit.atomic import TEMP_MARK
from restorekit.cli.main import main
from restorekit.errors import InputError
from restorekit.registry import default_registry
from restorekit.training.options import (Trainer, TrainOptions, TrainRun, build_parser, check_sigma_option, option,
                                         prepare_run_folder, resolve_options, trainer)
from restorekit.training.trainers import TrainerSpec

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ToyOptions(TrainOptions):
    preset: str = option("small", "starting settings")
    width: int = option(8, "channels", minimum=1)
    use_bias: bool = option(True, "no bias", flags=("--no-bias",))
    sigma: float | None = option(0.1, "fixed sigma", check=check_sigma_option, exclusive="noise")
    sigma_range: tuple[float, float] | None = option(None, "sigma range", check=check_sigma_option, exclusive="noise")
    mode: str = option("a", "the mode", choices=("a", "b"))
    drop: float | None = option(None, "a fraction", above=0, below=1)

    presets: ClassVar[dict] = {"small": {}, "big": {"width": 64, "epochs": 5}}


def _toy_trainer(seen: list) -> Trainer:
    @trainer(ToyOptions, name="toy")
    def run(opts: ToyOptions, run: TrainRun) -> int:
        seen.append((opts, run))
        return 0

    return run


def test_help_lists_every_option_with_its_default_and_presets():
    text = build_parser(ToyOptions, prog="restorekit train toy", name="toy").format_help()
    for flag in ("--width", "--no-bias", "--sigma", "--sigma-range", "--mode", "--epochs", "--batch-size", "--lr",
                 "--seed", "--device", "--threads", "--out", "--resume", "--overwrite", "--export", "--no-progress"):
        assert flag in text
    assert "channels (default 8; presets: big 64)" in " ".join(text.split())
    assert "default runs/toy" in text


def test_presets_then_given_values_and_exclusive_alternatives():
    assert resolve_options(ToyOptions, {}).width == 8
    big = resolve_options(ToyOptions, {"preset": "big"})
    assert (big.width, big.epochs) == (64, 5)
    assert resolve_options(ToyOptions, {"preset": "big", "width": 3}).width == 3
    ranged = resolve_options(ToyOptions, {"sigma_range": (0.0, 0.2)})
    assert ranged.sigma is None and ranged.sigma_range == (0.0, 0.2)
    with pytest.raises(InputError, match="unknown preset 'huge'"):
        resolve_options(ToyOptions, {"preset": "huge"})


@pytest.mark.parametrize("given, message", [
    ({"width": 0}, "--width must be at least 1, got 0"),
    ({"epochs": -2}, "--epochs must be at least 1, got -2"),
    ({"threads": -1}, "--threads must be at least 0, got -1"),
    ({"lr": 0.0}, "--lr must be above 0, got 0"),
    ({"lr": float("nan")}, "--lr must be a finite number"),
    ({"drop": 1.0}, "--drop must be below 1, got 1"),
    ({"sigma": 25.0}, "0-255 scale"),
    ({"sigma_range": (0.2, 0.1)}, "LOW <= HIGH"),
    ({"mode": "c"}, "--mode must be one of a, b"),
])
def test_limits_are_one_line_errors_naming_the_flag(given, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_options(ToyOptions, given)


def test_the_script_entry_parses_the_same_declaration(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    seen: list = []
    toy = _toy_trainer(seen)
    assert toy.main(["--preset", "big", "--no-bias", "--sigma-range", "0,0.2", "--", "--mode", "b",
                     "--export", "--no-progress"]) == 0
    opts, run = seen[-1]
    assert (opts.width, opts.use_bias, opts.sigma, opts.sigma_range, opts.mode) == (64, False, None, (0.0, 0.2), "b")
    assert run.out == Path("runs/toy") and run.export == "" and not run.progress and not run.resume
    assert run.export_path(tmp_path / "w", "toy-default") == tmp_path / "w" / "toy-default.pt"
    assert run.command.startswith("python -m ") and "--mode b" in run.command and " -- " not in run.command
    assert toy.main(["--width", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --width must be at least 1, got 0"
    assert toy.main(["--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        toy.main(["--help"])
    assert done.value.code == 0 and "--sigma-range" in capsys.readouterr().out


def test_a_run_folder_with_a_checkpoint_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    assert prepare_run_folder(out) == out  # an empty folder is fine
    for name in ("checkpoint.pt", "history.json", "curves.png", "notes.txt"):
        (out / name).write_text("x")
    with pytest.raises(InputError, match="holds the checkpoint of an earlier run; continue it with --resume"):
        prepare_run_folder(out)
    prepare_run_folder(out, resume=True)
    assert (out / "checkpoint.pt").exists()
    with pytest.raises(InputError, match="choose one"):
        prepare_run_folder(out, resume=True, overwrite=True)
    prepare_run_folder(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # the run's files only
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        prepare_run_folder(tmp_path / "plain")


def test_temporaries_of_a_killed_run_are_removed_by_the_next(tmp_path):
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that no longer runs
    out = tmp_path / "run"
    out.mkdir()
    stale = out / f".checkpoint.{gone.pid}-0123abcd{TEMP_MARK}.pt"
    stale.write_bytes(b"half a checkpoint")
    other = out / ".keep-me.tmp"
    other.write_text("not ours")
    prepare_run_folder(out)
    assert not stale.exists() and other.exists()


def _recorded_commands() -> list[tuple[str, str]]:
    found = []
    for side in sorted(ROOT.glob("plugins/*/weights/*.json")):
        meta = json.loads(side.read_text()).get("metadata", {})
        if meta.get("command"):
            found.append((side.stem, meta["command"]))
        for later in meta.get("continue_commands") or []:  # stages resumed with other settings
            words = shlex.split(later)
            assert "--resume" in words or "--init-from" in words, \
                f"{side.name}: a continue command must --resume a run or grow one (--init-from)"
            found.append((side.stem + " (continued)", later))
    return found


@pytest.mark.parametrize("name, command", _recorded_commands())
def test_the_commands_recorded_with_the_shipped_weights_still_parse(name, command):
    """`make weights` re-runs these: each must still name a trainer and valid options."""
    words = shlex.split(command)
    assert words[:2] == ["python", "-m"]
    module = importlib.import_module(words[2])
    entry = next(v for v in vars(module).values() if isinstance(v, Trainer))
    given = vars(entry.parser().parse_args([w for w in words[3:] if w != "--"]))
    assert given.get("export") is not None  # every recorded command ships its weights
    run_keys = {"out", "resume", "overwrite", "export", "no_progress"}
    resolve_options(entry.options, {k: v for k, v in given.items() if k not in run_keys})


def test_restorekit_train_offers_a_declared_trainer(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen: list = []
    toy = _toy_trainer(seen)

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(TrainerSpec(name="toy", run=toy, summary="a declared toy"))

    reg = default_registry()
    reg.add_plugin(Plugin(), name="toy-options-plugin")
    try:
        assert main(["train", "--list"]) == 0
        assert "a declared toy" in capsys.readouterr().out
        with pytest.raises(SystemExit):
            main(["train", "toy", "--help"])
        shown = capsys.readouterr().out
        assert "usage: restorekit train toy" in shown and "--no-bias" in shown and "presets: big 64" in shown
        assert main(["train", "toy", "--width", "5", "--", "--mode", "b"]) == 0
        assert main(["train", "toy", "--", "--width", "0"]) == 2
        assert capsys.readouterr().err.strip() == "restorekit train: error: --width must be at least 1, got 0"
    finally:
        reg.remove_plugin("toy-options-plugin")
    opts, run = seen[-1]
    assert (opts.width, opts.mode, run.name, run.out) == (5, "b", "toy", Path("runs/toy"))
