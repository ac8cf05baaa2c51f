"""The eight flips and rotations of an image (the dihedral group of the square), and averaging over them.

A convolutional denoiser is not exactly equivariant to flips and quarter
turns: denoising each transformed copy and mapping the results back gives
estimates whose errors are partly independent, so their mean is better than
any one of them (the "self-ensemble" of Timofte, Rothe and Van Gool, CVPR 2016,
DRUNet's "x8"). :func:`average` runs it for the learned denoisers'
``ensemble`` parameter; pnp cycles the same transforms over its iterations.

Examples
--------
>>> import torch
>>> x = torch.arange(6.).reshape(1, 1, 2, 3)
>>> all(torch.equal(untransform(transform(x, i), i), x) for i in range(COUNT))
True
>>> bool(torch.equal(average(lambda t: 2 * t, x, 8), 2 * x))
True
"""

from __future__ import annotations

from typing import Any, Callable

#: How many distinct transforms there are.
COUNT = 8

#: The transforms averaged for each ensemble size: the identity alone; it and the left-right flip;
#: the half turn added to each; all eight.
SUBSETS: dict[int, tuple[int, ...]] = {1: (0,), 2: (0, 4), 4: (0, 2, 4, 6), 8: tuple(range(COUNT))}


def transform(x: Any, index: int) -> Any:
    """Transform ``index`` (0-7) of the batch ``x`` (..., H, W): 0 is the identity; a left-right flip
    for 4-7, then ``index % 4`` quarter turns."""
    import torch

    index %= COUNT
    if index >= 4:
        x = x.flip(-1)
    return torch.rot90(x, index % 4, dims=(-2, -1))


def untransform(x: Any, index: int) -> Any:
    """The inverse of :func:`transform` with the same ``index``."""
    import torch

    index %= COUNT
    x = torch.rot90(x, -(index % 4), dims=(-2, -1))
    return x.flip(-1) if index >= 4 else x


def average(run: Callable[[Any], Any], x: Any, size: int, *maps: Any) -> Any:
    """The mean of ``untransform(run(transform(x, i), ...), i)`` over the ``size`` transforms of :data:`SUBSETS`.

    ``maps``: tensors transformed with ``x`` and passed to ``run`` after it
    (a per-pixel noise map); anything else (one sigma per image) goes as is.
    ``size`` 1 is ``run(x, *maps)`` itself.
    """
    if size not in SUBSETS:
        raise ValueError(f"ensemble size {size!r}: give one of {sorted(SUBSETS)}")
    total = None
    for index in SUBSETS[size]:
        moved = [transform(m, index) if _is_map(m) else m for m in maps]
        out = untransform(run(transform(x, index), *moved), index)
        total = out if total is None else total + out
    return total if size == 1 else total / size


def _is_map(value: Any) -> bool:
    return hasattr(value, "dim") and value.dim() >= 3
