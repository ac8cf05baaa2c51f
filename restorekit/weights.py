"""Shipped (and user) weights: a state dict, its metadata, and its SHA-256.

A model is stored as two files side by side:

``name.pt``    the ``state_dict`` only, written with :func:`torch.save` and
               read back with ``torch.load(..., weights_only=True)``, so
               loading a file never runs code from it;
``name.json``  the sidecar: the architecture parameters needed to build the
               network (``arch``), free-form provenance (``metadata``: training
               data, noise range, epochs, the PSNR reached, the command that
               produced it, the date, and ``trained_for``: the degradation the
               model was trained for), ``file_sha256`` (the SHA-256 of
               ``name.pt``'s bytes) and ``sha256``, the checked hash.

The checked hash (format 2) covers the ``.pt`` bytes *and* what builds and
guards the model: ``arch`` and ``metadata.trained_for`` (see
:func:`checked_sha256`). An ``arch`` edited in the sidecar is therefore refused
before any network is built, so a wrong number cannot make the loader
allocate gigabytes. Sidecars of format 1 (``sha256`` of the bytes only, from
older versions) still load; for them, and as a second line of defence, the
network is first built on PyTorch's ``meta`` device (no memory) and its
shapes compared with the state dict's. The hash is public, not a signature:
an edited ``arch`` with a re-computed hash is stopped while it is built,
once the network creates more tensor elements than twice the ``.pt`` file
holds (plus a million), whatever the network's code (see
:data:`BUILD_FACTOR`).

:func:`load_model` checks the hashes before reading the state dict and
builds the network from ``arch`` through a callback, so this module knows no
model. Every problem (a file missing, truncated, tampered with, or written
for another architecture) raises :class:`~restorekit.errors.WeightsError`
naming the file and the fix; the advice to reinstall restorekit is given
only for weights restorekit ships.

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

FORMAT_VERSION = 2
#: The advice for a damaged file that restorekit (or a plugin package) ships.
SHIPPED_FIX = "re-train it with the plugin's training script (see the .json's 'command') or reinstall restorekit"
#: The advice for a user's own file.
USER_FIX = ("re-train or re-export it (restorekit train ... --export, or restorekit.weights.save_model), "
            "keeping the .pt and its .json together and unedited")
#: Kept for plugins that imported it: the advice for shipped weights.
DEFAULT_FIX = SHIPPED_FIX
_HASH_PREFIX = b"restorekit-weights-v2\n"


def is_shipped(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies inside an installed package (restorekit's, its plugins', or a plugin package's).

    Used only to choose the advice in error messages: "reinstall" makes sense
    for a file a package put there, not for a user's own file.
    """
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError):
        return False
    here = Path(__file__).resolve().parent
    roots = [here, here.parent / "plugins"]
    try:
        import restorekit_plugins  # the built-in plugins, wherever they are installed

        roots.append(Path(restorekit_plugins.__file__).resolve().parent)
    except Exception:  # noqa: BLE001 - no built-in plugins: only restorekit's own folder counts
        pass
    if any(resolved.is_relative_to(root) for root in roots):
        return True
    return "site-packages" in resolved.parts or "dist-packages" in resolved.parts


def _fix(path: str | os.PathLike) -> str:
    return SHIPPED_FIX if is_shipped(path) else USER_FIX


