"""Write a new plugin package from templates: what ``restorekit new-plugin`` does.

:func:`write_plugin` lays out an installable package in ``DIR/NAME``:

- always: ``pyproject.toml`` with the ``restorekit.plugins`` entry point, a
  ``README.md``, the plugin module (its hooks), a restorer (Gaussian
  smoothing, a starting point) and ``tests/test_restorer.py`` built on
  :func:`restorekit.testing.parametrize_with_checks`;
- ``learned=True``: a small residual CNN told the noise level by a sigma-map
  input channel (``model.py``) on
  :class:`restorekit.learned_denoiser.NoiseLevelDenoiser` (``learned.py``:
  ``uses_noise_level = True``, so ``pnp`` steers it), its initial
  weights written here with :func:`restorekit.weights.save_model` (so the
  sidecar and its SHA-256 verify; the last layer is zero, so the untrained
  network returns its input), a trainer built on
  :func:`restorekit.training.fit` registered through ``register_trainers``
  (``train.py``), and ``tests/test_learned.py``;
- ``op=True``: a C++ op (``csrc/soft_threshold.cpp``, built by the
  package's ``setup.py`` with :mod:`torch.utils.cpp_extension`), its autograd
  formula and fake kernel registered with :mod:`torch.library` (``ops.py``),
  its checks registered through ``register_op_checks``, and
  ``tests/test_ops.py`` built on :func:`restorekit.testing.check_op`.

The package is written into a temporary folder next to the destination and
moved into place at the end, so a failure leaves nothing half-written; an
existing destination is never touched. The templates are package data under
``restorekit/scaffold/templates`` (``string.Template`` text, ``$name``
placeholders; a path part ``PACKAGE`` becomes the import name).
"""

from __future__ import annotations

import importlib.util
import keyword
import os
import re
import shutil
import string
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import InputError

