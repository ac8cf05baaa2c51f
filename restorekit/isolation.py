"""Running plugin code so that it cannot silently take the process or its output with it.

:func:`plugin_code` wraps every call into a plugin (its import, its hooks, a
restorer's factory and ``restore``). While it is active:

* ``print()`` writes to stderr, so the JSON that ``restorekit plugins --json``
  and ``list --json`` print on stdout stays valid whatever a plugin prints;
* ``os._exit(code)`` raises :class:`PluginExit` naming the plugin instead of
  ending the process with no output and no message (exit status 0 before):
  the registry records the plugin as failed, and a restorer that calls it
  fails with one :class:`~restorekit.errors.RestorerFailedError`, which
  ``restorekit check`` reports. ``sys.exit`` is already a ``SystemExit``,
  caught the same way.

What it cannot catch: a process ended from C (``exit()`` in an extension, a
signal sent to itself). ``os._exit`` in a child process that a plugin forks is
the real one (children must exit that way).

A leaf module (the standard library only), so the restorer and the registry
can both use it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_who: list[str] = []
_real_exit = os._exit
_owner_pid = 0
_saved_stdout = None


class PluginExit(BaseException):
    """Plugin code called ``os._exit``; raised in its place (a ``BaseException``, like ``SystemExit``,
    so that a plugin's own ``except Exception`` does not swallow it)."""


def _guarded_exit(code: int = 0) -> None:
    if os.getpid() != _owner_pid or not _who:  # a forked child, or outside plugin code: the real exit
        _real_exit(code)
    raise PluginExit(f"{_who[-1]} called os._exit({code}), which would have ended restorekit with no message; "
                     "a plugin must raise an exception (restorekit.errors.InputError...) instead")


@contextlib.contextmanager
def plugin_code(who: str) -> Iterator[None]:
    """Run the block as plugin code: ``print`` to stderr, ``os._exit`` raising :class:`PluginExit`.

    Parameters
    ----------
    who : str
        What runs, for the message, e.g. ``"plugin 'x' (import)"`` or ``"restorer 'y'"``.

    Examples
    --------
    >>> import os
    >>> from restorekit.isolation import PluginExit, plugin_code
    >>> try:
    ...     with plugin_code("plugin 'demo'"):
    ...         os._exit(0)
    ... except PluginExit as exc:
    ...     print(str(exc).split(",")[0])
    plugin 'demo' called os._exit(0)
    """
    global _depth, _owner_pid, _saved_stdout
    # Process-wide state, switched by the outermost block only (a counter, not a stack per block),
    # so that blocks nested or overlapping in threads leave stdout and os._exit as they found them.
    with _lock:
        if _depth == 0:
            _owner_pid = os.getpid()
            os._exit = _guarded_exit
            _saved_stdout = sys.stdout
            sys.stdout = sys.stderr
        _depth += 1
        _who.append(who)
    try:
        yield
    finally:
        with _lock:
            _who.remove(who)
            _depth -= 1
            if _depth == 0:
                os._exit = _real_exit
                sys.stdout = _saved_stdout
                _saved_stdout = None


__all__ = ["PluginExit", "plugin_code"]
