"""``restorekit new-plugin``: write a new plugin package that installs and passes its own tests."""

from __future__ import annotations

import argparse

HELP = "write a new plugin package (pyproject, restorer, tests; --learned, --op)"
DESCRIPTION = """\
Write the plugin package NAME into DIR/NAME (DIR: -o, default the current folder):
pyproject.toml with the restorekit.plugins entry point, the plugin module with its
hooks, a restorer (Gaussian smoothing, a starting point to replace) and tests built on
restorekit.testing.parametrize_with_checks (one test per contract check).

  --learned  adds a small residual CNN denoiser told the noise level (a sigma-map input
             channel) on restorekit.learned_denoiser.NoiseLevelDenoiser, so pnp steers
             it; its untrained weights (written now with restorekit.weights.save_model, so
             the sidecar's SHA-256 verifies), a trainer on restorekit.training.fit that
             tells the network each crop's sigma, registered through register_trainers
             (restorekit train NAME-cnn), and tests
  --op       adds a C++ op with its autograd formula and fake kernel (torch.library),
             compiled by the package's setup.py, its checks registered through
             register_op_checks, and tests built on restorekit.testing.check_op

NAME is a letter then letters, digits, '_' or '-'; the import package is its lower-case
form with '_' for '-'. An existing DIR/NAME is never overwritten (exit status 2); a name
too long for the file system or a folder that cannot be written is one line, exit status 2.

Examples:
  restorekit new-plugin my-filter
  restorekit new-plugin my-denoiser -o plugins --learned --op
  cd my-filter && pip install --no-build-isolation -e . && python -m pytest"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the plugin's distribution name, e.g. my-filter")
    parser.add_argument("-o", "--out", metavar="DIR", default=".",
                        help="folder to write the package folder into (default: the current folder)")
    parser.add_argument("--learned", action="store_true",
                        help="add a small learned restorer, its initial weights and its trainer")
    parser.add_argument("--op", action="store_true", help="add a compiled C++ op with autograd, fake kernel and checks")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..atomic import check_name_length, write_error
    from ..scaffold import write_plugin

    target = Path(args.out) / args.name
    check_name_length(target)  # a name too long for the file system: one line, before anything is written
    try:
        dest = write_plugin(args.name, args.out, learned=args.learned, op=args.op)
    except OSError as exc:  # read-only or full disk, no permission: one line naming the cause and the fix
        raise write_error(target, exc) from None
    print(f"wrote {dest}")
    print(f"next: cd {dest} && pip install --no-build-isolation -e . && python -m pytest")
    return 0
