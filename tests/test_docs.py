"""The docs' examples run as written, and the command-line help they show is the code's.

* Every ``python`` block of the user guide runs, page by page in order, in an empty folder.
* The plugin guide's and the learned-restorer guide's files (blocks whose first line is
  ``# my_restorers/FILE.py``) make a package that imports, registers, restores and trains as the
  guides say; their test blocks pass under pytest.
* Every command of ``restorekit`` has its ``{restorekit-help}`` in the CLI page, and that directive's
  text is what the console script prints.
* One gallery figure is made twice and is the same PNG (the gallery is deterministic).

A block preceded by the MyST comment line ``% doc-test: skip`` is not run (a fragment that needs
something the test cannot provide, e.g. a compiled op of a plugin).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

FENCE = re.compile(r"^```(?P<lang>[\w-]+)[^\n]*\n(?P<code>.*?)^```[ \t]*$", re.S | re.M)
SKIP = "% doc-test: skip"
#: A block that is a file of the example package: its first line names it.
FILE_LINE = re.compile(r"^# (?P<path>my_restorers/[\w/]+\.py)\s*$")


def blocks(page: Path, lang: str = "python") -> list[tuple[int, str]]:
    """``(line, code)`` of each fenced ``lang`` block of ``page`` not marked to skip."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        if match["lang"] != lang:
            continue
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if before == SKIP:
            continue
        found.append((text.count("\n", 0, match.start()) + 1, match["code"]))
    return found


def run_blocks(page: Path, namespace: dict | None = None) -> dict:
    """Execute the python blocks of ``page`` in order in one namespace (tracebacks name page and line)."""
    namespace = {"__name__": "__docs__"} if namespace is None else namespace
    for line, code in blocks(page):
        if FILE_LINE.match(code.splitlines()[0]):
            continue
        exec(compile("\n" * line + code, str(page), "exec"), namespace)
    return namespace


# ---------------------------------------------------------------------------------------- user guide
USER_GUIDE = sorted(p for p in (DOCS / "user-guide").glob("*.md") if blocks(p))


def test_the_user_guide_has_examples():
    assert {p.name for p in USER_GUIDE} >= {"python.md", "noise-and-blind.md"}


