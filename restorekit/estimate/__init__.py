"""Estimating a degradation from the degraded image alone.

* :func:`estimate_kernel` (:mod:`restorekit.estimate.kernel`): the blur kernel of a blurred photo
  (blind deblurring; Xu et al. 2013, Pan et al. 2014), also ``restorekit.estimate_kernel``.
* :func:`estimate_noise` (:mod:`restorekit.estimate.noise`): the sigma of additive white Gaussian
  noise (PCA of patches, Chen et al. 2015), also ``restorekit.estimate_noise``.

Nothing heavy is imported here: each estimator loads on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public functions: name -> submodule that defines it.
_EXPORTS = {"estimate_kernel": "kernel", "estimate_noise": "noise", "NoiseEstimate": "noise"}


def __getattr__(name: str) -> Any:  # PEP 562: lazy exports
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'restorekit.estimate' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
