"""``restorekit plugins``: each plugin, its distribution and version, its hooks and what it registered."""

from __future__ import annotations

import argparse
import json

HELP = "list the installed plugins: versions, hooks, what each registered, and failures"
DESCRIPTION = """\
List every plugin found in the 'restorekit.plugins' entry-point group (and any
added by hand): the distribution that ships it and its version, the hooks it
implements, and what it registered (restorers and pipelines, trainers, op
checks). Plugins that failed (an error at import, a plugin API version this
restorekit does not provide, an invalid or clashing registration) are listed
with the reason; plugins skipped through RESTOREKIT_DISABLE_PLUGINS are listed
as disabled.

Environment:
  RESTOREKIT_DISABLE_PLUGINS=a,b   skip the plugins named a and b (not imported)
  RESTOREKIT_STRICT_PLUGINS=1      make any plugin failure an error (exit 2)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the tracebacks of failed plugins")


def report(registry) -> dict:
    """What ``restorekit plugins --json`` prints for ``registry``."""
    from ..hookspecs import PLUGIN_API_VERSION
    from ..training.trainers import trainers

    specs = registry.specs()
    found_trainers = trainers(registry)
    op_checks = registry.op_checks() if hasattr(registry, "op_checks") else []
    plugins = []
    for info in registry.plugins:
        plugins.append({
            **info.describe(),
            "restorers": [s.name for s in specs if s.plugin == info.name],
            "trainers": [t.name for t in found_trainers.values() if t.plugin == info.name],
            "op_checks": [getattr(spec, "name", repr(spec)) for name, spec in op_checks if name == info.name],
        })
    return {
        "plugin_api": PLUGIN_API_VERSION,
        "plugins": plugins,
        "disabled": [d.describe() for d in registry.disabled],
        "unknown_disabled": list(registry.unknown_disabled),
        "failed": [f.describe() for f in registry.failures],
    }


def run(args: argparse.Namespace) -> int:
    from ..registry import DISABLE_ENV, default_registry

    registry = default_registry()
    data = report(registry)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"plugins loaded ({len(data['plugins'])}; restorekit plugin API {data['plugin_api']}):")
    for p in data["plugins"]:
        dist = f"{p['distribution'] or 'added by hand'} {p['version']}".strip()
        print(f"  {p['name']}  ({dist}; {p['target']})")
        print(f"      hooks: {', '.join(p['hooks']) or '-'}")
        for key, label in (("restorers", "restorers"), ("trainers", "trainers"), ("op_checks", "op checks")):
            if p[key]:
                print(f"      {label}: {', '.join(p[key])}")
    if data["disabled"]:
        print(f"\ndisabled by {DISABLE_ENV} ({len(data['disabled'])}):")
        for d in data["disabled"]:
            dist = f"{d['distribution']} {d['version']}".strip() or d["target"]
            print(f"  {d['name']}  ({dist})")
    if data["unknown_disabled"]:
        print(f"\n{DISABLE_ENV} names no installed plugin: {', '.join(data['unknown_disabled'])} "
              "(check the spelling against the names above)")
    if registry.failures:
        print(f"\nfailed ({len(registry.failures)}):")
        for f in registry.failures:
            print(f"  {f.plugin} ({f.target}): {f.error}")
            if args.verbose and f.details:
                print("    " + f.details.rstrip().replace("\n", "\n    "))
        print(f"  Fix, upgrade or uninstall the failing plugin, or skip it with {DISABLE_ENV}=NAME; "
              "RESTOREKIT_STRICT_PLUGINS=1 makes failures errors.")
    else:
        print("\nno plugin failed")
    return 0
