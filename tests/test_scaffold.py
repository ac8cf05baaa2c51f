"""restorekit new-plugin: the packages it writes, the names it refuses, and (slow) the plain one installed and tested."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from restorekit.cli.main import main
from restorekit.errors import InputError
from restorekit.scaffold import PluginNames, write_plugin
from restorekit.weights import verify

PLAIN_FILES = {"pyproject.toml", "README.md", "my_filter/__init__.py", "my_filter/restorer.py",
               "tests/test_restorer.py"}
LEARNED_FILES = {"my_filter/model.py", "my_filter/learned.py", "my_filter/train.py", "tests/test_learned.py",
                 "my_filter/weights/my-filter-cnn.pt", "my_filter/weights/my-filter-cnn.json"}
OP_FILES = {"setup.py", "my_filter/ops.py", "my_filter/csrc/soft_threshold.cpp", "tests/test_ops.py"}


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def hooks(root: Path) -> set[str]:
    tree = ast.parse((root / "my_filter" / "__init__.py").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def compiles(root: Path) -> None:
    for path in root.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")


def test_plain(tmp_path):
    dest = write_plugin("my-filter", tmp_path)
    assert dest == tmp_path / "my-filter"
    assert files(dest) == PLAIN_FILES
    compiles(dest)
    project = tomllib.loads((dest / "pyproject.toml").read_text())
    assert project["project"]["name"] == "my-filter"
    assert project["project"]["entry-points"]["restorekit.plugins"] == {"my_filter": "my_filter"}
    assert hooks(dest) == {"register_restorers"}
    test = (dest / "tests" / "test_restorer.py").read_text()
    assert "@parametrize_with_checks([GaussianSmoothing, \"my-filter\"" in test
    assert not list(tmp_path.glob(".my-filter.*")), "the temporary folder is left behind"


def test_learned_weights_verify(tmp_path):
    dest = write_plugin("my-filter", tmp_path, learned=True)
    assert files(dest) == PLAIN_FILES | LEARNED_FILES
    compiles(dest)
    assert hooks(dest) == {"register_restorers", "register_trainers"}
    weights = dest / "my_filter" / "weights" / "my-filter-cnn.pt"
    sidecar = verify(weights)
    assert sidecar["arch"] == {"channels": 3, "features": 8, "depth": 3}
    assert sidecar["metadata"]["epochs"] == 0
    assert weights.stat().st_size < 20_000
    project = tomllib.loads((dest / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"] == ["my_filter", "my_filter.weights"]
    assert project["tool"]["setuptools"]["package-data"] == {"my_filter.weights": ["*.pt", "*.json"]}


def test_learned_network_starts_as_identity(tmp_path):
    import torch

    from restorekit.weights import load_model

    dest = write_plugin("my-filter", tmp_path, learned=True)
    sys.path.insert(0, str(dest))
    try:
        from my_filter.model import build

        net, _ = load_model(dest / "my_filter" / "weights" / "my-filter-cnn.pt", build)
    finally:
        sys.path.remove(str(dest))
        for name in [m for m in sys.modules if m == "my_filter" or m.startswith("my_filter.")]:
            del sys.modules[name]
    x = torch.rand(1, 3, 9, 11)
    assert torch.equal(net.denoise(x, 0.1), x)  # the image and its sigma map in, the image out
    assert torch.equal(net.denoise(x, torch.full((1, 1, 9, 11), 0.2)), x)


def test_op(tmp_path):
    dest = write_plugin("my-filter", tmp_path, op=True)
    assert files(dest) == PLAIN_FILES | OP_FILES
    compiles(dest)
    assert hooks(dest) == {"register_restorers", "register_op_checks"}
    cpp = (dest / "my_filter" / "csrc" / "soft_threshold.cpp").read_text()
    assert "TORCH_LIBRARY(my_filter, m)" in cpp and "PyInit__C" in cpp
    ops = (dest / "my_filter" / "ops.py").read_text()
    assert 'register_fake("my_filter::soft_threshold")' in ops and 'register_autograd("my_filter::soft_threshold"' in ops
    assert "my_filter._C" in (dest / "setup.py").read_text()
    assert tomllib.loads((dest / "pyproject.toml").read_text())["build-system"]["requires"] == ["setuptools>=64",
                                                                                                 "torch"]


def test_learned_and_op_together(tmp_path):
    dest = write_plugin("my-filter", tmp_path, learned=True, op=True)
    assert files(dest) == PLAIN_FILES | LEARNED_FILES | OP_FILES
    assert hooks(dest) == {"register_restorers", "register_trainers", "register_op_checks"}


def test_names():
    names = PluginNames.from_name("My-Filter2")
    assert (names.dist, names.package, names.restorer, names.learned) == \
        ("My-Filter2", "my_filter2", "my-filter2", "my-filter2-cnn")


@pytest.mark.parametrize("name, problem", [
    ("9lives", "not valid"), ("my filter", "not valid"), ("", "not valid"), ("../up", "not valid"),
    ("class", "keyword"), ("numpy", "already installed"), ("restorekit", "already installed"),
])
def test_bad_names_refused(tmp_path, name, problem):
    with pytest.raises(InputError, match=problem):
        write_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "my-filter").mkdir()
    (tmp_path / "my-filter" / "mine.txt").write_text("keep me")
    assert main(["new-plugin", "my-filter", "-o", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert files(tmp_path / "my-filter") == {"mine.txt"}
    assert (tmp_path / "my-filter" / "mine.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["my-filter"]


def test_cli_writes_into_a_new_out_folder(tmp_path, capsys):
    out = tmp_path / "plugins" / "here"
    assert main(["new-plugin", "my-filter", "-o", str(out)]) == 0
    assert f"wrote {out / 'my-filter'}" in capsys.readouterr().out
    assert files(out / "my-filter") == PLAIN_FILES


def test_out_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["new-plugin", "my-filter", "-o", str(tmp_path / "f")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_templates_are_package_data():
    """setup.py ships every template file (a missing glob would break new-plugin in a wheel)."""
    import restorekit.scaffold

    root = Path(restorekit.scaffold.__file__).parent
    setup_py = (root.parents[1] / "setup.py").read_text()
    depths = {len(p.relative_to(root).parts) for p in (root / "templates").rglob("*.tmpl")}
    for depth in depths:
        assert "scaffold/" + "/".join(["templates"] + ["*"] * (depth - 2)) + "/*.tmpl" in setup_py


@pytest.mark.slow
@pytest.mark.parametrize("learned", [False, True], ids=["plain", "learned"])
def test_package_installs_and_passes_its_tests(tmp_path, learned):
    """pip-install the package into a target folder and run its own tests against it.

    The learned variant's tests train its noise-level-aware denoiser for an epoch, restore with the exported
    weights at two noise levels, and run it as pnp's prior without the blind-denoiser warning.
    """
    dest = write_plugin("my-filter", tmp_path / "src", learned=learned)
    target = tmp_path / "target"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(target), RESTOREKIT_STRICT_PLUGINS="1")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--quiet",
                          "--target", str(target), str(dest)], capture_output=True, text=True, env=env)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (target / "my_filter" / "restorer.py").is_file()
    # Run from elsewhere, so that my_filter is imported from the install, not from the source folder.
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(dest / "tests")],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout
    listed = subprocess.run([sys.executable, "-m", "restorekit", "list", "--json"], capture_output=True, text=True,
                            env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {r["name"] for r in json.loads(listed.stdout)["restorers"]}
    assert "my-filter" in names and (("my-filter-cnn" in names) == learned)
