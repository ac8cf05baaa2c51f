"""Atomic file writes: a file appears complete or not at all.

:func:`atomic_output` hands out a temporary path in the destination's own
folder; when the ``with`` block ends without an error the temporary file is
flushed to disk and moved over the destination with :func:`os.replace`
(atomic on POSIX and Windows within one file system). On an error it is
deleted and the destination is left as it was. A reader therefore never sees
a half-written image, checkpoint or table.

A failed write (disk full, file-size limit, quota, a name too long for the
file system, a read-only folder) becomes one :class:`~restorekit.errors.InputError`
naming the cause and the fix.

Temporary files are hidden and recognisable:
``.<stem>.<pid>-<token>.rk-tmp<suffix>``. A process killed while writing
(``SIGKILL``, a power cut) cannot delete its own; the next write into that
folder removes those whose process is gone and that have not changed for
:data:`STALE_AFTER_S` seconds (see :func:`remove_stale_temporaries`). ``SIGINT``
(Ctrl-C) and, inside :func:`terminate_as_interrupt` (the command line runs
every command in it), ``SIGTERM`` delete the temporary file at once.

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
import errno
import os
import re
import time
import uuid
from pathlib import Path
from typing import Iterator

from .errors import InputError

#: A temporary file whose process is gone is removed once it is this many seconds old (since its last change).
STALE_AFTER_S = 600.0
#: What marks restorekit's temporary files (see :func:`temporary_name`).
TEMP_MARK = ".rk-tmp"
_TEMP_RE = re.compile(r"^\.(?P<stem>.*)\.(?P<pid>\d+)-(?P<token>[0-9a-f]{8})" + re.escape(TEMP_MARK) + r"(\.[^.]*)?$")
_NAME_MAX_FALLBACK = 255
_cleaned: set[str] = set()  # folders already swept by this process


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return _NAME_MAX_FALLBACK


def temporary_name(target: str | os.PathLike, name_max: int = _NAME_MAX_FALLBACK) -> str:
    """The hidden temporary file name for ``target``: ``.<stem>.<pid>-<token>.rk-tmp<suffix>``.

    The stem is shortened so the name fits in ``name_max`` bytes whenever
    the target's own name does; the suffix is kept (libraries choose the
    format by it, and ``np.save`` would append ``.npy`` otherwise).
    """
    path = Path(target)
    suffix = path.suffix if len(path.suffix.encode()) <= 16 else ""
    tail = f".{os.getpid()}-{uuid.uuid4().hex[:8]}{TEMP_MARK}{suffix}"
    room = max(name_max - len(tail.encode()) - 1, 1)
    stem = path.stem.encode()[:room].decode(errors="ignore") or "x"
    return f".{stem}{tail}"


def is_temporary(name: str) -> bool:
    """True for a file name made by :func:`temporary_name`."""
    return _TEMP_RE.match(name) is not None


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else (or cannot tell): keep its file
    return True


def remove_stale_temporaries(folder: str | os.PathLike, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete restorekit's temporary files in ``folder`` that were abandoned.

    A file counts as abandoned when its name matches :func:`temporary_name`,
    the process named in it is not running, and it has not been modified
    for ``older_than_s`` seconds (a live writer keeps touching its file).
    Files of other programs and sub-folders are never touched; files that
    vanish or cannot be removed meanwhile are skipped.

    Parameters
    ----------
    folder : str or path-like
    older_than_s : float
        Minimum age, in seconds since the last change.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_RE.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime < older_than_s:
                continue
            if _process_alive(int(match["pid"])):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key not in _cleaned:
        _cleaned.add(key)
        remove_stale_temporaries(folder)


class WriteFailedError(InputError):
    """Writing a file failed (an :class:`InputError`, so the CLI shows it in one line).

    Attributes
    ----------
    errno : int or None
        The operating system's error number.
    folder_wide : bool
        True when every other write into the same place would fail too
        (disk full, quota, read-only, no permission): a batch stops there.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code
        self.folder_wide = code in _FOLDER_WIDE


_FOLDER_WIDE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EACCES, errno.EPERM}


def write_error(target: Path, exc: OSError) -> WriteFailedError:
    """A one-line :class:`WriteFailedError` for an ``OSError`` met while writing ``target``: cause and fix."""
    return WriteFailedError(_write_message(target, exc), exc.errno)


def check_name_length(path: str | os.PathLike) -> None:
    """Refuse a path with a file or folder name longer than its file system allows (usually 255 bytes).

    Raises
    ------
    WriteFailedError
        Naming the part that is too long, its length and the limit.
    """
    target = Path(path)
    existing = next((p for p in (target, *target.parents) if _exists(p)), Path("."))
    limit = _name_max(existing if existing.is_dir() else existing.parent)
    for part in target.parts:
        if len(part.encode()) > limit:
            raise WriteFailedError(
                f"cannot write {target}: the name {part[:24]}... is too long for the file system "
                f"({len(part.encode())} bytes, the limit is {limit}); choose a shorter name",
                errno.ENAMETOOLONG,
            )