def checked_sha256(file_sha256: str, arch: Mapping[str, Any], trained_for: Any = None) -> str:
    """The checked hash of a format-2 sidecar.

    SHA-256 over a fixed prefix, the weights file's own SHA-256 and the
    canonical JSON (sorted keys, no spaces) of ``{"arch": ..., "trained_for":
    ...}``: whatever builds the network or decides when it is used.

    Examples
    --------
    >>> checked_sha256("0" * 64, {"channels": 3}) == checked_sha256("0" * 64, {"channels": 3}, None)
    True
    >>> checked_sha256("0" * 64, {"channels": 3}) == checked_sha256("0" * 64, {"channels": 4})
    False
    """
    covered = json.dumps({"arch": dict(arch), "trained_for": trained_for}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(_HASH_PREFIX)
    digest.update(file_sha256.encode("ascii") + b"\n")
    digest.update(covered.encode("utf-8"))
    return digest.hexdigest()


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
        ``trained_for`` (``{"kernel_sha256": str or None, "noise_sigma_range":
        [lo, hi], "tasks": [...]}``), when given, is covered by the checked
        hash and read by :class:`restorekit.learned.LearnedRestorer`'s guard.

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
    file_sha = hashlib.sha256(data).hexdigest()
    try:
        # Round-trip through JSON so that the hash is computed over exactly what a reader will see.
        arch_json = json.loads(json.dumps(dict(arch)))
        trained_for = json.loads(json.dumps(meta.get("trained_for")))
        sidecar = {
            "format": FORMAT_VERSION,
            "file": path.name,
            "sha256": checked_sha256(file_sha, arch_json, trained_for),
            "file_sha256": file_sha,
            "bytes": len(data),
            "arch": arch_json,
            "metadata": meta,
        }
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
        raise WeightsError(f"weights metadata {side} is missing (it must sit beside {path.name}); {_fix(path)}")
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"weights metadata {side} is unreadable ({exc}); {_fix(path)}") from None
    except RecursionError:  # nesting deeper than Python's recursion limit: no sidecar of ours looks like that
        raise WeightsError(f"weights metadata {side} is nested too deeply to be a restorekit sidecar; "
                           f"{_fix(path)}") from None
    if not isinstance(info, dict) or not isinstance(info.get("sha256"), str) or not isinstance(info.get("arch"), dict):
        raise WeightsError(f"weights metadata {side} lacks 'sha256' or 'arch'; it was not written by "
                           f"restorekit.weights.save_model; {_fix(path)}")
    if not isinstance(info.get("metadata", {}), dict):
        raise WeightsError(f"weights metadata {side} has a 'metadata' that is not an object; {_fix(path)}")
    info.setdefault("metadata", {})
    return info


