"""Entry point of the ``restorekit`` console script."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import Sequence

from ..atomic import Terminated, terminate_as_interrupt
from ..errors import InputError, RestorekitError
from ._files import out_of_memory

DEBUG_ENV = "RESTOREKIT_DEBUG"

# Command name -> module under restorekit.cli (in the order --help lists them).
COMMANDS = {
    "list": "list_cmd",
    "plugins": "plugins_cmd",
    "degrade": "degrade_cmd",
    "restore": "restore_cmd",
    "estimate-kernel": "estimate_kernel_cmd",
    "bench": "bench_cmd",
    "demo": "demo_cmd",
    "train": "train_cmd",
    "gradcheck": "gradcheck_cmd",
    "check": "check_cmd",
    "new-plugin": "new_plugin_cmd",
    "doctor": "doctor_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="restorekit",
        description=(
            "Image restoration: classical and learned restorers behind one interface. "
            "Images are float arrays in [0, 1]; noise sigmas are on that scale (25/255 = 0.098)."
        ),
        epilog="Run 'restorekit COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"restorekit {__version__}")
    parser.add_argument(
        "--debug", action="store_true",
        help=f"show the full traceback of an error (also {DEBUG_ENV}=1), e.g. of a failing plugin",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f".{module_name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(module_name):
                continue  # command not built yet
            raise
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    _ignore_file_size_signal()
    terminate_as_interrupt()  # SIGTERM (kill, timeout) cleans up like Ctrl-C: no partial file is left behind
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at interpreter exit
        return code
    except RestorekitError as exc:
        if _other_rank() and getattr(exc, "reported_by_rank_0", False):
            return 2  # under torchrun every process met this error (scaleout.run_everywhere); rank 0 reports it
        if out_of_memory(exc) and not isinstance(exc, InputError):  # InputError: already says so, with the file
            return _report_memory(args.command, exc)
        debug = args.debug or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        hint = "" if debug or exc.__cause__ is None else f" (run with --debug or {DEBUG_ENV}=1 for the traceback)"
        print(f"restorekit {args.command}: error: {_rank_prefix(exc)}{exc}{hint}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:  # RuntimeError: torch.OutOfMemoryError's base
        if _lost_peer(exc):
            return _report_lost_peer(args.command, exc)
        if not out_of_memory(exc):
            raise
        return _report_memory(args.command, exc)
    except Terminated:
        print(f"restorekit {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"restorekit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `restorekit list | head`): stop quietly, as Unix tools do. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _report_memory(command: str, exc: BaseException) -> int:
    """One line for running out of memory (``exc``): where, and what to try."""
    where = out_of_memory(exc)
    fix = "use --device cpu, or smaller images or settings" if where == "GPU memory" else \
        "free some memory (close other programs), or use smaller images or settings"
    print(f"restorekit {command}: error: ran out of {where}; {fix}", file=sys.stderr)
    return 2


def _ignore_file_size_signal() -> None:
    """Let a write beyond the file-size limit (``ulimit -f``) fail with EFBIG, reported, instead of killing us."""
    import signal

    if hasattr(signal, "SIGXFSZ"):
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        except ValueError:  # not the main thread (an embedding application): leave its signals alone
            pass


def _rank() -> int | None:
    """This process's rank in a ``torchrun`` group, or None outside one."""
    if os.environ.get("WORLD_SIZE", "1") in ("", "1"):
        return None
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return None


def _rank_prefix(exc: BaseException) -> str:
    """``"rank N: "`` under ``torchrun`` (N: where the error happened), else nothing."""
    rank = _rank()
    if rank is None:
        return ""
    if hasattr(exc, "failed_rank"):
        return f"rank {exc.failed_rank}: "
    return "" if getattr(exc, "reported_by_rank_0", False) else f"rank {rank}: "  # the same on every rank


def _lost_peer(exc: BaseException) -> bool:
    """True for the error a collective raises when another process of the group died (gloo, nccl)."""
    if _rank() is None:
        return False
    text = str(exc)
    # gloo raises a plain RuntimeError ("[.../gloo/transport/tcp/pair.cc:545] Read error ...: Connection reset
    # by peer"), newer collectives a torch.distributed.DistError: judge by the message.
    return isinstance(exc, RuntimeError) and any(
        word in text for word in ("Connection reset by peer", "Connection closed by peer", "Broken pipe",
                                  "Socket Timeout", "timed out", "NCCL communicator was aborted", "ECONNRESET"))


def _report_lost_peer(command: str, exc: BaseException) -> int:
    """One line for a collective that failed because another process of the group stopped."""
    first = next((line.strip() for line in str(exc).splitlines() if "peer" in line or "imeout" in line), "")
    cause = first.split("] ")[-1][:120] if first else type(exc).__name__
    print(f"restorekit {command}: error: rank {_rank()}: another process of the torchrun group stopped "
          f"({cause}); its own message names the cause (look for 'rank N:' above, or in torchrun's error report)",
          file=sys.stderr)
    return 2


def _other_rank() -> bool:
    """True in a process of a ``torchrun`` group other than rank 0."""
    return os.environ.get("WORLD_SIZE", "1") != "1" and os.environ.get("RANK", "0") != "0"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
