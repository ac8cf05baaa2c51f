"""Opt-in NaN detection for the layers of :mod:`restorekit.nn`, the same for both backends.

By default NaN propagates as in torch's own ops: the compiled ops and the Python reference
Functions return NaN where ``torch.nn.functional.linear`` and ``torch.relu`` would, and check no
values (so the CUDA kernels never synchronise the host and can be captured in a CUDA graph).

Inside ``with detect_nan():`` -- or for the whole process with ``RESTOREKIT_DETECT_NAN=1`` --
every :class:`~restorekit.nn.Linear`, :class:`~restorekit.nn.ReLU` and
:class:`~restorekit.nn.FullyConnectedNet` layer checks its result and raises
:class:`~restorekit.errors.InputError` naming the layer and the inputs that hold NaN. Each check
reads one value back from the device (a synchronisation), and under ``torch.compile`` it breaks the
graph, which is why it is off by default. For the backward pass use torch's own
``torch.autograd.detect_anomaly()``, which names the backward function that produced a NaN.

Examples
--------
>>> import torch
>>> from restorekit.nn import Linear, detect_nan
>>> layer = Linear(3, 2, backend="python")
>>> x = torch.tensor([[1.0, float("nan"), 0.0]])
>>> bool(layer(x).isnan().any())                    # propagates, as torch.nn.functional.linear
True
>>> with detect_nan():
...     layer(x)
Traceback (most recent call last):
...
restorekit.errors.InputError: Linear(in_features=3, out_features=2): NaN in the result; NaN found in x. Check ...
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from ..errors import InputError

__all__ = ["ENV", "detect_nan", "enabled", "check"]

#: Set to 1 to check every layer's result for NaN in the whole process.
ENV = "RESTOREKIT_DETECT_NAN"

_enabled = os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def enabled() -> bool:
    """Whether the layers check their results for NaN now."""
    return _enabled


@contextlib.contextmanager
def detect_nan(on: bool = True) -> Iterator[None]:
    """Check every ``restorekit.nn`` layer's result for NaN inside the block (``on=False``: don't).

    Raises
    ------
    InputError
        From the first layer whose result holds NaN, naming the layer and its inputs that hold NaN.
    """
    global _enabled
    before, _enabled = _enabled, bool(on)
    try:
        yield
    finally:
        _enabled = before


def check(layer: str, result, **inputs) -> None:
    """Raise :class:`InputError` when ``result`` holds NaN (called by the layers when enabled)."""
    if not bool(result.isnan().any()):
        return
    culprits = [name for name, t in inputs.items() if t is not None and t.numel() and bool(t.isnan().any())]
    found = ", ".join(culprits) if culprits else "none of the inputs (infinities cancelled, e.g. inf - inf)"
    raise InputError(
        f"{layer}: NaN in the result; NaN found in {found}. Check the input data and the parameters "
        f"(a diverged training leaves NaN weights), or leave restorekit.nn.detect_nan() / {ENV} off to let "
        "NaN propagate as in torch"
    )
