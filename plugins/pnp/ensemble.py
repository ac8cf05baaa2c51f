"""The eight flips and rotations of an image, cycled over the iterations (``ensemble=true``).

Iteration ``k`` denoises ``transform(x, k % 8)`` and maps the result back with
:func:`untransform`, so over eight iterations the denoiser sees every
orientation once (DPIR's "x8" at the cost of one denoiser call per
iteration, not eight). The transforms are :mod:`restorekit.dihedral`'s, which
the learned denoisers' own ``ensemble`` parameter averages at every call.
"""

from __future__ import annotations

from restorekit.dihedral import COUNT, transform, untransform

__all__ = ["COUNT", "transform", "untransform"]
