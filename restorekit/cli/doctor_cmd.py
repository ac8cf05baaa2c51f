"""``restorekit doctor``: versions, the compiled extension, and the plugins."""

from __future__ import annotations

import argparse
import platform

HELP = "show versions, whether the compiled extension is built, and plugin status"
DESCRIPTION = """\
Report what this installation can do: Python, torch, torchvision, numpy and
scikit-image versions; whether the compiled extension restorekit._C is built
(CPU and CUDA kernels) and whether a GPU is visible; which plugins loaded and
which failed, with the error and what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="show full tracebacks of failed plugins")


def _version(module_name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module_name)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
    import torch

    from .. import __version__
    from ..registry import default_registry

    print(f"restorekit   {__version__}")
    print(f"python       {platform.python_version()} ({platform.machine()})")
    print(f"torch        {torch.__version__} (CUDA build: {torch.version.cuda or 'no'}; "
          f"GPU visible: {'yes, ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'})")
    for name in ("torchvision", "numpy", "scipy", "scikit-image", "pluggy", "ducc0"):
        print(f"{name:<12} {_version(name)}")
    from ..degrade import cpu_fft_backend

    print(f"CPU FFT      {cpu_fft_backend()} (Wiener filter on the CPU; ducc0 is optional and quicker, "
          "RESTOREKIT_CPU_FFT=scipy|ducc0 picks one)")

    print("\ncompiled extension (restorekit._C):")
    try:
        from ..nn.extension import status
    except ImportError as exc:  # restorekit.nn itself missing would be a broken install
        print(f"  unavailable: {exc}")
    else:
        for key, value in status().items():
            print(f"  {key}: {value}")

    registry = default_registry()
    specs = registry.specs()
    print(f"\nplugins loaded ({len(registry.plugins)}):")
    for p in registry.plugins:
        provided = [s.name for s in specs if s.plugin == p.name]
        dist = f"{p.distribution} {p.version}".strip()
        print(f"  {p.name:<14} {dist:<24} restorers: {', '.join(provided) or '-'}")
    if registry.disabled:
        print(f"\nplugins disabled by RESTOREKIT_DISABLE_PLUGINS: {', '.join(p.name for p in registry.disabled)}")
    if registry.failures:
        print(f"\nplugins that failed ({len(registry.failures)}):")
        for f in registry.failures:
            print(f"  {f.plugin} ({f.target}): {f.error}")
            if args.verbose and f.details:
                print("    " + f.details.replace("\n", "\n    "))
        print("  Fix or uninstall the failing plugin, or skip it with RESTOREKIT_DISABLE_PLUGINS=NAME; "
              "RESTOREKIT_STRICT_PLUGINS=1 makes failures errors. 'restorekit plugins' shows each plugin.")
    else:
        print("\nno plugin failed")
    return 0
