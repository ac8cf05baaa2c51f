"""How the command line reports an error: one line, and under ``torchrun`` once, naming the rank.

Under ``torchrun`` every process runs the command on its share of the inputs.
An error met by one process alone is printed by that process, prefixed
``rank N:``. An error every process meets (:func:`restorekit.scaleout.run_everywhere`,
a batch's merged summary) carries ``reported_by_rank_0``: rank 0 prints it once,
naming where it happened, and the others wait for it (:func:`reported_once`),
because ``torchrun`` stops the whole group (``SIGTERM``) as soon as one process
ends with an error. A process stopped that way, or one whose collective fails
because another process died, says so in one line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import Any, Iterator

from ..errors import RestorekitError

DEBUG_ENV = "RESTOREKIT_DEBUG"
#: Where to look for the failing process's own message under torchrun.
LOOK = "its own message names the cause (look for 'rank N:' above, or in torchrun's error report)"


def debug_wanted(args: Any) -> bool:
    """True when the user asked for tracebacks (``--debug`` or ``RESTOREKIT_DEBUG=1``)."""
    return bool(getattr(args, "debug", False)) or \
        os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def rank() -> int | None:
    """This process's rank in a ``torchrun`` group, or None outside one."""
    if os.environ.get("WORLD_SIZE", "1") in ("", "1"):
        return None
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return None


def other_rank() -> bool:
    """True in a process of a ``torchrun`` group other than rank 0."""
    return rank() not in (None, 0)


def rank_prefix(exc: BaseException) -> str:
    """``"rank N: "`` under ``torchrun`` (N: where the error happened), else nothing."""
    here = rank()
    if here is None:
        return ""
    if hasattr(exc, "failed_rank"):
        return f"rank {exc.failed_rank}: "
    return "" if getattr(exc, "reported_by_rank_0", False) else f"rank {here}: "  # the same on every rank


def report_error(command: str, exc: BaseException, debug: bool) -> None:
    """Print ``exc`` as the command's one error line (with its traceback first when ``debug``)."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    hint = "" if debug or exc.__cause__ is None else f" (run with --debug or {DEBUG_ENV}=1 for the traceback)"
    print(f"restorekit {command}: error: {rank_prefix(exc)}{exc}{hint}", file=sys.stderr, flush=True)


def lost_peer(exc: BaseException) -> bool:
    """True for the error a collective raises when another process of the group died (gloo, nccl)."""
    if rank() is None or not isinstance(exc, RuntimeError):
        return False
    text = str(exc)
    # gloo raises a plain RuntimeError ("[.../gloo/transport/tcp/pair.cc:545] Read error ...: Connection reset
    # by peer"), newer collectives a torch.distributed.DistError: judge by the message.
    return any(word in text for word in ("Connection reset by peer", "Connection closed by peer", "Broken pipe",
                                         "Socket Timeout", "timed out", "NCCL communicator was aborted",
                                         "ECONNRESET"))


def report_lost_peer(command: str, exc: BaseException) -> int:
    """One line for a collective that failed because another process of the group stopped; exit status 2."""
    first = next((line.strip() for line in str(exc).splitlines() if "peer" in line or "imeout" in line), "")
    cause = first.split("] ")[-1][:120] if first else type(exc).__name__
    print(f"restorekit {command}: error: rank {rank()}: another process of the torchrun group stopped "
          f"({cause}); {LOOK}", file=sys.stderr, flush=True)
    return 2


def report_terminated(command: str) -> int:
    """One line for ``SIGTERM``; under ``torchrun`` it says why torchrun sends it. Exit status 143."""
    here = rank()
    if here is None:
        print(f"restorekit {command}: terminated (SIGTERM)", file=sys.stderr, flush=True)
    else:
        # torchrun stops every process as soon as one ends with an error (or when it is stopped itself): the
        # usual reason is that another process of the group stopped, before this one met it in a collective.
        print(f"restorekit {command}: error: rank {here}: terminated by torchrun (SIGTERM): another process of the "
              f"torchrun group stopped, or torchrun itself was stopped; {LOOK}", file=sys.stderr, flush=True)
    return 143


@contextlib.contextmanager
def reported_once(ctx: Any, args: Any) -> Iterator[None]:
    """Report an error that every process of ``ctx`` meets once, from rank 0, before any process leaves.

    Wrap the part of a command that runs inside the process group (before
    :func:`restorekit.scaleout.stop`). An error marked ``reported_by_rank_0``
    is printed by rank 0; then every process waits at a barrier, so that no
    process ends (and makes ``torchrun`` stop rank 0 with ``SIGTERM``)
    before rank 0 has printed. The error is re-raised marked ``reported``:
    the command line then exits 2 without printing it again. Outside
    ``torchrun`` nothing changes.
    """
    try:
        yield
    except RestorekitError as exc:
        if getattr(ctx, "distributed", False) and getattr(exc, "reported_by_rank_0", False):
            if ctx.is_main:
                report_error(args.command, exc, debug_wanted(args))
            exc.reported = True
            with contextlib.suppress(RuntimeError):  # a process that died meanwhile: nothing left to wait for
                from ..training.distributed import barrier

                barrier(ctx)
        raise


__all__ = ["DEBUG_ENV", "debug_wanted", "lost_peer", "other_rank", "rank", "rank_prefix", "report_error",
           "report_lost_peer", "report_terminated", "reported_once"]
