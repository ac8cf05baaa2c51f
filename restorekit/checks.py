"""Checks of user-given values shared by the library and every command: image batches, sigma, device, seed.

A leaf module (it imports only :mod:`restorekit.errors`, and torch lazily),
so the degradations, restorers, the benchmark and the command line give the
same refusal with the same hint for the same mistake.

Examples
--------
>>> from restorekit.checks import check_sigma
>>> check_sigma(0.1)
0.1
>>> check_sigma(25)
Traceback (most recent call last):
...
restorekit.errors.InputError: noise sigma 25 is above 1: sigmas are on the [0, 1] scale; for 25 on the 0-255 scale write 0.09804
"""

from __future__ import annotations

import math
from typing import Any

from .errors import InputError, ParameterError

#: The seeds a ``torch.Generator`` accepts (``manual_seed``): 0 .. 2**64 - 1.
SEED_MAX = 2**64 - 1


def check_batch(image: Any, who: str = "") -> None:
    """Raise :class:`InputError` unless ``image`` is a finite N, C, H, W float tensor.

    Parameters
    ----------
    image : torch.Tensor
        The batch a restorer or degradation is given.
    who : str
        The name of the one receiving it, for the message (e.g. ``"wiener"``).

    Raises
    ------
    InputError
        Not a tensor, on the ``meta`` device (shapes only, no values), not 4-D, not floating
        point, empty, or holding NaN or Inf.
    """
    import torch

    where = f" for {who!r}" if who else ""
    if not isinstance(image, torch.Tensor):
        raise InputError(f"expected a torch.Tensor{where}, got {type(image).__name__}")
    if image.device.type == "meta":
        raise InputError(f"the image{where} is on the 'meta' device, which holds shapes but no values; "
                         "create it on a real device (cpu or cuda), e.g. torch.zeros(..., device='cpu')")
    if image.ndim != 4:
        raise InputError(
            f"expected a batch of shape (N, C, H, W){where}, got shape {tuple(image.shape)}; "
            "use image[None] to add the batch dimension"
        )
    if not image.is_floating_point():
        raise InputError(f"expected a float tensor{where}, got {image.dtype}; divide integer images by their maximum")
    if image.numel() == 0:
        raise InputError(f"the image{where} is empty (shape {tuple(image.shape)})")
    # Any NaN or Inf makes the sum non-finite, so a finite sum (one cheap pass, no temporary mask)
    # clears the image; only a non-finite sum (or an overflowing one) needs the element-wise test.
    if not torch.isfinite(image.sum()) and not torch.isfinite(image).all():
        raise InputError(f"the image{where} contains NaN or Inf values; replace them before restoring")


#: How far beyond [0, 1] an input may reach before it is taken for a 0-255 image: the larger of 2
#: (a blind denoiser given sigma-0.3 noise and no degradation) and 8 noise sigmas (a Gaussian draw
#: passes 8 sigmas about once in 10**15 pixels). A 0-255 image reaches 3 unless it is almost black.
UNIT_MARGIN = 2.0
UNIT_SIGMAS = 8.0


