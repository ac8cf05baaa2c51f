"""The base of every learned restorer: weights, device, gray and colour, tiling, and the trained-for guard.

A learned plugin writes its network and says how to build it; the base does
the rest, the same way for every plugin:

- **weights**: the ``weights`` parameter is a shipped model's name (a file
  ``<weights_dir>/<name>.pt`` with its ``.json``) or a path to a ``.pt``;
  it is loaded through :func:`restorekit.weights.load_model` (SHA-256 and
  the checked hash over ``arch`` verified, ``weights_only=True``);
- **device**: the ``device`` parameter (``cpu``, ``cuda``, ``cuda:1``...);
  asking for a GPU that torch cannot see is a one-line
  :class:`~restorekit.errors.ParameterError` naming the fix;
- **running**: :meth:`LearnedRestorer.forward` is the differentiable pass
  (input clipped when ``clip_input``, gray through a colour network,
  ``run_network``); ``restore`` runs it under ``torch.no_grad()`` on float32
  copies of the input on its device (in tiles when large), the result back in
  the input's dtype and device, clipped to [0, 1] (``clip_output``);
- **training**: :func:`restorekit.training.fit` trains the same object
  (``MyRestorer.from_network(net)``) through ``forward`` on batches degraded
  by a :class:`~restorekit.degrade.DegradationSampler`, and
  :func:`restorekit.weights.export` ships it with the sampler's ``trained_for``;
- **gray and colour**: a 1-channel image given to a 3-channel network is
  repeated into three channels and the three outputs averaged; when the
  class names ``default_gray_weights``, 1-channel images go to that
  network instead (parameter ``gray_weights``; ``none`` restores the
  repetition); other channel counts are refused with the fix;
- **tiling**: images whose working memory exceeds ``max_memory`` are
  restored in overlapping tiles blended without seams
  (:mod:`restorekit.tiling`), the margins sized from the network's receptive
  field (measured once when the network does not state it);
- **the trained-for guard**: the weights' ``metadata.trained_for`` records
  the blur kernel (SHA-256), the noise range and the tasks the model was
  trained for; a degradation outside it gives one
  :class:`~restorekit.errors.RestorekitWarning` per restorer naming what
  differs and suggesting ``pnp``; with ``refuse_other_kernel`` another kernel
  is an :class:`~restorekit.errors.InputError` unless ``force=true``.

A subclass declares
    ``name``, ``tasks``, ``summary`` (as any :class:`~restorekit.Restorer`);
    ``params``: its own parameters only (the base adds ``weights``,
    ``device``, ``tile``, ``max_memory``, and ``gray_weights`` / ``force``
    when they apply, see :func:`learned_params`);
    ``weights_dir``: the folder of its shipped weights;
    ``default_weights``: the shipped model used by default;
    ``build_network(self, arch) -> torch.nn.Module``: the network for the
    sidecar's ``arch`` dict;
and may override
    ``run_network(self, net, x, degradation) -> tensor``: one forward pass on
    ``x`` (float32, on the device; under ``no_grad`` when restoring, with
    gradients when trained; default ``net(x)``), e.g. to add a noise-level
    channel (a training degradation holds one level per sample) or pad to a multiple;
    ``check_input(self, net, image, degradation)``: extra refusals;
    ``bytes_per_pixel(self, net, channels)``: working memory of one forward
    pass per pixel (default: from the widest convolution, see
    :meth:`LearnedRestorer.bytes_per_pixel`);
    ``receptive_field(self, net, degradation)``; ``align`` or
    ``tile_alignment(self, net)`` (tile starts are multiples of it);
    ``tileable`` (False for a network of a fixed input size).

This module imports no torch at import time, so a plugin's restorer module
built on it can be imported by ``restorekit list`` cheaply; import torch (and
your model) inside the methods.

Examples
--------
A complete learned restorer (here a network that needs no weights file, so
``load_network`` is overridden; a real plugin only writes ``build_network``
and ships ``<weights_dir>/<default_weights>.pt`` + ``.json``):

>>> import torch
>>> from restorekit.learned import LearnedRestorer
>>> class Smooth(LearnedRestorer):
...     name = "smooth"
...     tasks = frozenset({"denoise"})
...     default_weights = "none"
...     def build_network(self, arch):
...         net = torch.nn.Conv2d(3, 3, 3, padding=1, bias=False)
...         torch.nn.init.constant_(net.weight, 1 / 27)
...         net.channels = 3  # what the base reads to handle gray images
...         return net
...     def load_network(self, weights):
...         return self.build_network({}), {"arch": {}, "metadata": {}}
>>> r = Smooth(tile=16)
>>> sorted(p.name for p in Smooth.params)
['device', 'max_memory', 'tile', 'weights']
>>> r(torch.rand(1, 3, 40, 40)).shape   # colour, in 16x16 tiles
torch.Size([1, 3, 40, 40])
>>> r(torch.rand(2, 1, 20, 24)).shape   # gray through the colour network
torch.Size([2, 1, 20, 24])
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import InputError, ParameterError, RestorekitWarning, WeightsError
from .restorer import Param, Restorer
from .tiling import parse_memory

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .degrade import Degradation

#: Working memory the network may use for one tile on the CPU when ``max_memory=auto`` (768 MiB: with
#: the ~1 GiB a restore process holds anyway (torch, plugins) and the image in and out, a 4000x3000
#: photo stays under 2.5 GiB; see benchmarks/RESULTS.md).
DEFAULT_CPU_BUDGET = 768 * 1024**2
#: Share of the free GPU memory used when ``max_memory=auto`` on a CUDA device.
CUDA_BUDGET_SHARE = 0.5
#: Pixels of cross-fade between tiles, at least (more when the margin is wide).
MIN_BLEND = 8
#: Upper bounds of ``tile`` (pixels) and ``max_memory`` (bytes, 1 TB): larger values mean "the whole image".
MAX_TILE = 65536
MAX_MEMORY = 10**12
#: Names of the parameters the base owns.
COMMON_PARAMS = ("weights", "gray_weights", "device", "tile", "max_memory", "force")


def parse_tile(value: Any) -> int:
    """A tile side: an integer >= 0 (0 chooses it from ``max_memory``)."""
    if isinstance(value, bool):
        raise ValueError("must be an integer >= 0 (0: chosen from max_memory)")
    number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise ValueError("must be an integer >= 0 (0: chosen from max_memory)")
    return int(number)


def learned_params(cls: type) -> tuple[Param, ...]:
    """The parameters the base gives to ``cls``: weights, gray_weights, device, tile, max_memory, force.

    ``gray_weights`` only when ``cls.default_gray_weights`` is set; ``tile``
    and ``max_memory`` only when ``cls.tileable``; ``force`` only when
    ``cls.refuse_other_kernel``.
    """
    params = [Param("weights", cls.default_weights, "shipped model name or path to a .pt file (with its .json)")]
    if cls.default_gray_weights is not None:
        params.append(Param("gray_weights", cls.default_gray_weights,
                            "model for 1-channel images ('none': gray repeated into the colour model)"))
    params.append(Param("device", "cpu", "torch device to run on, e.g. cpu, cuda or cuda:1"))
    if cls.tileable:
        params.append(Param("tile", 0, "tile side in pixels for large images (0: chosen from max_memory)",
                            parse=parse_tile, high=MAX_TILE))
        params.append(Param("max_memory", "auto", "working memory for one tile, e.g. 2GiB "
                            "(auto: 768 MiB on the CPU, half the free memory on a GPU)", parse=parse_memory,
                            high=MAX_MEMORY))
    if cls.refuse_other_kernel:
        params.append(Param("force", False, "run even on a blur kernel other than the one it was trained for"))
    return tuple(params)


def resolve_device(value: str, owner: str) -> "torch.device":
    """``torch.device(value)`` for the ``device`` parameter of ``owner``, refusing one this machine lacks.

    See :func:`restorekit.checks.check_device`: a CUDA device without a GPU
    visible to torch is a one-line :class:`~restorekit.errors.ParameterError`
    that says to use the CPU.
    """
    from .checks import check_device

    return check_device(value, f"parameter 'device' of {owner!r} (--param device=...)")


def kernel_sha256(kernel: Any) -> str:
    """SHA-256 of a blur kernel's values as float64 in C order (what ``trained_for.kernel_sha256`` records).

    The one definition is :func:`restorekit.degrade.kernel_sha256` (what
    :class:`~restorekit.degrade.DegradationSampler` records); this imports it
    on first use, so importing this module costs no torch.

    Examples
    --------
    >>> from restorekit.kernels import load_kernel
    >>> kernel_sha256(load_kernel("course"))[:12]
    'd2c893d9d169'
    """
    from .degrade.blur import kernel_sha256 as sha

    return sha(kernel)


class LearnedRestorer(Restorer):
    """Base of the learned restorers: a subclass builds its network, the base runs it.

    See the module docstring for what a subclass declares and what the base
    does. Attributes set on an instance: ``net`` (the network on its
    ``device``), ``metadata`` (the weights' sidecar: ``arch``, ``metadata``,
    ``sha256``), ``device``, and ``trained_for`` (the sidecar's
    ``metadata.trained_for`` dict, or None).
    """

    #: Folder of the shipped weights (``<weights_dir>/<name>.pt`` + ``.json``).
    weights_dir: ClassVar[str | os.PathLike | None] = None
    #: The shipped model used when ``weights`` is not given.
    default_weights: ClassVar[str] = ""
    #: A shipped 1-channel model used for gray images (adds the ``gray_weights`` parameter); None: gray
    #: images go through the colour network, repeated into its channels.
    default_gray_weights: ClassVar[str | None] = None
    #: Whether large images may be restored in tiles (adds ``tile`` and ``max_memory``).
    tileable: ClassVar[bool] = True
    #: Tile starts are multiples of this (a network that down-samples by 2**d needs 2**d).
    align: ClassVar[int] = 1
    #: Clip the input to [0, 1] before the network (as in its training).
    clip_input: ClassVar[bool] = False
    #: Clip the output to [0, 1].
    clip_output: ClassVar[bool] = True
    #: Refuse a blur kernel other than the trained one unless ``force=true`` (adds ``force``).
    refuse_other_kernel: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("params")
        if own is None:  # inherited: the parent's own parameters
            own = getattr(cls, "_own_params", ())
        own = tuple(p for p in own if p.name not in COMMON_PARAMS)
        cls._own_params = own
        cls.params = learned_params(cls) + own

    def __init__(self, *, _network: tuple | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.device = resolve_device(self.config["device"], self.name)
        self.net, self.metadata = _network if _network is not None else self.load_network(self.config["weights"])
        self.net.to(self.device).eval()
        self._gray: Any = None
        self.gray_metadata: dict | None = None
        self._receptive: dict[int, int] = {}
        self._guard_warned = False
        # What this instance promises (Restorer's attributes, read by restorekit.testing.check_restorer).
        self.min_size = max(type(self).min_size, self.min_input_size(self.net)[0])
        self.output_range = type(self).output_range if self.clip_output else None

    @classmethod
    def from_network(cls, net: "torch.nn.Module", sidecar: dict | None = None, **params: Any) -> "LearnedRestorer":
        """This restorer around ``net`` (e.g. a network being trained) instead of a weights file.

        ``sidecar`` stands for the weights' ``.json`` (``arch``, ``metadata``;
        default: ``net.arch()`` and no metadata, so no trained-for guard).
        The restorer shares ``net``: :func:`restorekit.training.fit` trains
        it through :meth:`forward`, and :meth:`restore` runs what it became.

        Examples
        --------
        >>> import torch
        >>> from restorekit.degrade import Noise
        >>> class Plain(LearnedRestorer):
        ...     name, tasks, default_weights = "plain", frozenset({"denoise"}), "none"
        >>> net = torch.nn.Conv2d(3, 3, 3, padding=1)
        >>> r = Plain.from_network(net)
        >>> r.net is net, r.forward(torch.rand(2, 3, 8, 8), Noise(0.1)).requires_grad
        (True, True)
        """
        arch = net.arch() if callable(getattr(net, "arch", None)) else {}
        return cls(_network=(net, sidecar if sidecar is not None else {"arch": arch, "metadata": {}}), **params)

    # ------------------------------------------------------------------ what a subclass defines
    def build_network(self, arch: dict) -> "torch.nn.Module":
        """The network described by ``arch`` (the sidecar's dict), with untrained weights."""
        raise NotImplementedError(f"{type(self).__name__} must define build_network(self, arch)")

    def run_network(self, net: "torch.nn.Module", x: "torch.Tensor", degradation: "Degradation | None") -> "torch.Tensor":
        """One forward pass: ``x`` is float32 on the device; return the same size.

        Called by :meth:`forward`: under ``no_grad`` when restoring, with
        gradients when :func:`restorekit.training.fit` trains the network.
        Override to feed more than the image (a noise-level map from the
        degradation: ``degradation.sigma_map(x)`` when it gives one, e.g. one
        level per training sample, else ``degradation.sigma``) or to pad to a
        multiple.
        """
        return net(x)

    def check_input(self, net: "torch.nn.Module", image: "torch.Tensor", degradation: "Degradation | None") -> None:
        """Raise :class:`~restorekit.errors.InputError` for input this network cannot restore.

        The default refuses images smaller than :meth:`min_input_size`.
        """
        h, w = image.shape[-2:]
        size, what = self.min_input_size(net)
        if min(h, w) < size:
            raise InputError(
                f"the image ({h}x{w}) is smaller than {self.name!r}'s {what} ({size}x{size}); pad it "
                f"(e.g. torch.nn.functional.pad(image, ..., mode='reflect')) to at least {size}x{size}"
            )

    def min_input_size(self, net: "torch.nn.Module") -> tuple[int, str]:
        """``(side, what)``: the smallest side restored, and what sets it (for the message)."""
        rf = getattr(net, "receptive_field", None)
        smallest = getattr(net, "min_size", None)
        if isinstance(smallest, int) and smallest > (rf if isinstance(rf, int) else 0):
            return smallest, "smallest input"
        if isinstance(rf, int):
            return rf, "receptive field"
        return 1, "smallest input"

    def network_channels(self, net: "torch.nn.Module") -> int | None:
        """Channels the network takes and returns (``net.channels``); None: the subclass checks them itself."""
        channels = getattr(net, "channels", None)
        return int(channels) if isinstance(channels, int) else None

    def bytes_per_pixel(self, net: "torch.nn.Module", channels: int) -> float:
        """Working memory of one forward pass, in bytes per input pixel and image.

        The default assumes a plain stack of convolutions run without
        gradients: the widest layer's input and output (float32) plus as
        much again for the convolution's own buffers. Networks with skip
        connections keep more alive; override (measure it:
        ``benchmarks/bench_tiling.py`` reports peak memory).
        """
        import torch

        widest = channels
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                widest = max(widest, module.in_channels + module.out_channels)
        return 4.0 * 2 * widest

    def tile_alignment(self, net: "torch.nn.Module") -> int:
        """Tile starts are multiples of this: ``align`` (override for a network whose down-sampling is in ``arch``)."""
        return max(int(self.align), 1)

    def receptive_field(self, net: "torch.nn.Module", degradation: "Degradation | None" = None) -> int:
        """Side of the input window one output pixel depends on.

        ``net.receptive_field`` when the network states it; otherwise
        measured once per network: the extent of the gradient of a small
        block of outputs with respect to a random input, on probes growing
        until the extent stays inside them.
        """
        stated = getattr(net, "receptive_field", None)
        if isinstance(stated, int):
            return stated
        key = id(net)
        if key not in self._receptive:
            self._receptive[key] = self._measure_receptive_field(net, degradation)
        return self._receptive[key]

    def _measure_receptive_field(self, net, degradation) -> int:
        import torch

        channels = self.network_channels(net) or 3
        block = self.tile_alignment(net)
        size = 64
        gen = torch.Generator().manual_seed(0)
        while True:
            size = -(-size // block) * block
            x = torch.rand(1, channels, size, size, generator=gen).to(self.device).requires_grad_(True)
            with torch.enable_grad():
                out = self.run_network(net, x, degradation)
                c = (size // 2 // block) * block
                (grad,) = torch.autograd.grad(out[..., c:c + block, c:c + block].sum(), x)
            touched = grad.abs().sum(dim=(0, 1)) > 0
            rows = touched.any(dim=1).nonzero()
            cols = touched.any(dim=0).nonzero()
            if rows.numel() == 0:
                return 1
            extent = max(int(rows.max() - rows.min()), int(cols.max() - cols.min())) + 1
            inside = int(rows.min()) > 0 and int(cols.min()) > 0 and int(rows.max()) < size - 1 \
                and int(cols.max()) < size - 1
            if inside or size >= 1024:
                return max(extent - (block - 1), 1)
            size *= 2

    # ------------------------------------------------------------------ weights
    def weights_path(self, weights: str) -> Path:
        """A shipped name -> ``<weights_dir>/<name>.pt``; a path (ends in .pt, or has a folder) as given."""
        text = str(weights)
        if text.endswith(".pt") or os.sep in text or "/" in text:
            return Path(text).expanduser()
        if self.weights_dir is None:
            raise WeightsError(f"{self.name!r} ships no weights; pass weights=PATH to a .pt file (with its .json)")
        path = Path(self.weights_dir) / f"{text}.pt"
        if not path.is_file() and not path.with_suffix(".json").is_file():
            shipped = sorted(p.stem for p in Path(self.weights_dir).glob("*.pt"))
            raise WeightsError(
                f"{self.name!r} has no shipped weights named {text!r} (shipped: {', '.join(shipped) or 'none'}); "
                "give one of those names or a path to a .pt file (with its .json)"
            )
        return path

    def load_network(self, weights: str) -> tuple["torch.nn.Module", dict]:
        """``(network, sidecar)`` of ``weights``, verified and loaded on the CPU."""
        from . import weights as rw

        return rw.load_model(self.weights_path(weights), self.build_network)

    @property
    def trained_for(self) -> dict | None:
        """What the weights were trained for (``metadata.trained_for`` of the sidecar), or None."""
        found = self.metadata.get("metadata", {}).get("trained_for") if isinstance(self.metadata, dict) else None
        return found if isinstance(found, dict) else None

    def gray_net(self) -> Any:
        """The 1-channel network (loaded on first use), or None when gray goes through the colour one."""
        if self.default_gray_weights is None or self.network_channels(self.net) != 3:
            return None
        if str(self.config["gray_weights"]).lower() == "none":
            return None
        if self._gray is None:
            net, meta = self.load_network(self.config["gray_weights"])
            if self.network_channels(net) != 1:
                raise InputError(
                    f"gray_weights {self.config['gray_weights']!r} of {self.name!r} is a "
                    f"{self.network_channels(net)}-channel model; pass a 1-channel model or gray_weights=none"
                )
            self._gray, self.gray_metadata = net.to(self.device).eval(), meta
        return self._gray

    # ------------------------------------------------------------------ the trained-for guard
    def trained_for_differences(self, degradation: "Degradation | None", trained_for: dict | None = None) -> list[str]:
        """What in ``degradation`` lies outside what the weights were trained for (empty: nothing)."""
        found = self.trained_for if trained_for is None else trained_for
        if degradation is None or not found:
            return []
        diffs = []
        tasks = set(found.get("tasks") or ())
        expected_kernel = found.get("kernel_sha256")
        kernel_set = found.get("kernel_sha256_set") or ([expected_kernel] if expected_kernel else [])
        kernel = getattr(degradation, "kernel", None)
        if kernel is not None:
            if not kernel_set:
                diffs.append("a blur kernel (trained without blur)")
            elif kernel_sha256(kernel) not in kernel_set:
                expected_kernel = expected_kernel or kernel_set[0]
                diffs.append(f"another blur kernel (SHA-256 {kernel_sha256(kernel)[:12]}...; trained for "
                             f"{expected_kernel[:12]}...)")
        sigma_range = found.get("noise_sigma_range")
        sigma = float(getattr(degradation, "sigma", 0.0) or 0.0)
        if isinstance(sigma_range, (list, tuple)) and len(sigma_range) == 2:
            lo, hi = float(sigma_range[0]), float(sigma_range[1])
            if sigma > hi + 1e-9 or sigma < lo - 1e-9:
                diffs.append(f"noise sigma {sigma:.4g} (trained for {lo:g}-{hi:g})")
        if getattr(degradation, "mask", None) is not None and tasks and "inpaint" not in tasks:
            diffs.append(f"a pixel mask (trained for {', '.join(sorted(tasks))} only)")
        scale = getattr(degradation, "scale", 1)
        if isinstance(scale, int) and scale > 1 and tasks and "superresolve" not in tasks:
            diffs.append(f"downsampling x{scale} (trained for {', '.join(sorted(tasks))} only)")
        return diffs

    def guard(self, degradation: "Degradation | None") -> None:
        """Warn once (or refuse another kernel) when ``degradation`` lies outside ``trained_for``."""
        diffs = self.trained_for_differences(degradation)
        if not diffs:
            return
        kernel_diff = [d for d in diffs if d.startswith("another blur kernel")]
        if self.refuse_other_kernel and kernel_diff and not self.config.get("force", False):
            raise InputError(
                f"{self.name!r} was trained for one blur kernel only and this degradation has {kernel_diff[0]}; "
                f"its output would be poor. Use --method pnp (any kernel), or --param force=true to run it anyway"
            )
        if self._guard_warned:
            return
        self._guard_warned = True
        warnings.warn(
            f"{self.name!r} (weights {self.config['weights']}) is used outside what it was trained for: "
            f"{'; '.join(diffs)}; results may be poor. Consider --method pnp, which handles any blur, mask, "
            "downsampling and noise level with a denoiser told the noise level",
            RestorekitWarning, stacklevel=5,  # guard < restore < restore_checked < __call__ < the caller
        )

    # ------------------------------------------------------------------ running
    def restore(self, image: "torch.Tensor", degradation: "Degradation | None" = None) -> "torch.Tensor":
        import torch

        self.guard(degradation)
        c = image.shape[1]
        net = self.net
        if c == 1 and self.gray_net() is not None:
            net = self._gray
        channels = self.network_channels(net)
        repeat = channels is not None and c == 1 and channels == 3
        if channels is not None and c != channels and not repeat:
            kinds = "colour (3-channel) or grayscale (1-channel)" if channels == 3 else f"{channels}-channel"
            raise InputError(
                f"{self.name!r} ({self.config['weights']}) restores {kinds} images, got {c} channels; "
                "drop an alpha channel (image[:, :3]) or convert the image"
            )
        self.check_input(net, image, degradation)

        def run(piece: "torch.Tensor") -> "torch.Tensor":
            return self.forward(piece.to(self.device, torch.float32), degradation, net)

        with torch.no_grad():
            tiles = self.plan(net, image, degradation)
            if tiles is None:
                out = run(image)
            else:
                from .tiling import restore_in_tiles

                margin, blend = self._margin_blend(net, degradation)
                out = restore_in_tiles(run, image, tiles, margin, blend, self.tile_alignment(net))
                if self.clip_output:
                    out.clamp_(0, 1)  # the blended result is a fresh tensor: no second image-sized copy
                return out.to(image.device, image.dtype)
        if self.clip_output:
            out = out.clamp(0, 1)
        return out.to(image.device, image.dtype)

    def forward(self, y: "torch.Tensor", degradation: "Degradation | None" = None,
                net: "torch.nn.Module | None" = None) -> "torch.Tensor":
        """The restorer's differentiable forward pass: what :meth:`restore` runs on the image (or each tile).

        ``y`` is on the network's device in its dtype; the input is clipped
        when ``clip_input``, a gray batch goes through a colour network
        repeated into its channels (the outputs averaged), and
        :meth:`run_network` reads the degradation (e.g. its noise levels,
        one per sample). No gradient is turned off, nothing is clipped after:
        :func:`restorekit.training.fit` trains the network through this, on
        ``y, degradation = sampler(x)`` (:class:`~restorekit.degrade.DegradationSampler`);
        :meth:`restore` wraps it with ``no_grad``, the guard, tiling, dtype,
        device and the output clip.

        Parameters
        ----------
        y : torch.Tensor
            The degraded batch (N, C, H, W).
        degradation : Degradation, optional
            What damaged it (the sampler's, with one noise level per sample).
        net : torch.nn.Module, optional
            The network to run (default :attr:`net`; the trainer passes its
            distributed wrapper, or the gray network).
        """
        net = self.net if net is None else net
        x = y.clamp(0, 1) if self.clip_input else y
        channels = self.network_channels(net)
        repeat = channels == 3 and x.shape[1] == 1
        if repeat:
            x = x.expand(-1, 3, -1, -1)
        out = self.run_network(net, x, degradation)
        return out.mean(dim=1, keepdim=True) if repeat else out

    def memory_budget(self) -> int:
        """Bytes one tile may use: ``max_memory``, or for ``auto`` 768 MiB on the CPU, half the free GPU memory."""
        value = self.config.get("max_memory", "auto")
        if value != "auto":
            return int(value)
        if self.device.type == "cuda":
            import torch

            free, _ = torch.cuda.mem_get_info(self.device)
            return int(free * CUDA_BUDGET_SHARE)
        return DEFAULT_CPU_BUDGET

    def _margin_blend(self, net, degradation) -> tuple[int, int]:
        rf = self.receptive_field(net, degradation)
        margin = -(-(rf - 1) // 2)
        return margin, max(MIN_BLEND, margin // 2)

    def plan(self, net, image: "torch.Tensor", degradation=None) -> tuple[int, int] | None:
        """The tile size for ``image`` (None: the whole image at once)."""
        if not self.tileable:
            return None
        from .tiling import plan_tiles

        n, c, h, w = image.shape
        tile = int(self.config.get("tile", 0))
        budget = self.memory_budget()
        per_pixel = self.bytes_per_pixel(net, max(c, self.network_channels(net) or c))
        if not tile and h * w * n * per_pixel <= budget:
            return None  # fits: no need to measure the receptive field
        if tile and tile >= h and tile >= w:
            return None
        margin, blend = self._margin_blend(net, degradation)
        return plan_tiles(h, w, n, per_pixel, budget, margin, blend, self.tile_alignment(net), tile, self.name)

# ------------------------------------------------------------------ building blocks for plugin networks
def conv_relu_stack(in_channels: int, hidden_channels: int, hidden_layers: int, out_channels: int,
                    bias: bool = True, kernel_size: int = 3) -> "torch.nn.Sequential":
    """A plain stack ``conv(in -> F) + ReLU, hidden_layers x [conv(F -> F) + ReLU], conv(F -> out)``.

    Every convolution keeps the size (``padding = kernel_size // 2``). The
    residual denoisers (``dncnn``, ``ffdnet``) are this stack; its layer
    indices are the keys of their shipped state dicts (``0.weight``, ``2.weight``...).

    Examples
    --------
    >>> stack = conv_relu_stack(4, 8, 2, 3)
    >>> [type(m).__name__ for m in stack]
    ['Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'Conv2d']
    """
    from torch import nn

    pad = kernel_size // 2
    layers: list = [nn.Conv2d(in_channels, hidden_channels, kernel_size, padding=pad, bias=bias), nn.ReLU(inplace=True)]
    for _ in range(hidden_layers):
        layers += [nn.Conv2d(hidden_channels, hidden_channels, kernel_size, padding=pad, bias=bias),
                   nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(hidden_channels, out_channels, kernel_size, padding=pad, bias=bias))
    return nn.Sequential(*layers)


def start_as_identity(stack: "torch.nn.Module") -> None:
    """Kaiming-normal weights (fan-in, ReLU gain), zero biases, and a zero last convolution.

    A residual network ``x - stack(x)`` so initialised is the identity, and
    leaves the plateau "predict no noise" within tens of steps (with PyTorch's
    default initialisation a 10-layer plain stack sits there for hundreds).
    """
    from torch import nn

    convs = [m for m in stack.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
    nn.init.zeros_(convs[-1].weight)


__all__ = ["COMMON_PARAMS", "LearnedRestorer", "conv_relu_stack", "kernel_sha256", "learned_params", "parse_tile",
           "resolve_device", "start_as_identity"]