#: What a plugin name may look like: a letter, then letters, digits, '_' or '-'.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
#: The template sets, in the order they are laid down (later ones add files).
VARIANTS = ("plain", "learned", "op")


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin name gives: distribution, import package, restorer, learned restorer."""

    dist: str
    package: str
    restorer: str
    learned: str

    @classmethod
    def from_name(cls, name: str) -> "PluginNames":
        """Check ``name`` and derive the other names (``my-filter`` -> package ``my_filter``)."""
        if not NAME_PATTERN.match(name or ""):
            raise InputError(f"plugin name {name!r} is not valid; use a letter followed by letters, digits, "
                             "'_' or '-', e.g. my-filter")
        package = name.lower().replace("-", "_")
        if keyword.iskeyword(package):
            raise InputError(f"plugin name {name!r} is a Python keyword; choose another name, e.g. {name}-plugin")
        if importlib.util.find_spec(package) is not None:
            raise InputError(f"a Python package named {package!r} is already installed here, which the plugin "
                             f"would clash with; choose another name, e.g. {name}-restorers")
        restorer = package.replace("_", "-")
        return cls(dist=name, package=package, restorer=restorer, learned=f"{restorer}-cnn")


def _templates() -> Path:
    return Path(str(resources.files(__name__) / "templates"))


def _fragment(name: str, values: dict[str, str]) -> str:
    return string.Template((_templates() / "hooks" / f"{name}.py.tmpl").read_text()).substitute(values)


def template_values(names: PluginNames, learned: bool, op: bool) -> dict[str, str]:
    """The ``$placeholders`` of the templates for this plugin."""
    values = {"dist": names.dist, "package": names.package, "restorer": names.restorer, "learned": names.learned,
              "title": names.dist}
    requires = ['"setuptools>=64"'] + (['"torch"'] if op else [])
    values["build_requires"] = ", ".join(requires)
    # The weights folder is listed as a (namespace) package so that setuptools ships its files quietly.
    values["packages"] = f'"{names.package}", "{names.package}.weights"' if learned else f'"{names.package}"'
    values["package_data"] = (f'\n[tool.setuptools.package-data]\n"{names.package}.weights" = ["*.pt", "*.json"]\n'
                              if learned else "")
    values["register_more"] = _fragment("learned_register", values) if learned else ""
    values["more_hooks"] = ((_fragment("trainers", values) if learned else "")
                            + (_fragment("op_checks", values) if op else ""))
    features = [f"- `{names.restorer}`: Gaussian smoothing, the template's restorer (`restorer.py`);"]
    usage = []
    if learned:
        features.append(f"- `{names.learned}`: a small residual CNN denoiser told the noise level (a sigma-map input, "
                        "so `pnp` steers it) on restorekit's noise-level-aware learned base (`model.py`, `learned.py`, "
                        "untrained weights in `weights/`), and its trainer (`train.py`);")
        usage.append(f"    restorekit train {names.learned} --export        # train it and ship the weights")
    if op:
        features.append(f"- the compiled op `torch.ops.{names.package}.soft_threshold` (`csrc/`, `ops.py`) "
                        "with autograd and a fake kernel, and its op checks;")
        usage.append(f"    restorekit gradcheck --plugin {names.package}      # the op's checks")
    values["features"] = "\n".join(features) + "\n"
    values["usage"] = ("\n".join(usage) + "\n") if usage else ""
    return values


def _lay_down(variant: str, dest: Path, values: dict[str, str]) -> list[Path]:
    root = _templates() / variant
    written = []
    for src in sorted(root.rglob("*.tmpl")):
        relative = Path(*[values["package"] if part == "PACKAGE" else part for part in src.relative_to(root).parts])
        target = dest / relative.with_suffix("")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(string.Template(src.read_text()).substitute(values))
        written.append(target)
    return written


def write_initial_weights(package_dir: Path, names: PluginNames) -> Path:
    """Save the untrained network of the package's ``model.py`` as ``weights/<learned>.pt`` + ``.json``."""
    import torch

    from ..weights import save_model

    spec = importlib.util.spec_from_file_location(f"_restorekit_new_plugin_{names.package}_model",
                                                  package_dir / "model.py")
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    arch = dict(model.DEFAULT_ARCH)
    torch.manual_seed(0)
    (package_dir / "weights").mkdir(exist_ok=True)
    return save_model(model.build(arch), package_dir / "weights" / f"{names.learned}.pt", arch=arch, metadata={
        "epochs": 0,
        "note": "untrained: written by restorekit new-plugin; the last layer is zero, so the network returns "
                "its input until trained",
        "command": f"restorekit train {names.learned} --export",
    })


def write_plugin(name: str, out_dir: str | os.PathLike = ".", learned: bool = False, op: bool = False) -> Path:
    """Write the plugin package ``name`` into ``out_dir/name`` and return that folder.

    Parameters
    ----------
    name : str
        The distribution name (``my-filter``); the import package is its
        lower-case form with ``_`` for ``-`` (``my_filter``), the restorer
        ``my-filter``, the learned one ``my-filter-cnn``.
    out_dir : path-like
        The folder to write into (created if missing).
    learned : bool
        Add the learned restorer, its initial weights and its trainer.
    op : bool
        Add the compiled op and its checks.

    Raises
    ------
    InputError
        The name is not valid or clashes with an installed package, or the
        destination exists (nothing is overwritten).
    """
    names = PluginNames.from_name(name)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file, not a folder; pass a folder with -o DIR")
    dest = out / name
    if dest.exists() or dest.is_symlink():
        raise InputError(f"{dest} already exists and is left untouched; choose another name or -o DIR")
    out.mkdir(parents=True, exist_ok=True)
    values = template_values(names, learned, op)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out))
    try:
        for variant in VARIANTS:
            if variant == "plain" or (variant == "learned" and learned) or (variant == "op" and op):
                _lay_down(variant, work, values)
        if learned:
            write_initial_weights(work / names.package, names)
        work.chmod(0o777 & ~_umask())
        if dest.exists():  # appeared while writing
            raise InputError(f"{dest} appeared while the plugin was written and is left untouched; try again")
        os.rename(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return dest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


__all__ = ["NAME_PATTERN", "PluginNames", "VARIANTS", "template_values", "write_initial_weights", "write_plugin"]
