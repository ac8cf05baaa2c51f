"""Checks for plugin authors: prove a compiled op or a restorer against restorekit's contract.

* :mod:`restorekit.testing.ops` -- :func:`check_op`: a compiled op against a reference
  Python function (compare, gradcheck, gradgradcheck, opcheck of the op and of its backward
  ops); :func:`parametrize_op_checks`: one pytest case per (sample, check, dtype);
  :class:`OpCheckSpec`: what a plugin registers through the ``register_op_checks`` hook for
  ``restorekit gradcheck --plugin NAME`` (:func:`run_op_checks`; restorekit's own ops:
  :func:`restorekit_op_checks`).
* :mod:`restorekit.testing.restorers` -- :func:`check_restorer` and
  :func:`parametrize_with_checks`: a restorer against the restorer contract (what
  ``restorekit check`` runs).

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


__all__ = ["CHECKS", "CheckResult", "DEFAULT_TOLERANCES", "OpCheckCase", "OpCheckError", "OpCheckSpec", "Sample",
           "check_op", "device_unavailable", "op_check_cases", "parametrize_op_checks", "restorekit_op_checks",
           "run_op_checks", "run_suite", "summarize", "worst_elements"]
__all__ += ["RestorerCheckError", "RestorerCheckResult", "check_restorer", "parametrize_with_checks"]
