"""``restorekit list``: every restorer the plugins register, and the plugins that failed."""

from __future__ import annotations

import argparse
import json

HELP = "list every registered restorer with its plugin, tasks and parameters"
DESCRIPTION = """\
List every restorer that the installed plugins register: its name, the plugin
that provides it, the tasks it handles and its parameters with their type,
range or choices and default (set them with 'restore --param NAME=VALUE'). A
named pipeline lists its steps and the step parameters one can override
('--param STEP.NAME=VALUE'). Plugins that failed to load are listed too, with
the error; 'restorekit plugins' shows each plugin in full.

Set RESTOREKIT_STRICT_PLUGINS=1 to make a failing plugin an error instead."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    from ..restorer import TASKS

    parser.add_argument("--task", choices=TASKS, help="only restorers for this task")


def run(args: argparse.Namespace) -> int:
    from ..registry import default_registry

    registry = default_registry()
    specs = registry.specs(args.task)
    if args.json:
        print(json.dumps(
            {
                "restorers": [_describe(registry, s) for s in specs],
                "plugins": [p.describe() for p in registry.plugins],
                "failed": [f.describe() for f in registry.failures],
            },
            indent=2, default=str,
        ))
        return 0
    if not specs:
        print("no restorers registered" + (f" for task {args.task!r}" if args.task else ""))
    for spec in specs:
        step_only = "  (pipeline step: use it after another restorer)" if not spec.standalone else ""
        print(f"{spec.name}  [{', '.join(sorted(spec.tasks))}]  (plugin: {spec.plugin}){step_only}")
        if spec.summary:
            print(f"    {spec.summary}")
        for step_name, fixed in spec.steps:
            fixed_text = ", ".join(f"{k}={v!r}" for k, v in fixed.items())
            print(f"    step: {step_name}" + (f" ({fixed_text})" if fixed_text else ""))
        for p in spec.params + (registry.step_params(spec.name) if spec.steps else ()):
            print(f"    --param {p.name}={default_text(p)}  ({_kind_text(p)})  {p.help}")
    if registry.failures:
        print("\nplugins that failed to load:")
        for f in registry.failures:
            print(f"  {f.plugin} ({f.target}): {f.error}")
    return 0


def _describe(registry, spec) -> dict:
    """A spec as ``list --json`` prints it; a pipeline adds the step parameters one can override."""
    out = spec.describe()
    if spec.steps:
        out["step_params"] = [p.describe() for p in registry.step_params(spec.name)]
    return out


def default_text(param) -> str:
    """A parameter's default as a user would type it after ``--param NAME=``.

    ``None`` is shown as ``auto`` when the parameter reads ``auto`` as ``None`` (pnp's
    ``iterations``), booleans as ``true``/``false``, floats with at most 3 significant digits
    when their exact form is long (49/255 as ``0.192``), strings unquoted (quoted for the shell
    only when they need it).

    Examples
    --------
    >>> from restorekit import Param
    >>> default_text(Param("sigma_start", 49 / 255, high=1.0)), default_text(Param("clip", True))
    ('0.192', 'true')
    >>> default_text(Param("mode", "soft")), default_text(Param("snr", 100.0, high=1e12))
    ('soft', '100')
    """
    import shlex

    value = param.default
    if value is None:
        try:
            return "auto" if param.convert("auto") is None else "none"
        except Exception:  # noqa: BLE001 - a parser that refuses 'auto': None means "not set"
            return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        short = f"{value:.6g}"
        return short if float(short) == value else f"{value:.3g}"
    return shlex.quote(str(value))


def _number(value) -> str:
    """A bound as written in Python, short for large ones (``1e+12``, not ``1000000000000.0``)."""
    return repr(value) if abs(value) < 1e6 else f"{value:g}"


def _kind_text(param) -> str:
    """The type and allowed values of a parameter, e.g. ``int >= 1`` or ``str, one of 'soft', 'hard'``."""
    text = param.kind
    if param.low is not None or param.high is not None:
        closed = param.closed
        parts = []
        if param.low is not None:
            parts.append(f"{'>=' if closed in ('both', 'left') else '>'} {_number(param.low)}")
        if param.high is not None:
            parts.append(f"{'<=' if closed in ('both', 'right') else '<'} {_number(param.high)}")
        text += " " + " and ".join(parts)
    if param.choices is not None and not callable(param.choices):
        text += ", one of " + ", ".join(repr(c) for c in param.choices)
    elif param.choices is not None:
        text += ", see --json for the choices"
    return text
