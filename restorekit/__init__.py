"""restorekit: classical and learned image restorers behind one API.

Quick start::

    import restorekit
    from restorekit.degrade import Blur, Noise, Compose

    degradation = Compose(Blur(restorekit.kernels.load_kernel("course")), Noise(0.01))
    y = degradation.apply(x, seed=0)            # x: N, C, H, W float tensor in [0, 1]
    x_hat = restorekit.create("wiener", snr="auto")(y, degradation)

Images are batched ``N, C, H, W`` float tensors with values in [0, 1]; noise
levels (sigma) are on that [0, 1] scale everywhere (25/255 ~ 0.098).

Nothing heavy is imported here: torch and the plugins load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    ExtensionMissingError,
    InputError,
    ParameterError,
    PluginError,
    RestorekitError,
    UnknownRestorerError,
    WeightsError,
)
from .hookspecs import hookimpl
from .restorer import Param, Pipeline, Restorer, RestorerSpec, pipeline_spec

__version__ = "0.1.0"

_SUBMODULES = {
    "degrade", "imageio", "kernels", "metrics", "nn", "registry", "testing",
    "training", "weights", "bench", "cli",
}


#: Public functions imported on first use: name -> submodule.
_FUNCTIONS = {"estimate_kernel": "estimate.kernel", "estimate_noise": "estimate.noise",
              "PoissonGaussian": "degrade.poisson"}


def __getattr__(name: str) -> Any:  # PEP 562: lazy submodules
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f".{_FUNCTIONS[name]}", __name__), name)
    raise AttributeError(f"module 'restorekit' has no attribute {name!r}")


def create(name: str, **params: Any) -> Restorer:
    """Build the restorer registered as ``name`` (or a pipeline ``"a+b"``) with ``params``."""
    from .registry import default_registry

    return default_registry().create(name, **params)


def pipeline(*steps: str | Restorer, name: str = "", **params: Any) -> Pipeline:
    """Chain restorers: ``restorekit.pipeline("wiener", "dncnn", **{"wiener.snr": "auto"})``."""
    from .registry import default_registry

    return default_registry().pipeline(*steps, params=params, name=name)


def list_restorers(task: str | None = None) -> list[RestorerSpec]:
    """The specs of every registered restorer (only those handling ``task`` if given)."""
    from .registry import default_registry

    return default_registry().specs(task)


__all__ = [
    "ExtensionMissingError", "InputError", "Param", "ParameterError", "Pipeline", "PluginError", "PoissonGaussian",
    "Restorer", "RestorerSpec", "RestorekitError", "UnknownRestorerError", "WeightsError",
    "create", "estimate_kernel", "estimate_noise", "hookimpl", "list_restorers", "pipeline", "pipeline_spec", "__version__",
]
