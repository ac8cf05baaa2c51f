"""The eight flips and rotations of an image, cycled over the iterations (``ensemble=true``).

Iteration ``k`` denoises ``transform(x, k % 8)`` and maps the result back with
:func:`untransform`, so over eight iterations the denoiser sees every
orientation once (DPIR's "x8" at the cost of one denoiser call per
iteration, not eight).
"""

from __future__ import annotations

import torch

#: How many distinct transforms there are (the dihedral group of the square).
COUNT = 8


def transform(x: torch.Tensor, index: int) -> torch.Tensor:
    """Transform ``index`` (0-7) of ``x``: 0 is the identity; a left-right flip for 4-7, then
    ``index % 4`` quarter turns."""
    index %= COUNT
    if index >= 4:
        x = x.flip(-1)
    return torch.rot90(x, index % 4, dims=(-2, -1))


def untransform(x: torch.Tensor, index: int) -> torch.Tensor:
    """The inverse of :func:`transform` with the same ``index``."""
    index %= COUNT
    x = torch.rot90(x, -(index % 4), dims=(-2, -1))
    return x.flip(-1) if index >= 4 else x
