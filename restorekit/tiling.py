"""Restoring large images in overlapping tiles, blended without seams.

A convolutional network's output pixel depends only on the input inside its
receptive field, so an image can be restored tile by tile: each tile is run
with a *margin* of at least half the receptive field around the part that is
kept, and neighbouring tiles overlap by ``2 * margin + blend`` pixels. Within
the overlap the kept parts are cross-faded with a raised-cosine ramp over
``blend`` pixels; the margins, where the tile's own border (zero or reflect
padding) changes the result, get weight zero. Interior pixels therefore see
exactly what they would see in the whole image, and the blend hides what
little differs (a network whose receptive field is wider than measured, or
one with down-sampling whose grid is kept aligned by starting every tile at a
multiple of ``align``).

The tile size comes from a memory budget: :func:`plan_tiles` picks the
largest tile whose working memory (``bytes_per_pixel`` times its pixels times
the batch) fits, or the whole image when it fits.

This module imports torch only inside the functions that need it.

Examples
--------
>>> import torch
>>> from restorekit.tiling import restore_in_tiles
>>> blur = torch.nn.Conv2d(1, 1, 5, padding=2, bias=False)
>>> _ = torch.nn.init.constant_(blur.weight, 1 / 25)
>>> x = torch.rand(1, 1, 64, 80)
>>> with torch.no_grad():
...     whole = blur(x)
...     tiled = restore_in_tiles(blur, x, tile=(32, 32), margin=2, blend=4)
>>> bool(torch.allclose(whole, tiled, atol=1e-6))
True
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Callable

from .errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover
    import torch

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "tb": 1000**4, "t": 1000**4}


def parse_memory(value: Any) -> int | str:
    """Parse a memory size such as ``"2GiB"``, ``"512MiB"``, ``"1.5GB"`` or ``1073741824``; or ``"auto"``.

    Returns the number of bytes (an int > 0), or the string ``"auto"``.
    Raises ``ValueError`` with a short reason otherwise (so that
    :class:`restorekit.Param` turns it into a one-line error).

    Examples
    --------
    >>> parse_memory("2GiB"), parse_memory("1.5 GB"), parse_memory("auto")
    (2147483648, 1500000000, 'auto')
    """
    if isinstance(value, bool):
        raise ValueError("must be a size such as 2GiB or 512MiB, or 'auto'")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)", text)
        if match is None or match.group(2) not in _UNITS:
            raise ValueError("must be a size such as 2GiB, 512MiB or 1.5GB (or a number of bytes), or 'auto'")
        number, unit = float(match.group(1)), match.group(2)
    size = number * _UNITS[unit]
    if not math.isfinite(size) or size < 1:
        raise ValueError("must be a positive size such as 2GiB or 512MiB, or 'auto'")
    return int(size)


def format_bytes(size: float) -> str:
    """``1610612736`` -> ``"1.5 GiB"`` (binary units)."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