def _exists(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def _diagnose(exc: OSError, tmp: Path) -> OSError:
    """Give a short write reported without an error number (numpy's ``tofile`` does that) its likely cause."""
    if exc.errno is not None:
        return exc
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and tmp.stat().st_size >= limit:
            return OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    except (ImportError, OSError, ValueError):
        pass
    try:
        if os.statvfs(tmp.parent).f_bavail == 0:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except (AttributeError, OSError):
        pass
    return exc


def _write_message(target: Path, exc: OSError) -> str:
    code = exc.errno
    folder = target.parent
    if code == errno.ENOSPC:
        return f"cannot write {target}: no space left on the disk that holds {folder}; free some space or write elsewhere"
    if code == getattr(errno, "EDQUOT", None):
        return f"cannot write {target}: your disk quota on {folder} is used up; free some space or write elsewhere"
    if code == errno.EFBIG:
        return (f"cannot write {target}: the file exceeds the file-size limit of this process or file system "
                "(see 'ulimit -f'); raise the limit, or write a smaller image or format")
    if code == errno.ENAMETOOLONG:
        return f"cannot write {target}: the file name is too long for the file system; choose a shorter name"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write in {folder}: {exc.strerror or exc}; choose a writable output folder"
    return f"cannot write {target}: {exc.strerror or exc}; check the disk and the output folder"


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
        A fresh path in the same folder, hidden (see :func:`temporary_name`)
        and keeping ``path``'s suffix so that libraries choosing a format by
        suffix still do. Write the whole file there.

    Raises
    ------
    InputError
        If the destination's folder does not exist or is not writable, the
        name is too long, or writing fails (disk full, file-size limit,
        quota): the message names the cause and the fix; the destination is
        left as it was and the temporary file removed.
    """
    target = Path(path)
    folder = target.parent
    check_name_length(folder)
    if not folder.is_dir():
        raise InputError(f"cannot write {target}: the folder {folder} does not exist; create it first")
    check_name_length(target)
    name_max = _name_max(folder)
    _sweep_once(folder)
    tmp = folder / temporary_name(target, name_max)
    try:
        # Created by hand (not mkstemp) so the final file gets the usual permissions (umask).
        with open(tmp, "xb"):
            pass
    except OSError as exc:
        raise write_error(target, exc) from None
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        exc = _diagnose(exc, tmp)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise write_error(target, exc) from None
    except RuntimeError as exc:
        # torch.save reports a failed write as a RuntimeError from its C++ zip writer ("unexpected pos"),
        # without an error number: when the disk or the file-size limit explains it, say so in one line.
        cause = _diagnose(OSError(str(exc)), tmp)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if cause.errno is None:
            raise
        raise write_error(target, cause) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on ``SIGTERM`` inside :func:`terminate_as_interrupt`.

    A :class:`KeyboardInterrupt`, so everything that cleans up after Ctrl-C
    (an :func:`atomic_output` block deletes its temporary file) does so
    after ``kill`` or ``timeout`` too.
    """


_armed = False  # True inside terminate_as_interrupt's block, until the first SIGTERM has been raised


def _raise_terminated(signum: int, frame: object) -> None:
    """SIGTERM's handler: raise :class:`Terminated` once, inside the block; otherwise end as SIGTERM does.

    It never raises outside :func:`terminate_as_interrupt`'s block, during the interpreter's shutdown
    (joining threads, finalising), nor a second time while the first :class:`Terminated` is being
    handled: then the signal's default action ends the process, as it would without this handler.
    """
    global _armed
    import signal
    import sys

    if _armed and not sys.is_finalizing():
        _armed = False
        raise Terminated(f"terminated by signal {signum}")
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # delivered as soon as this handler returns: the default action
    except (ValueError, OSError):
        pass


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[bool]:
    """Inside the block, ``SIGTERM`` (what ``kill`` and ``timeout`` send) raises :class:`Terminated`, as ``SIGINT`` does.

    The command line wraps each command in it, so that a write cut short by
    ``SIGTERM`` deletes its temporary file and the command exits 143 with one
    line. The handler is installed only in the main thread and only over
    ``SIGTERM``'s default action (a handler set by the embedding application
    is left alone); the previous handler is restored when the block ends.
    It raises at most once, and never outside the block or during the
    interpreter's shutdown (then ``SIGTERM`` ends the process as usual).

    Yields
    ------
    bool
        True if the handler is installed for the block.

    Examples
    --------
    >>> import signal
    >>> from restorekit.atomic import terminate_as_interrupt
    >>> before = signal.getsignal(signal.SIGTERM)
    >>> with terminate_as_interrupt() as installed:
    ...     pass
    >>> signal.getsignal(signal.SIGTERM) is before
    True
    """
    global _armed
    import signal

    try:
        previous = signal.getsignal(signal.SIGTERM)
        installed = previous is signal.SIG_DFL and not _armed
        if installed:
            signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM on this platform
        installed = False
    if not installed:
        yield False
        return
    _armed = True
    try:
        yield True
    finally:
        _armed = False
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) is _raise_terminated:
                signal.signal(signal.SIGTERM, previous)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    return write_bytes_atomic(path, text.encode(encoding))


__all__ = [
    "STALE_AFTER_S",
    "TEMP_MARK",
    "Terminated",
    "WriteFailedError",
    "atomic_output",
    "check_name_length",
    "is_temporary",
    "remove_stale_temporaries",
    "temporary_name",
    "terminate_as_interrupt",
    "write_bytes_atomic",
    "write_error",
    "write_text_atomic",
]
