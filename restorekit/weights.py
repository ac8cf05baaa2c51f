"""Shipped (and user) weights: a state dict, its metadata, and its SHA-256.

A model is stored as two files side by side:

``name.pt``    the ``state_dict`` only, written with :func:`torch.save` and
               read back with ``torch.load(..., weights_only=True)``, so
               loading a file never runs code from it;
``name.json``  the sidecar: the architecture parameters needed to build the
               network (``arch``), free-form provenance (``metadata``: training
               data, noise range, epochs, the PSNR reached, the command that
               produced it, the date) and the ``sha256`` of ``name.pt``.

:func:`load_model` checks the hash before reading the state dict and builds
the network from ``arch`` through a callback, so this module knows no model.
Every problem (a file missing, truncated, tampered with, or written for
another architecture) raises :class:`~restorekit.errors.WeightsError` naming
the file and the fix.

Examples
--------
>>> import tempfile, pathlib, torch
>>> from restorekit.weights import save_model, load_model
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.pt"
>>> net = torch.nn.Linear(3, 2)
>>> _ = save_model(net, path, arch={"inputs": 3, "outputs": 2}, metadata={"epochs": 0})
>>> again, meta = load_model(path, lambda arch: torch.nn.Linear(arch["inputs"], arch["outputs"]))
>>> meta["arch"], meta["metadata"]["epochs"]
({'inputs': 3, 'outputs': 2}, 0)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

from .atomic import write_bytes_atomic, write_text_atomic
from .errors import WeightsError

FORMAT_VERSION = 1
DEFAULT_FIX = "re-train it with the plugin's training script (see the .json's 'command') or reinstall restorekit"


def sidecar_path(path: str | os.PathLike) -> Path:
    """The ``.json`` metadata file that goes with the weights file ``path``."""
    return Path(path).with_suffix(".json")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model: Any, path: str | os.PathLike, arch: Mapping[str, Any],
               metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s state dict to ``path`` and its sidecar ``.json``, both atomically.

    Parameters
    ----------
    model : torch.nn.Module or dict
        The network (its ``state_dict()`` is saved, on the CPU) or a state dict.
    path : str or path-like
        Destination ``.pt`` file; its folder must exist.
    arch : mapping
        JSON-serialisable constructor arguments; :func:`load_model` passes
        them to its ``build`` callback.
    metadata : mapping, optional
        JSON-serialisable provenance: training data, noise range, epochs,
        PSNR reached, command. ``created`` (UTC date) is added if absent.

    Returns
    -------
    pathlib.Path
        The weights file.
    """
    import torch

    path = Path(path)
    if path.suffix != ".pt":
        raise WeightsError(f"weights file {path} must end in .pt; choose a name like model.pt")
    state = model.state_dict() if hasattr(model, "state_dict") else dict(model)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    meta = dict(metadata or {})
    meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    sidecar = {
        "format": FORMAT_VERSION,
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "arch": dict(arch),
        "metadata": meta,
    }
    try:
        text = json.dumps(sidecar, indent=2, sort_keys=False) + "\n"
    except TypeError as exc:
        raise WeightsError(f"the arch/metadata of {path} are not JSON-serialisable: {exc}; pass plain "
                           "numbers, strings, lists and dicts") from None
    write_bytes_atomic(path, data)
    write_text_atomic(sidecar_path(path), text)
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The sidecar of weights file ``path`` (``arch``, ``metadata``, ``sha256``...).

    Raises
    ------
    WeightsError
        If the sidecar is missing or is not valid JSON with ``sha256`` and ``arch``.
    """
    path = Path(path)
    side = sidecar_path(path)
    if not side.is_file():
        raise WeightsError(f"weights metadata {side} is missing (it must sit beside {path.name}); {DEFAULT_FIX}")
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"weights metadata {side} is unreadable ({exc}); {DEFAULT_FIX}") from None
    if not isinstance(info, dict) or not isinstance(info.get("sha256"), str) or not isinstance(info.get("arch"), dict):
        raise WeightsError(f"weights metadata {side} lacks 'sha256' or 'arch'; it was not written by "
                           f"restorekit.weights.save_model; {DEFAULT_FIX}")
    info.setdefault("metadata", {})
    return info


def verify(path: str | os.PathLike) -> dict:
    """Check that ``path`` exists and matches its sidecar's size and SHA-256; return the sidecar."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} is missing; {DEFAULT_FIX}")
    info = read_metadata(path)
    size = path.stat().st_size
    if isinstance(info.get("bytes"), int) and size != info["bytes"]:
        raise WeightsError(f"weights file {path} is truncated or damaged: {size} bytes where its .json "
                           f"says {info['bytes']}; {DEFAULT_FIX}")
    actual = sha256_file(path)
    if actual != info["sha256"]:
        raise WeightsError(f"weights file {path} does not match its .json (SHA-256 {actual[:12]}... instead of "
                           f"{info['sha256'][:12]}...): it was changed or damaged; {DEFAULT_FIX}")
    return info


def load_state_dict(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(state_dict, sidecar)`` of a verified weights file, read with ``weights_only=True``."""
    import torch

    info = verify(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise WeightsError(f"weights file {path} cannot be read as a state dict ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); {DEFAULT_FIX}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights file {path} does not hold a state dict of tensors; {DEFAULT_FIX}")
    return state, info


def load_model(path: str | os.PathLike, build: Callable[[dict], Any]) -> tuple[Any, dict]:
    """Build a network with ``build(arch)`` and load the verified weights of ``path`` into it.

    Parameters
    ----------
    path : str or path-like
        The ``.pt`` file (its ``.json`` sidecar beside it).
    build : callable
        ``build(arch) -> torch.nn.Module``, given the sidecar's ``arch`` dict.

    Returns
    -------
    (torch.nn.Module, dict)
        The network in eval mode, and the sidecar (``arch``, ``metadata``, ``sha256``).

    Raises
    ------
    WeightsError
        Missing, truncated or tampered files, or a state dict whose keys or
        shapes do not fit the network (weights of another architecture).
    """
    state, info = load_state_dict(path)
    try:
        model = build(dict(info["arch"]))
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"weights file {path} describes an architecture this code cannot build "
                           f"({info['arch']}: {exc}); use weights written for this model") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [k for k in expected if k in state and tuple(expected[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}{'...' if len(unexpected) > 3 else ''}")
        if shapes:
            k = shapes[0]
            parts.append(f"{k} has shape {tuple(state[k].shape)} where the network needs {tuple(expected[k].shape)}")
        raise WeightsError(f"weights file {path} is for another architecture ({'; '.join(parts)}); "
                           "use the weights trained for this model, or fix 'arch' in its .json")
    model.load_state_dict(state)
    if hasattr(model, "eval"):
        model.eval()
    return model, info


__all__ = ["FORMAT_VERSION", "load_model", "load_state_dict", "read_metadata", "save_model", "sha256_file",
           "sidecar_path", "verify"]