def verify(path: str | os.PathLike) -> dict:
    """Check ``path`` against its sidecar (size, SHA-256, and for format 2 the checked hash); return the sidecar.

    Reads no state dict and builds nothing, so a sidecar whose ``arch`` was
    edited is refused here, before any memory is allocated for a network.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} is missing; {_fix(path)}")
    info = read_metadata(path)
    size = path.stat().st_size
    if isinstance(info.get("bytes"), int) and size != info["bytes"]:
        raise WeightsError(f"weights file {path} is truncated or damaged: {size} bytes where its .json "
                           f"says {info['bytes']}; {_fix(path)}")
    actual = sha256_file(path)
    recorded_file = info.get("file_sha256") if info.get("format", 1) >= 2 else info["sha256"]
    if actual != recorded_file:
        raise WeightsError(f"weights file {path} does not match its .json (SHA-256 {actual[:12]}... instead of "
                           f"{str(recorded_file)[:12]}...): it was changed or damaged; {_fix(path)}")
    if info.get("format", 1) >= 2:
        expected = checked_sha256(actual, info["arch"], info["metadata"].get("trained_for"))
        if expected != info["sha256"]:
            raise WeightsError(
                f"weights metadata {sidecar_path(path)} was edited after {path.name} was written: its 'arch' or "
                f"'trained_for' no longer match the checked SHA-256 (so it may describe another architecture "
                f"than the file holds); nothing was built. Restore the .json written with the weights, or {USER_FIX}"
            )
    return info


def load_state_dict(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(state_dict, sidecar)`` of a verified weights file, read with ``weights_only=True``."""
    import torch

    info = verify(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        # torch's own message suggests weights_only=False, which would run code from the file: not repeated here.
        raise WeightsError(f"weights file {path} cannot be read as a state dict of tensors "
                           f"({type(exc).__name__}); restorekit loads only plain tensors, never pickled code: "
                           f"{_fix(path)}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights file {path} does not hold a state dict of tensors; {_fix(path)}")
    return state, info


def _shape_problems(expected: Mapping[str, Any], state: Mapping[str, Any]) -> list[str]:
    """What keeps ``state`` from loading into a network whose state dict is ``expected`` (empty when it fits)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [k for k in expected if k in state and tuple(expected[k].shape) != tuple(state[k].shape)]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}")
    if unexpected:
        parts.append(f"unexpected {', '.join(unexpected[:3])}{'...' if len(unexpected) > 3 else ''}")
    if shapes:
        k = shapes[0]
        parts.append(f"{k} has shape {tuple(state[k].shape)} where the network needs {tuple(expected[k].shape)}")
    return parts


#: How many tensor elements building a network may create, as a multiple of the elements in its
#: ``.pt`` file (plus :data:`BUILD_SLACK`): a network that loads creates exactly its state dict's
#: tensors, so more means an ``arch`` that does not fit the file.
BUILD_FACTOR = 2
BUILD_SLACK = 1_000_000


def _element_budget(path: Any, state: Mapping[str, Any], arch: Mapping[str, Any]) -> Any:
    """A torch function mode that counts the elements of the tensors a network build creates and stops it,
    with a :class:`WeightsError`, once they exceed what ``state`` (the ``.pt`` file's tensors) can fill.

    This bounds the architecture *before* it is built in full: a sidecar whose ``arch`` was edited
    and its public hash re-computed (``hidden_layers`` = 10**9) stops after a few layers instead of
    allocating gigabytes, whatever the network's code.
    """
    from torch.overrides import TorchFunctionMode
    from torch.utils._device import _device_constructors

    held = sum(int(t.numel()) for t in state.values())
    limit = BUILD_FACTOR * held + BUILD_SLACK
    constructors = _device_constructors()

    class _Budget(TorchFunctionMode):
        created = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func in constructors and hasattr(out, "numel"):
                self.created += int(out.numel())
                if self.created > limit:
                    raise WeightsError(
                        f"weights file {path} is for another architecture: its .json 'arch' {_short(arch)} builds a network of more than "
                        f"{limit:,} values while the .pt holds {held:,}; the sidecar does not describe this file "
                        f"(its hash is public, not a signature, so an edited 'arch' can carry a matching hash). "
                        f"Use the .json written with these weights; {_fix(path)}")
            return out

    return _Budget()


def _short(arch: Any) -> str:
    text = json.dumps(dict(arch), sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _build_on_meta(build: Callable[[dict], Any], arch: dict) -> Any:
    """``build(arch)`` on the ``meta`` device (shapes only, no memory), or None when the network cannot be."""
    import torch

    try:
        with torch.device("meta"):
            return build(dict(arch))
    except (TypeError, ValueError, WeightsError):
        raise
    except Exception:  # noqa: BLE001 - a network that needs real tensors at construction: checked after
        return None


def upgrade_sidecar(path: str | os.PathLike, trained_for: Mapping[str, Any] | None = None) -> dict:
    """Re-write the sidecar of ``path`` in the current format, after checking the ``.pt`` against it.

    The ``.pt`` file is not touched. A format-1 sidecar (hash of the bytes
    only) gains ``file_sha256`` and the checked hash over ``arch`` and
    ``trained_for``; ``trained_for``, when given, is stored in ``metadata``
    first. Use it for weights written by an older restorekit, after making
    sure their ``arch`` is the one they were trained with.

    Returns
    -------
    dict
        The new sidecar.
    """
    path = Path(path)
    info = verify(path)
    meta = dict(info["metadata"])
    if trained_for is not None:
        meta["trained_for"] = json.loads(json.dumps(dict(trained_for)))
    file_sha = sha256_file(path)
    new = {
        "format": FORMAT_VERSION,
        "file": info.get("file", path.name),
        "sha256": checked_sha256(file_sha, info["arch"], meta.get("trained_for")),
        "file_sha256": file_sha,
        "bytes": path.stat().st_size,
        "arch": info["arch"],
        "metadata": meta,
    }
    write_text_atomic(sidecar_path(path), json.dumps(new, indent=2, sort_keys=False) + "\n")
    return new


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
    arch = dict(info["arch"])
    try:
        with _element_budget(path, state, arch):  # the build stops as soon as it creates more than the file can fill
            probe = _build_on_meta(build, arch)
        if probe is not None and hasattr(probe, "state_dict"):
            parts = _shape_problems(probe.state_dict(), state)
            if parts:
                raise WeightsError(f"weights file {path} is for another architecture ({'; '.join(parts)}); "
                                   "use the weights trained for this model, or fix 'arch' in its .json")
        with _element_budget(path, state, arch):
            model = build(arch)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"weights file {path} describes an architecture this code cannot build "
                           f"({info['arch']}: {exc}); use weights written for this model") from None
    parts = _shape_problems(model.state_dict(), state)
    if parts:
        raise WeightsError(f"weights file {path} is for another architecture ({'; '.join(parts)}); "
                           "use the weights trained for this model, or fix 'arch' in its .json")
    model.load_state_dict(state)
    if hasattr(model, "eval"):
        model.eval()
    return model, info


def export(model: Any, path: str | os.PathLike, *, sampler: Any = None, trained_for: Mapping[str, Any] | None = None,
           history: Mapping[str, Any] | None = None, arch: Mapping[str, Any] | None = None,
           metadata: Mapping[str, Any] | None = None, precision: str = "float32", device: str = "cpu",
           threads: int | None = None, command: str = "", steps: int | None = None) -> Path:
    """Ship a trained model: weights and sidecar (:func:`save_model`, each written atomically), with its provenance.

    The one exporter of every trainer. The sidecar's ``metadata`` holds what
    the trainer adds (``metadata``: data, options...) and, filled in here:

    ``trained_for``
        the sampler's (:attr:`restorekit.degrade.DegradationSampler.trained_for`:
        tasks, kernel SHA-256, noise range...), read by the learned restorers'
        guard (a retrained model keeps it), or ``trained_for`` as given;
    ``machine``, ``precision``
        the CPU's name, whether it has AMX-BF16, the torch threads and the
        device; ``float32`` or ``bfloat16 autocast``;
    ``steps``, ``epochs``, ``train_seconds``, ``val_psnr_db``, ``final_train_loss``
        from the run's ``history`` (:func:`restorekit.training.fit`'s);
        ``steps`` may be given (a run stopped mid-epoch);
    ``command``
        the command line that trained it.

    Parameters
    ----------
    model : LearnedRestorer, torch.nn.Module or state dict
        What to ship (a restorer's ``net``).
    path : path
        The ``.pt`` file; its folder is made.
    arch : mapping, optional
        The network's constructor arguments (default ``net.arch()``).

    Returns
    -------
    pathlib.Path
        The weights file.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from restorekit.degrade import DegradationSampler
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.pt"
    >>> _ = export(torch.nn.Conv2d(1, 1, 3), path, arch={}, sampler=DegradationSampler(sigma_range=(0, 0.1)))
    >>> read_metadata(path)["metadata"]["trained_for"]["noise_sigma_range"]
    [0.0, 0.1]
    """
    import torch

    from .training.machine import cpu_has_amx_bf16, cpu_has_avx512_bf16, cpu_name

    net = model if isinstance(model, (torch.nn.Module, Mapping)) else model.net  # a restorer: its network
    if arch is None:
        if not callable(getattr(net, "arch", None)):
            raise WeightsError(f"export: give arch= (the network's constructor arguments) for {type(net).__name__}, "
                               "which has no arch() method")
        arch = net.arch()
    meta: dict[str, Any] = dict(metadata or {})
    found = sampler.trained_for if sampler is not None else trained_for
    if found is not None:
        meta["trained_for"] = dict(found)
    h = dict(history or {})
    epochs = len(h.get("epoch_loss") or [])
    if steps is None and h:
        steps = epochs * int(h.get("steps_per_epoch", 0))
    if h:
        meta.setdefault("epochs", epochs)
        meta["steps"] = steps
        meta["train_seconds"] = round(float(h.get("seconds", 0.0)), 1)
        meta.setdefault("val_psnr_db", round(h["val_psnr"][-1], 3) if h.get("val_psnr") else None)
        meta.setdefault("final_train_loss", round(h["epoch_loss"][-1], 6) if h.get("epoch_loss") else None)
    elif steps is not None:
        meta["steps"] = steps
    meta["precision"] = precision
    meta["machine"] = {"cpu": cpu_name(), "amx_bf16": cpu_has_amx_bf16(), "avx512_bf16": cpu_has_avx512_bf16(),
                       "threads": int(threads) if threads else torch.get_num_threads(), "device": str(device)}
    if command:
        meta["command"] = command
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return save_model(net, target, arch=arch, metadata=meta)


__all__ = ["FORMAT_VERSION", "checked_sha256", "export", "is_shipped", "load_model", "load_state_dict", "read_metadata",
           "save_model", "sha256_file", "sidecar_path", "upgrade_sidecar", "verify"]
