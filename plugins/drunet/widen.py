"""Grow a trained DRUNet into a wider or deeper one that computes the same function (Net2Net).

A narrow network that has stopped improving can keep its training: the wider
network starts where it stands and has room to go further (Chen, Goodfellow and
Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer", ICLR 2016).

* **Wider** (``widths`` at least the old ones at every scale): each new feature
  map copies an old one, so it holds the same values; every convolution that
  reads a feature map copied ``c`` times splits that map's weights over its
  copies with random shares summing to 1. The sum a layer computes is then
  unchanged, and so is the output. The shares differ from weight to weight,
  so the copies receive different gradients and grow apart in training
  (identical halves would stay identical forever). The network has no biases
  and no normalisation, and ReLU acts per feature map, so nothing else has to
  be rescaled.
* **Deeper** (``blocks`` at least the old number): each group of residual
  blocks gets new blocks after the old ones, with a random first convolution
  and a zero second one, so each new block starts as the identity
  (``x + 0``) and its second convolution still receives a gradient.

The image and sigma-map input and the noise output keep their channels.
"""

from __future__ import annotations

import re

import torch

from .model import DEPTH, DRUNet

_BLOCK_KEY = re.compile(r"^(encoders\.\d+|decoders\.\d+|body)\.(\d+)\.conv[12]\.weight$")


def architecture_of(state: dict) -> dict:
    """The ``DRUNet`` constructor's arguments that fit the state dict ``state``."""
    try:
        head = state["head.weight"]
        widths = [int(head.shape[0])] + [int(state[f"down.{level}.weight"].shape[0]) for level in range(DEPTH)]
        channels = int(state["tail.weight"].shape[0])
    except KeyError as missing:
        raise ValueError(f"not a DRUNet state dict: no {missing}") from None
    blocks = 1 + max((int(m.group(2)) for k in state if (m := _BLOCK_KEY.match(k))), default=-1)
    return {"channels": channels, "widths": widths, "blocks": blocks}


def _channel_map(old: int, new: int, generator: torch.Generator) -> torch.Tensor:
    """For each of ``new`` feature maps, the old one it copies: the old ones first, then random picks."""
    extra = torch.randint(old, (new - old,), generator=generator) if new > old else torch.empty(0, dtype=torch.long)
    return torch.cat([torch.arange(old), extra])


def _shares(mapping: torch.Tensor, shape: tuple[int, ...], dim: int, generator: torch.Generator) -> torch.Tensor:
    """Random positive shares, one per weight, summing to 1 over the copies of each old input map along ``dim``."""
    raw = torch.rand(shape, generator=generator, dtype=torch.float64) + 0.5  # in [0.5, 1.5): no copy gets ~0
    sums = torch.zeros(shape[:dim] + (int(mapping.max()) + 1,) + shape[dim + 1:], dtype=torch.float64)
    sums.index_add_(dim, mapping, raw)
    return raw / sums.index_select(dim, mapping)


def _widen(weight: torch.Tensor, out_map: torch.Tensor, in_map: torch.Tensor, out_dim: int, in_dim: int,
           generator: torch.Generator) -> torch.Tensor:
    """``weight`` with its output maps copied by ``out_map`` and its input maps split over ``in_map``'s copies."""
    grown = weight.index_select(out_dim, out_map).index_select(in_dim, in_map)
    shares = _shares(in_map, tuple(grown.shape), in_dim, generator)
    return (grown.double() * shares).to(weight.dtype)


def widen_state_dict(state: dict, widths, blocks: int, seed: int = 0) -> dict:
    """The state dict of a ``DRUNet(widths, blocks)`` that computes what ``state``'s network computes.

    ``widths`` must be at least the old widths at every scale and ``blocks`` at
    least the old number of blocks; the channels stay. ``seed`` draws the
    copies and the shares (the result is the same function for every seed).

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> small = DRUNet(3, (4, 8, 8, 8), blocks=1)
    >>> for p in small.parameters():
    ...     _ = torch.nn.init.normal_(p, std=0.05)
    >>> big = DRUNet(3, (6, 16, 8, 12), blocks=2)
    >>> big.load_state_dict(widen_state_dict(small.state_dict(), (6, 16, 8, 12), 2))
    <All keys matched successfully>
    >>> x = torch.rand(1, 3, 16, 16)
    >>> torch.allclose(big.denoise(x, 0.1), small.denoise(x, 0.1), rtol=1e-4, atol=1e-5)
    True
    """
    old = architecture_of(state)
    widths = [int(w) for w in widths]
    if len(widths) != DEPTH + 1 or any(w < o for w, o in zip(widths, old["widths"])) or blocks < old["blocks"]:
        raise ValueError(f"can only grow a network: widths {old['widths']} -> {widths} must not shrink at any scale, "
                         f"blocks {old['blocks']} -> {blocks} must not fall")
    generator = torch.Generator().manual_seed(int(seed))
    maps = [_channel_map(o, w, generator) for o, w in zip(old["widths"], widths)]
    same_in = torch.arange(old["channels"] + 1)
    same_out = torch.arange(old["channels"])
    target = DRUNet(old["channels"], widths, blocks)
    new_state = {}
    for key, fresh in target.state_dict().items():
        match = _BLOCK_KEY.match(key)
        level = (DEPTH if match.group(1) == "body" else int(match.group(1).split(".")[1])) if match else None
        if match and int(match.group(2)) >= old["blocks"]:  # a new block: the identity
            new_state[key] = torch.zeros_like(fresh) if key.endswith("conv2.weight") else fresh.clone()
            continue
        weight = state[key]
        if key == "head.weight":
            grown = _widen(weight, maps[0], same_in, 0, 1, generator)
        elif key == "tail.weight":
            grown = _widen(weight, same_out, maps[0], 0, 1, generator)
        elif key.startswith("down."):
            lvl = int(key.split(".")[1])
            grown = _widen(weight, maps[lvl + 1], maps[lvl], 0, 1, generator)
        elif key.startswith("up."):  # ConvTranspose2d: (in, out, kh, kw); in is the coarser scale
            lvl = int(key.split(".")[1])
            grown = _widen(weight, maps[lvl], maps[lvl + 1], 1, 0, generator)
        elif match:
            grown = _widen(weight, maps[level], maps[level], 0, 1, generator)
        else:
            raise ValueError(f"unexpected DRUNet weight {key}")
        new_state[key] = grown
    return new_state
