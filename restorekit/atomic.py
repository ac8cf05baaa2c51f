"""Atomic file writes: a file appears complete or not at all.

:func:`atomic_output` hands out a temporary path in the destination's own
folder; when the ``with`` block ends without an error the temporary file is
flushed to disk and moved over the destination with :func:`os.replace`
(atomic on POSIX and Windows within one file system). On an error it is
deleted and the destination is left as it was. A reader therefore never sees
a half-written image, checkpoint or table.

Examples
--------
>>> import tempfile, pathlib
>>> from restorekit.atomic import atomic_output
>>> target = pathlib.Path(tempfile.mkdtemp()) / "table.md"
>>> with atomic_output(target) as tmp:
...     _ = tmp.write_text("| a | b |\\n")
>>> target.read_text()
'| a | b |\\n'
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Iterator

from .errors import InputError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    Parameters
    ----------
    path : str or path-like
        The file to create or replace. Its folder must exist.

    Yields
    ------
    pathlib.Path
        A fresh path in the same folder, hidden (its name starts with a dot)
        and keeping ``path``'s suffix so that libraries choosing a format by
        suffix still do. Write the whole file there.

    Raises
    ------
    InputError
        If the destination's folder does not exist or is not writable.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {target}: the folder {folder} does not exist; create it first")
    tmp = folder / f".{target.stem}.{uuid.uuid4().hex[:12]}.tmp{target.suffix}"
    try:
        # Created by hand (not mkstemp) so the final file gets the usual permissions (umask).
        with open(tmp, "xb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write in {folder}: {exc.strerror or exc}; choose a writable output folder") from None
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    return write_bytes_atomic(path, text.encode(encoding))


__all__ = ["atomic_output", "write_bytes_atomic", "write_text_atomic"]
