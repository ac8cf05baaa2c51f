"""``restorekit list``: every restorer the plugins register, and the plugins that failed."""

from __future__ import annotations

import argparse
import json

HELP = "list every registered restorer with its plugin, tasks and parameters"
DESCRIPTION = """\
List every restorer that the installed plugins register: its name, the plugin
that provides it, the tasks it handles (denoise, deblur, inpaint) and its
parameters with their defaults (set them with 'restore --param NAME=VALUE').
Plugins that failed to load are listed too, with the error.

Set RESTOREKIT_STRICT_PLUGINS=1 to make a failing plugin an error instead."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--task", choices=("denoise", "deblur", "inpaint"), help="only restorers for this task")


def run(args: argparse.Namespace) -> int:
    from ..registry import default_registry

    registry = default_registry()
    specs = registry.specs(args.task)
    if args.json:
        print(json.dumps(
            {
                "restorers": [s.describe() for s in specs],
                "plugins": [{"name": p.name, "target": p.target, "distribution": p.distribution,
                             "version": p.version} for p in registry.plugins],
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
        for p in spec.params:
            choices = f" one of {list(p.choices)}" if p.choices else ""
            print(f"    --param {p.name}={p.default!r}{choices}  {p.help}")
    if registry.failures:
        print("\nplugins that failed to load:")
        for f in registry.failures:
            print(f"  {f.plugin} ({f.target}): {f.error}")
    return 0
