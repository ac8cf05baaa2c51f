"""Entry point of the ``restorekit`` console script."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from typing import Iterator, Sequence

from ..atomic import Terminated, terminate_as_interrupt
from ..errors import InputError, RestorekitError
from ._files import out_of_memory
from ._report import (DEBUG_ENV, debug_wanted, lost_peer, other_rank, report_error, report_lost_peer,
                      report_terminated)


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


def main(argv: Sequence[str] | None = None, *, handle_signals: bool | None = None) -> int:
    """Run one ``restorekit`` command; return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``, as the console script runs it).
    handle_signals : bool, optional
        Take over the process's signals for the command: ``SIGTERM`` (``kill``, ``timeout``) cleans
        up like Ctrl-C (exit status 143) and a write past ``ulimit -f`` fails with one line instead of
        killing the process. The previous ``SIGTERM`` handler is restored afterwards. Default: only
        when run as a program (``argv`` not given); a caller that passes ``argv`` (a test, an
        application) keeps its own signal handling unless it asks for this.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    if handle_signals is None:
        handle_signals = argv is None
    if not handle_signals:
        return _run(args)
    code: int | None = None
    try:
        with _file_size_errors(), terminate_as_interrupt():  # SIGTERM cleans up like Ctrl-C: no partial file left
            code = _run(args)
    except Terminated:
        # SIGTERM arrived after the command had ended, while the block was being left (under torchrun: the
        # group being stopped after this process already reported why): the command's own outcome stands.
        if code is None:
            return report_terminated(args.command)
    return code


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; errors a user can act on become one line and an exit status."""
    try:
        return _run_reported(args)
    except Terminated:  # also when SIGTERM arrives while another error is being reported
        return report_terminated(args.command)


def _run_reported(args: argparse.Namespace) -> int:
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at interpreter exit
        return code
    except RestorekitError as exc:
        if getattr(exc, "reported", False):
            return 2  # printed once by rank 0 under torchrun (_report.reported_once)
        if other_rank() and getattr(exc, "reported_by_rank_0", False):
            return 2  # under torchrun every process met this error; rank 0 reports it
        if out_of_memory(exc) and not isinstance(exc, InputError):  # InputError: already says so, with the file
            return _report_memory(args.command, exc)
        report_error(args.command, exc, debug_wanted(args))
        return 2
    except (MemoryError, RuntimeError) as exc:  # RuntimeError: torch.OutOfMemoryError's base
        if lost_peer(exc):
            return report_lost_peer(args.command, exc)
        if not out_of_memory(exc):
            raise
        return _report_memory(args.command, exc)
    except Terminated:
        raise
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


@contextlib.contextmanager
def _file_size_errors() -> Iterator[None]:
    """Let a write beyond the file-size limit (``ulimit -f``) fail with EFBIG, reported, instead of killing us."""
    import signal

    previous = None
    if hasattr(signal, "SIGXFSZ"):
        try:
            previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        except ValueError:  # not the main thread (an embedding application): leave its signals alone
            pass
    try:
        yield
    finally:
        if previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGXFSZ, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