def check_unit_range(image: Any, sigma: float = 0.0, who: str = "") -> None:
    """Raise :class:`InputError` when ``image`` is clearly not on the [0, 1] scale (e.g. 0-255).

    A noisy image legitimately leaves [0, 1] by a few noise sigmas, so only values beyond
    ``1 + max(UNIT_MARGIN, UNIT_SIGMAS * sigma)`` (or as far below 0) are refused.

    Parameters
    ----------
    image : torch.Tensor
        A batch that passed :func:`check_batch`.
    sigma : float
        The noise sigma of its degradation ([0, 1] scale; 0 when unknown).
    who : str
        The name of the one receiving it, for the message.

    Examples
    --------
    >>> import torch
    >>> check_unit_range(torch.full((1, 1, 2, 2), 0.5))
    >>> check_unit_range(torch.full((1, 1, 2, 2), 200.0), who="dncnn")
    Traceback (most recent call last):
    ...
    restorekit.errors.InputError: the image for 'dncnn' has values from 200 to 200, but restorekit works on the [0, 1] scale: for a 0-255 image pass image / 255 (restorekit.imageio.read_image already does)
    """
    import torch

    margin = max(UNIT_MARGIN, UNIT_SIGMAS * float(sigma or 0.0))
    low, high = torch.aminmax(image.detach())
    low, high = float(low), float(high)
    if high > 1.0 + margin or low < -margin:
        where = f" for {who!r}" if who else ""
        fix = "for a 0-255 image pass image / 255" if high > 1.0 + margin and high <= 255 * (1 + margin) else \
            "scale it to [0, 1] first"
        raise InputError(f"the image{where} has values from {low:.4g} to {high:.4g}, but restorekit works on the "
                         f"[0, 1] scale: {fix} (restorekit.imageio.read_image already does)")


def check_sigma(value: Any, what: str = "noise sigma") -> float:
    """A noise standard deviation on the [0, 1] scale, as a float.

    Parameters
    ----------
    value : number or str
    what : str
        How the message names the value, e.g. ``"--sigma"``.

    Raises
    ------
    InputError
        If ``value`` is not a finite number >= 0, or is above 1 (then the
        message gives the [0, 1] value for a sigma meant on the 0-255 scale).
    """
    try:
        sigma = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} {value!r} is not a number; give it on the [0, 1] scale, e.g. 0.1") from None
    if not math.isfinite(sigma) or sigma < 0:
        raise InputError(f"{what} must be a finite number >= 0 on the [0, 1] scale, got {value!r}")
    if sigma > 1:
        raise InputError(
            f"{what} {sigma:g} is above 1: sigmas are on the [0, 1] scale; for {sigma:g} on the 0-255 scale "
            f"write {sigma / 255:.4g}"
        )
    return sigma


def check_seed(seed: Any, what: str = "--seed", span: int = 1) -> int:
    """A random seed that ``torch.Generator.manual_seed`` accepts, with room for ``span`` consecutive seeds.

    Parameters
    ----------
    seed : int
    what : str
        How the message names the value.
    span : int
        How many seeds ``seed, seed + 1, ...`` will be used (the benchmark
        gives image ``i`` the seed ``seed + i``).

    Raises
    ------
    InputError
        If ``seed`` is not an integer in [0, 2**64 - ``span``].
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        try:
            seed = int(str(seed))
        except ValueError:
            raise InputError(f"{what} must be a whole number, got {seed!r}") from None
    top = SEED_MAX - max(int(span), 1) + 1
    if not 0 <= seed <= top:
        room = f" (leaving room for {span} consecutive seeds)" if span > 1 else ""
        raise InputError(f"{what} must be between 0 and {top}{room}, got {seed}; pick a smaller seed")
    return seed


def check_device(name: Any, what: str = "device") -> Any:
    """``name`` as a ``torch.device`` that exists on this machine.

    Parameters
    ----------
    name : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    what : str
        How the message names the value, e.g. ``"--param device"``.

    Raises
    ------
    ParameterError
        For a device name torch does not know, a CUDA device without a
        CUDA GPU visible to torch, or a GPU index that is not there.
    """
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ParameterError(f"{what}: unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ParameterError(f"{what}: device {name!r} is not supported; use cpu or cuda")
    if not torch.cuda.is_available():
        raise ParameterError(f"{what}: {name!r} was asked for but no CUDA GPU is visible to torch; use cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ParameterError(
            f"{what}: {name!r} was asked for but this machine has {count} CUDA GPU(s) (cuda:0..cuda:{count - 1})"
        )
    return device


__all__ = ["SEED_MAX", "UNIT_MARGIN", "UNIT_SIGMAS", "check_batch", "check_device", "check_seed", "check_sigma",
           "check_unit_range"]
