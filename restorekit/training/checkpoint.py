"""Training checkpoints: written atomically, read back without running code.

:func:`save_checkpoint` writes the whole state to a temporary file in the
checkpoint's folder and moves it over the old one with :func:`os.replace`,
so a run killed at any moment (mid-write included) leaves the last complete
checkpoint in place. :func:`load_checkpoint` reads with
``weights_only=True``; a checkpoint therefore holds only tensors, numbers,
strings, lists and dicts (model and optimizer state dicts, the epoch and
step reached, the history, the configuration).

Examples
--------
>>> import tempfile, pathlib, torch
>>> from restorekit.training.checkpoint import save_checkpoint, load_checkpoint
>>> path = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.pt"
>>> _ = save_checkpoint(path, {"epoch": 1, "model": {"w": torch.ones(2)}})
>>> load_checkpoint(path)["epoch"]
1
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..atomic import atomic_output
from ..errors import InputError

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + ``os.replace``) and return the path."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save(dict(state), tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises
    ------
    InputError
        If the file is missing or unreadable, naming it and what to do.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no checkpoint at {path} to resume from; start without --resume, or pass the --out "
                         "folder of an earlier run")
    _check_crc(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise InputError(f"checkpoint {path} is damaged ({type(exc).__name__}); delete it and start again "
                         "without --resume") from None
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(f"{path} is not a restorekit training checkpoint; pass the --out folder of a run")
    return state


def _check_crc(path: Path) -> None:
    """Refuse a checkpoint whose zip CRC-32s do not match (``torch.load`` does not check them: flipped bytes
    in a tensor load silently as wrong weights)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return  # not a zip (truncated, or torch's legacy format): torch.load judges it
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        bad = f"({type(exc).__name__}: {exc})"
    except Exception as exc:  # noqa: BLE001 - zlib and struct errors of a mangled archive
        bad = f"({type(exc).__name__})"
    if bad is not None:
        where = bad if bad.startswith("(") else f"(the CRC-32 of its part {bad.split('/', 1)[-1]} does not match)"
        raise InputError(f"checkpoint {path} is damaged {where}; delete it, or "
                         "restore it from a backup, and start again without --resume") from None


__all__ = ["CHECKPOINT_NAME", "load_checkpoint", "save_checkpoint"]