@pytest.mark.parametrize("page", USER_GUIDE, ids=lambda p: p.name)
def test_user_guide_examples_run(page, tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a block that shows a warning catches it itself
            run_blocks(page)
    finally:
        torch.set_num_threads(threads)
    assert capsys.readouterr().out.strip(), "the examples print what they show"


# ---------------------------------------------------------------------------------------- CLI help
def test_every_command_has_its_help_in_the_cli_page():
    from restorekit.cli.main import COMMANDS

    page = (DOCS / "user-guide" / "cli.md").read_text()
    shown = {m.group(1).strip() for m in re.finditer(r"^```\{restorekit-help\}[ \t]*(.*)$", page, re.M)}
    assert "" in shown, "the top-level 'restorekit --help'"
    missing = set(COMMANDS) - shown
    assert not missing, f"commands without their --help in docs/user-guide/cli.md: {sorted(missing)}"


def test_help_directive_prints_what_the_console_script_prints():
    from restorekit_docs import HELP_COLUMNS, command_help

    env = dict(os.environ, COLUMNS=str(HELP_COLUMNS))
    for words in ([], ["restore"], ["estimate-kernel"]):
        shown = command_help(words)
        printed = subprocess.run([sys.executable, "-m", "restorekit", *words, "--help"], env=env,
                                 capture_output=True, text=True, check=True).stdout
        assert shown.rstrip() == printed.rstrip(), words


def test_help_of_an_unknown_command_fails_the_build():
    from restorekit_docs import command_help

    with pytest.raises(RuntimeError, match="no-such-command"):
        command_help(["no-such-command"])


# ---------------------------------------------------------------------------------------- gallery
def test_gallery_figure_is_deterministic(tmp_path):
    import restorekit_gallery as gallery

    first, _ = gallery.make_figure("superresolve", tmp_path / "a.png")
    second, _ = gallery.make_figure("superresolve", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    scores = [p.psnr for p in first.panels if p.psnr is not None]
    assert scores == [p.psnr for p in second.panels if p.psnr is not None] and len(scores) == 2
    assert all(20 < s < 50 for s in scores), scores


def test_every_gallery_example_is_shown():
    import restorekit_gallery as gallery

    page = (DOCS / "user-guide" / "gallery.md").read_text()
    shown = set(re.findall(r"^```\{gallery-figure\}[ \t]*(\S+)", page, re.M))
    assert shown == set(gallery.FIGURES)


# ---------------------------------------------------------------------------------------- guides' packages
def write_package(page: Path, root: Path) -> Path:
    """Write the blocks of ``page`` whose first line is ``# my_restorers/FILE.py`` under ``root``; return root."""
    for _, code in blocks(page):
        match = FILE_LINE.match(code.splitlines()[0])
        if match:
            target = root / match["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code)
    return root


@pytest.fixture
def fresh_package(monkeypatch):
    """Import ``my_restorers`` from a folder of this test, and forget it afterwards."""
    def use(root: Path):
        monkeypatch.syspath_prepend(str(root))
        for name in [m for m in sys.modules if m == "my_restorers" or m.startswith("my_restorers.")]:
            monkeypatch.delitem(sys.modules, name)
        import my_restorers

        return my_restorers
    yield use
    for name in [m for m in sys.modules if m == "my_restorers" or m.startswith("my_restorers.")]:
        del sys.modules[name]


def test_plugin_guide_noise_level_example_runs_with_its_package(tmp_path, fresh_package, capsys):
    """The guide's uses_noise_level section: its GaussianSmooth registers and is steered by pnp; a blind one warns."""
    page = DOCS / "plugin-guide.md"
    fresh_package(write_package(page, tmp_path))
    example = next(code for _, code in blocks(page) if "registry.add_plugin(my_restorers" in code)
    exec(compile(example, str(page), "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out.splitlines()
    levels = eval(out[0])  # noqa: S307 - the list the example prints
    assert levels[0] == pytest.approx(0.192) and levels[-1] == pytest.approx(0.01) and len(levels) == 8
    assert out[1].endswith(" dB")
    assert "'median' is blind" in out[2] and "uses_noise_level = True" in out[2], out[2]


def test_learned_guide_package_trains_exports_and_restores(tmp_path, fresh_package, capsys):
    """The learned guide's files make a package whose trainer (WEIGHTS_DIR, TrainerSpec) runs and ships weights."""
    import numpy as np
    import torch
    from PIL import Image

    from restorekit.registry import Registry

    package = fresh_package(write_package(DOCS / "learned-restorers.md", tmp_path / "src"))
    from my_restorers.learned import WEIGHTS_DIR
    from my_restorers.train import run

    trainers = []
    package.register_trainers(trainers.append)
    assert [t.name for t in trainers] == ["tiny-denoiser"]
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(data / f"{i}.png")
    code = run.run_argv(["--data", str(data), "--patch", "16", "--epochs", "1", "--batch-size", "2",
                         "--out", str(tmp_path / "run"), "--export", "--no-progress"], prog="restorekit train tiny-denoiser")
    assert code == 0
    assert (WEIGHTS_DIR / "tiny-denoiser.pt").is_file() and (WEIGHTS_DIR / "tiny-denoiser.json").is_file()
    registry = Registry(entry_points=False)
    registry.add_plugin(package, name="my_restorers")
    restorer = registry.create("tiny-denoiser")
    x = torch.rand(1, 3, 16, 16)
    assert restorer(x).shape == x.shape


def test_plugin_guide_names_every_task():
    """The guide's task list omitted superresolve; it must name every task a restorer can declare."""
    from restorekit.restorer import TASKS

    page = (DOCS / "plugin-guide.md").read_text()
    bullet = page[page.index("* **Tasks** are"):].split("\n* ", 1)[0]
    assert set(re.findall(r'`"(\w+)"`', bullet)) == set(TASKS), bullet
