"""``restorekit check``: run the restorer contract checks on registered restorers."""

from __future__ import annotations

import argparse

HELP = "check restorers against the restorer contract (what a plugin's tests run)"
DESCRIPTION = """\
Run restorekit.testing.check_restorer on each named restorer (or pipeline 'a+b'):
batched NCHW in and out, gray and colour, an odd non-square size, dtype and device
kept, the input left unchanged, the same output for the same seed, values in the
promised range, bad input (NaN, a wrong rank, an integer image) refused with a clear
error, degradation=None handled (or refused by a restorer that needs the kernel or
mask), and the declared parameters accepted. Each check gets a small image degraded
for the restorer's task. One line per check: PASS, FAIL with the reason, or SKIP
with why it does not apply (e.g. a restorer that declares it takes gray images only).

Exit status: 0 every check passed or was skipped, 1 a check failed (with --all,
a plugin that failed to load counts as one), 2 bad input (an unknown name, a bad
--param, a restorer that cannot be built).

Examples:
  restorekit check wiener dncnn
  restorekit check wiener --param snr=auto
  restorekit check --all                      # every registered restorer
  restorekit check tv --check gray --check output_range"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="restorer names (see 'restorekit list')")
    parser.add_argument("--all", action="store_true", help="check every registered restorer")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a parameter the restorers are built with (repeatable); for pipelines STEP.NAME=VALUE",
    )
    parser.add_argument(
        "--check", action="append", dest="checks", metavar="CHECK",
        help="run only this check (repeatable), e.g. gray or check_gray; default: all",
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import ParameterError
    from ..registry import default_registry
    from ..testing.restorers import RestorerUnderCheck, run_restorer_checks, select_checks
    from ._specs import parse_params

    registry = default_registry()
    if args.all and args.names:
        raise ParameterError("give restorer names or --all, not both")
    names = registry.names() if args.all else list(args.names)
    if not names:
        raise ParameterError("name the restorers to check (see 'restorekit list'), or pass --all")
    params = parse_params(args.param)
    checks = select_checks(args.checks)  # an unknown check name is an error before anything runs
    failed = 0
    for name in names:
        subject = RestorerUnderCheck(name, params, registry)
        subject.restorer  # noqa: B018 - built first: a bad name or parameter is an error (exit 2)
        print(f"{subject.label}:", flush=True)
        for result in run_restorer_checks(subject, checks=checks):
            print(f"  {result.line()}", flush=True)
            failed += not result.passed
    if args.all:  # a plugin that failed to load (an exception, or os._exit, at import) fails --all too
        for failure in registry.failures:
            print(f"plugin {failure.plugin} ({failure.target}):\n  FAIL  {failure.error}", flush=True)
            failed += 1
    print(f"{failed} check{'s' if failed != 1 else ''} failed" if failed else "all checks passed")
    return 1 if failed else 0
