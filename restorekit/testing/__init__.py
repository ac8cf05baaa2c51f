"""Checks for plugin authors: prove a compiled op or a restorer against restorekit's contract.

* :mod:`restorekit.testing.ops` -- :func:`check_op`: a compiled op against a reference
  Python function (compare, gradcheck, gradgradcheck, opcheck); :func:`run_suite` is what
  ``restorekit gradcheck`` runs on restorekit's own ops.

Names are re-exported here lazily, so ``from restorekit.testing import check_op`` works and
nothing imports torch before a check is run.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("ops", "restorers")


def __getattr__(name: str) -> Any:  # PEP 562: names of the submodules, loaded on first use
    for sub in _SUBMODULES:
        module = importlib.import_module(f".{sub}", __name__)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'restorekit.testing' has no attribute {name!r}")


__all__ = ["CheckResult", "DEFAULT_TOLERANCES", "OpCheckError", "Sample", "check_op", "run_suite", "summarize"]
__all__ += ["RestorerCheckError", "RestorerCheckResult", "check_restorer", "parametrize_with_checks"]