def available_memory(device: Any = "cpu") -> int | None:
    """Bytes that can still be allocated on ``device``, or None when it cannot be told.

    On the CPU: ``MemAvailable`` of ``/proc/meminfo``, lowered to what the
    cgroup (container) limit leaves; on a CUDA device: its free memory.
    """
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    found: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as handle:
            limit = handle.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current", encoding="ascii") as handle:
                found.append(max(int(limit) - int(handle.read().strip()), 0))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def tile_starts(length: int, tile: int, stride: int, align: int = 1) -> list[tuple[int, int]]:
    """The ``(start, stop)`` of the tiles covering ``range(length)``.

    Starts are multiples of ``align``; every tile is ``tile`` long except the
    last, which starts at the last multiple of ``align`` not beyond
    ``length - tile`` and runs to the end (at most ``tile + align - 1``).
    """
    if length <= tile:
        return [(0, length)]
    starts = list(range(0, length - tile, stride))
    last = ((length - tile) // align) * align
    if last > starts[-1]:
        starts.append(last)
    spans = [(s, s + tile) for s in starts[:-1]]
    spans.append((starts[-1], length))
    return spans


def blend_weights(start: int, stop: int, length: int, margin: int, blend: int) -> "torch.Tensor":
    """Weights of one tile along one axis: 0 over the margins, a raised-cosine ramp over ``blend``, 1 inside.

    A side that touches the image border keeps weight 1 up to it: no other
    tile covers those pixels, and the network saw the same border there as
    in the whole image.
    """
    import torch

    i = torch.arange(stop - start, dtype=torch.float64)
    w = torch.ones_like(i)
    ramp_width = max(blend, 1)
    if start > 0:
        r = ((i - margin + 0.5) / ramp_width).clamp(0, 1)
        w = w * (0.5 - 0.5 * torch.cos(math.pi * r))
    if stop < length:
        r = (((stop - start - 1 - i) - margin + 0.5) / ramp_width).clamp(0, 1)
        w = w * (0.5 - 0.5 * torch.cos(math.pi * r))
    return w


def restore_in_tiles(run: Callable[["torch.Tensor"], "torch.Tensor"], image: "torch.Tensor",
                     tile: tuple[int, int], margin: int, blend: int, align: int = 1) -> "torch.Tensor":
    """Apply ``run`` to overlapping tiles of ``image`` and blend the results into one image.

    Parameters
    ----------
    run : callable
        ``run(tile) -> tensor`` of the tile's shape (N, C_out, h, w); it
        moves the tile to its device and back itself.
    image : torch.Tensor
        ``(N, C, H, W)``; the result is accumulated on its device in float32.
    tile : (int, int)
        Tile height and width, margins included.
    margin : int
        Pixels at each inner tile border that get weight 0 (at least half the
        receptive field).
    blend : int
        Width of the cross-fade between neighbouring tiles.
    align : int
        Tile starts are multiples of this (``2 ** depth`` for a UNet, so that
        its down-sampling grid matches the whole image's).

    Returns
    -------
    torch.Tensor
        ``(N, C_out, H, W)`` float32.
    """
    import torch

    n, _, height, width = image.shape
    th, tw = min(tile[0], height), min(tile[1], width)
    stride_h = _stride(th, margin, blend, align) if th < height else th
    stride_w = _stride(tw, margin, blend, align) if tw < width else tw
    rows = tile_starts(height, th, stride_h, align)
    cols = tile_starts(width, tw, stride_w, align)
    out: torch.Tensor | None = None
    total = torch.zeros(height, width, dtype=torch.float32, device=image.device)
    for r0, r1 in rows:
        wr = blend_weights(r0, r1, height, margin, blend)
        for c0, c1 in cols:
            wc = blend_weights(c0, c1, width, margin, blend)
            weight = (wr[:, None] * wc[None, :]).to(device=image.device, dtype=torch.float32)
            piece = run(image[..., r0:r1, c0:c1]).to(device=image.device, dtype=torch.float32)
            if out is None:
                out = torch.zeros(n, piece.shape[1], height, width, dtype=torch.float32, device=image.device)
            out[..., r0:r1, c0:c1].addcmul_(piece, weight)
            total[r0:r1, c0:c1] += weight
    assert out is not None
    return out.div_(total)


def _stride(tile: int, margin: int, blend: int, align: int) -> int:
    stride = ((tile - 2 * margin - blend) // align) * align
    if stride < 1:
        raise ParameterError(
            f"a tile of {tile} pixels leaves nothing after margins of {margin} and a blend of {blend}; "
            f"use tiles of at least {2 * margin + blend + align} pixels"
        )
    return stride


def min_tile(margin: int, blend: int, align: int = 1) -> int:
    """The smallest tile side that advances (``2 * margin + blend + align``, rounded up to ``align``)."""
    side = 2 * margin + blend + align
    return -(-side // align) * align


def plan_tiles(height: int, width: int, batch: int, bytes_per_pixel: float, budget: int,
               margin: int, blend: int, align: int = 1, tile: int = 0, owner: str = "") -> tuple[int, int] | None:
    """The tile size to use, or None when the whole image is run at once.

    Parameters
    ----------
    height, width, batch : int
        The image batch's size.
    bytes_per_pixel : float
        Working memory of one forward pass per input pixel and image.
    budget : int
        Bytes the network may use for one tile (``max_memory``).
    margin, blend, align : int
        As for :func:`restore_in_tiles`.
    tile : int
        A side forced by the user (0: chosen from ``budget``).
    owner : str
        The restorer's name, for messages.

    Raises
    ------
    ParameterError
        When ``tile`` is too small for the network's receptive field, or
        ``budget`` does not hold even the smallest useful tile.
    """
    who = f" of {owner!r}" if owner else ""
    smallest = min_tile(margin, blend, align)
    if tile:
        if tile >= height and tile >= width:
            return None
        if tile < smallest:
            raise ParameterError(
                f"parameter 'tile'{who} is {tile}, too small: a tile needs margins of {margin} pixels (half the "
                f"network's receptive field) and a {blend}-pixel blend; use tile >= {smallest}, or tile=0 to size "
                "tiles from max_memory"
            )
        return (min(tile, height), min(tile, width))
    per_image_pixels = budget / (max(batch, 1) * bytes_per_pixel)
    if height * width <= per_image_pixels:
        return None
    # The last tile of a row or column may be up to align - 1 pixels longer: keep room for it.
    side = int(math.sqrt(per_image_pixels)) - align
    if height <= side:
        th, tw = height, int(per_image_pixels / (height + align)) - align
    elif width <= side:
        th, tw = int(per_image_pixels / (width + align)) - align, width
    else:
        th = tw = side
    th, tw = (th // align) * align if th < height else th, (tw // align) * align if tw < width else tw
    if min(th, tw) < smallest:
        need = (smallest + align) ** 2 * max(batch, 1) * bytes_per_pixel
        raise ParameterError(
            f"max_memory{who} ({format_bytes(budget)}) does not hold one tile of {smallest}x{smallest} pixels "
            f"for a batch of {batch} (about {format_bytes(need)}); raise max_memory (e.g. --max-memory 2GiB) "
            "or restore fewer images at once"
        )
    return (th, tw)


__all__ = ["available_memory", "blend_weights", "format_bytes", "min_tile", "parse_memory", "plan_tiles", "restore_in_tiles",
           "tile_starts"]
