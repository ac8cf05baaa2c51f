"""Train the noise-level-aware FFDNet from ``../shared/data`` (or any image folders).

The shipped model ``ffdnet-color`` is trained as ``--preset ffdnet-color`` says:
colour, sigma drawn uniformly in [0, 0.21] per sample on the [0, 1] scale (0 to 54/255,
so it covers the 49/255 where plug-and-play solvers start), 10 hidden layers of 32
channels at full resolution, started from the shipped blind ``dncnn`` network (every
layer copied, the sigma map's input weights zero: ``--init-from``), Adam 5e-4 for
3,000 steps, random 40x40 crops with flips and 90-degree turns of
``CBSD432`` (its last 8 images held apart for validation) plus a quarter of the samples
from ``Train400`` with the gray image and its noise repeated in all three channels (so
gray photos restore through the same model). Each sample's input is the noisy image
followed by its sigma map (the true sigma, constant over the image).

Run::

    python -m restorekit_plugins.ffdnet.train --preset ffdnet-color --out runs/ffdnet-color --export ffdnet-color

``--export NAME`` writes ``weights/NAME.pt`` and ``NAME.json`` (architecture, data,
noise range, steps, validation PSNR, the CPU and its bf16/AMX support, the command)
when training ends. Runs are seeded and resumable (``--resume``). ``--bf16`` trains
under bfloat16 autocast (about 6x faster on CPUs with AMX-BF16; ``auto``, the
default, turns it on only where ``/proc/cpuinfo`` lists ``amx_bf16``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
VAL_HELD_OUT = 8


@dataclass
class FFDNetOptions:
    """One FFDNet training run (stored in the checkpoint and the shipped metadata)."""

    preset: str = "ffdnet-color"
    data: str = ""
    gray_data: str = ""
    gray_fraction: float = 0.25
    hidden_layers: int = 10
    hidden_channels: int = 32
    downscale: int = 1
    init_from: str = "dncnn"             # a registered restorer whose .net is a plain stack of this shape, or ""
    sigma_range: tuple = (0.0, 0.21)
    patch: int = 40
    crops_per_epoch: int = 4800
    epochs: int = 15
    batch_size: int = 32
    lr: float = 5e-4
    lr_drop_at: float = 0.8
    seed: int = 0
    limit: int | None = None
    val_sigma: float = 0.1
    val_crop: int = 128
    threads: int | None = 1
    checkpoint_every: int = 100
    device: str = "cpu"
    bf16: str = "auto"


PRESETS = {"ffdnet-color": {}}


def cpu_has_amx_bf16() -> bool:
    """Whether this CPU lists ``amx_bf16`` in ``/proc/cpuinfo`` (Linux; False elsewhere)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class WithSigmaMap:
    """``make_input``: Gaussian noise of a sigma drawn per sample, then that sigma as a map channel."""

    def __init__(self, noise) -> None:
        self.noise = noise  # a restorekit.training.AddNoise

    def __call__(self, clean, generator):
        import torch

        sigma = self.noise.draw_sigma(generator)
        noisy = clean + sigma * torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        return torch.cat([noisy, torch.full_like(clean[:1], sigma)], dim=0)

    def describe(self) -> dict:
        return self.noise.describe()


class GrayAsColour:
    """Gray ``(noisy + map, clean)`` pairs with the gray channel repeated into three."""

    def __init__(self, pairs) -> None:
        self.pairs = pairs

    def set_epoch(self, epoch: int) -> None:
        self.pairs.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index):
        import torch

        degraded, clean = self.pairs[index]
        return torch.cat([degraded[:1].expand(3, -1, -1), degraded[1:]]), clean.expand(3, -1, -1).contiguous()


def _concat(parts):
    from torch.utils.data import ConcatDataset

    class Concat(ConcatDataset):
        def set_epoch(self, epoch: int) -> None:
            for p in self.datasets:
                p.set_epoch(epoch)

    return Concat(parts)


def build_datasets(opts: FFDNetOptions, progress: bool = True):
    """``(train_pairs, val_pairs, description)`` for ``opts``."""
    from restorekit.kernels import default_data_root
    from restorekit.training import AddNoise, DegradedPairs, RandomCrops, fixed_pairs, load_images

    root = default_data_root() or Path("../shared/data")
    folder = Path(opts.data) if opts.data else root / "CBSD432"
    images = load_images(folder, limit=opts.limit, progress=progress)
    if len(images) > VAL_HELD_OUT * 2:
        train_images, val_images = images[:-VAL_HELD_OUT], images[-VAL_HELD_OUT:]
    else:  # tiny folders (tests): validate on the training images
        train_images, val_images = images, images[:2]
    make_input = WithSigmaMap(AddNoise(None, tuple(opts.sigma_range)))
    colour = DegradedPairs(RandomCrops(train_images, size=opts.patch, length=opts.crops_per_epoch), make_input,
                           seed=opts.seed)
    parts = [colour]
    described = {"training_data": f"{folder.name}: {len(train_images)} images (random crops of {opts.patch}x"
                                  f"{opts.patch}), last {len(val_images)} held apart for validation"}
    if opts.gray_fraction > 0:
        gfolder = Path(opts.gray_data) if opts.gray_data else root / "Train400"
        gimages = load_images(gfolder, grayscale=True, limit=opts.limit, progress=progress)
        n_gray = max(1, round(opts.crops_per_epoch * opts.gray_fraction / (1 - opts.gray_fraction)))
        parts.append(GrayAsColour(DegradedPairs(RandomCrops(gimages, size=opts.patch, length=n_gray), make_input,
                                                seed=opts.seed + 1)))
        described["training_data"] += (f"; plus {gfolder.name}: {len(gimages)} grayscale images as "
                                       f"{100 * opts.gray_fraction:.0f}% of samples, gray and noise repeated in "
                                       "3 channels")
    val = fixed_pairs(val_images, WithSigmaMap(AddNoise(opts.val_sigma)), seed=opts.seed, crop=opts.val_crop)
    return _concat(parts), val, described


def train_ffdnet(opts: FFDNetOptions, out: str | os.PathLike, resume: bool = False, export: str = "",
                 progress: bool = True, command: str = ""):
    """Train an FFDNet as ``opts`` says; write checkpoints to ``out``; ship as ``export`` if given."""
    import torch

    from restorekit.training import TrainConfig, fit, seed_everything

    from .model import FFDNet

    if opts.threads:
        torch.set_num_threads(opts.threads)
    bf16 = opts.bf16 == "on" or (opts.bf16 == "auto" and opts.device == "cpu" and cpu_has_amx_bf16())
    train, val, described = build_datasets(opts, progress)
    seed_everything(opts.seed)
    net = FFDNet(channels=3, hidden_layers=opts.hidden_layers, hidden_channels=opts.hidden_channels,
                 downscale=opts.downscale)
    if opts.init_from:
        described["initialised_from"] = initialise_from(net, opts.init_from)
    model = _autocast(net) if bf16 else net
    cfg = TrainConfig(epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, lr_drop_at=opts.lr_drop_at,
                      seed=opts.seed, checkpoint_every=opts.checkpoint_every, device=opts.device,
                      progress=progress, log_every=25)
    title = f"FFDNet {opts.hidden_layers}x{opts.hidden_channels}" + (" (bf16 autocast)" if bf16 else "")
    result = fit(model, train, cfg, val_pairs=val, out=out, resume=resume, title=title,
                 extra_state={"arch": net.arch(), "options": _jsonable(asdict(opts))})
    described["precision"] = "bfloat16 autocast" if bf16 else "float32"
    if export and result.is_main:
        export_weights(result, net, opts, described, export, command)
    return result


def initialise_from(net, name: str) -> str:
    """Start ``net`` from the blind network of the registered restorer ``name`` (built through the public API).

    Every layer is copied; the first convolution's extra input (the sigma map)
    starts at zero, so the network begins as that blind denoiser and training
    teaches it to read the level. Returns a description for the provenance.
    """
    import torch

    import restorekit
    from restorekit.errors import InputError

    donor = restorekit.create(name)
    state = getattr(donor, "net", None)
    state = state.state_dict() if state is not None else {}
    own = net.state_dict()
    if set(state) != set(own) or net.downscale != 1:
        raise InputError(f"--init-from {name!r}: its network does not have this model's layers "
                         f"({net.hidden_layers}x{net.hidden_channels}, downscale 1); match --hidden-layers/"
                         "--hidden-channels to it or pass --init-from ''")
    for key, value in state.items():
        if key == "net.0.weight":  # (F, C, 3, 3) -> (F, C + 1, 3, 3): a zero column for the sigma map
            value = torch.cat([value, torch.zeros_like(value[:, :1])], dim=1)
        if own[key].shape != value.shape:
            raise InputError(f"--init-from {name!r}: layer {key} has shape {tuple(value.shape)}, this model "
                             f"{tuple(own[key].shape)}; match the architecture or pass --init-from ''")
        own[key] = value
    net.load_state_dict(own)
    sha = (getattr(donor, "metadata", {}) or {}).get("sha256", "")
    return f"{name} ({donor.config.get('weights', '')}, sha256 {sha[:16]}), sigma-map input weights zero"


def _autocast(net):
    """``net`` wrapped to run under CPU bfloat16 autocast; its state dict stays the network's."""
    import torch

    class Autocast(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.inner(x).float()

        def state_dict(self, *args, **kwargs):
            return self.inner.state_dict(*args, **kwargs)

        def load_state_dict(self, state, *args, **kwargs):
            return self.inner.load_state_dict(state, *args, **kwargs)

    return Autocast(net)


def _jsonable(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def export_weights(result, net, opts: FFDNetOptions, described: dict, name: str, command: str = "") -> Path:
    """Ship ``net`` as ``weights/<name>.pt`` + ``.json`` (provenance and SHA-256)."""
    from restorekit.weights import save_model

    h = result.history
    meta = {
        "restorer": "ffdnet",
        **described,
        "channels": 3,
        "noise_sigma_range": list(opts.sigma_range),
        "noise_level_input": "sigma map channel (the true sigma in training)",
        "sigma_scale": "[0, 1] (25/255 = 0.098)",
        "epochs": opts.epochs,
        "steps": h["steps_per_epoch"] * opts.epochs,
        "optimizer": f"Adam lr {opts.lr}, /10 after {opts.lr_drop_at:.0%} of the steps, batch {opts.batch_size}",
        "seed": opts.seed,
        "val_psnr_db": round(h["val_psnr"][-1], 3) if h["val_psnr"] else None,
        "val_psnr_setting": f"{VAL_HELD_OUT} held-out images, central {opts.val_crop}x{opts.val_crop}, "
                            f"sigma {opts.val_sigma} given to the model",
        "final_train_loss": round(h["epoch_loss"][-1], 6) if h["epoch_loss"] else None,
        "train_seconds": round(h["seconds"], 1),
        "machine": {"cpu": cpu_name(), "amx_bf16": cpu_has_amx_bf16(), "threads": opts.threads,
                    "device": opts.device},
        "trained_for": {"tasks": ["denoise"], "kernel_sha256": None, "noise_sigma_range": list(opts.sigma_range)},
        "command": command or f"python -m restorekit_plugins.ffdnet.train --preset {opts.preset} --export {name}",
        "options": _jsonable(asdict(opts)),
    }
    path = WEIGHTS_DIR / f"{name}.pt"
    WEIGHTS_DIR.mkdir(exist_ok=True)
    save_model(net, path, arch=net.arch(), metadata=meta)
    return path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m restorekit_plugins.ffdnet.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="ffdnet-color", choices=sorted(PRESETS))
    p.add_argument("--data", default=None, help="colour training folder (default ../shared/data/CBSD432)")
    p.add_argument("--gray-data", default=None, help="gray folder mixed in (default ../shared/data/Train400)")
    p.add_argument("--gray-fraction", type=float, default=None, help="share of gray samples (0 to 1)")
    p.add_argument("--hidden-layers", type=int, default=None)
    p.add_argument("--hidden-channels", type=int, default=None)
    p.add_argument("--downscale", type=int, choices=(1, 2), default=None,
                   help="1: full resolution (default); 2: FFDNet's 2x2 pixel blocks")
    p.add_argument("--init-from", default=None, help="start from this registered restorer's blind network "
                   "(default dncnn; '' for a fresh start)")
    p.add_argument("--sigma-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"))
    p.add_argument("--patch", type=int, default=None)
    p.add_argument("--crops-per-epoch", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="read only the first N images")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 1)")
    p.add_argument("--device", default=None)
    p.add_argument("--bf16", choices=("auto", "on", "off"), default=None)
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, history.json, curves.png)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export", default="", help="ship the result as weights/NAME.pt + NAME.json")
    p.add_argument("--no-progress", action="store_true")
    return p


OPTION_KEYS = ("data", "gray_data", "gray_fraction", "hidden_layers", "hidden_channels", "downscale", "init_from",
               "sigma_range", "patch",
               "crops_per_epoch", "epochs", "batch_size", "lr", "seed", "limit", "threads", "device", "bf16")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides = {k: getattr(args, k) for k in OPTION_KEYS if getattr(args, k) is not None}
    if "sigma_range" in overrides:
        overrides["sigma_range"] = tuple(overrides["sigma_range"])
    opts = FFDNetOptions(preset=args.preset, **{**PRESETS[args.preset], **overrides})
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]
    command = "python -m restorekit_plugins.ffdnet.train " + shlex.join(given)
    result = train_ffdnet(opts, args.out, resume=args.resume, export=args.export, progress=not args.no_progress,
                          command=command)
    if result.is_main:
        h = result.history
        print(f"done: {len(h['epoch_loss'])} epochs, validation PSNR {h['val_psnr'][-1]:.2f} dB, "
              f"{h['seconds']:.0f} s; run folder {args.out}")
    return 0


def run_request(req) -> int:
    """``restorekit train ffdnet``: the command's common options, then the plugin's own (``req.extra``)."""
    argv = ["--out", req.out or f"runs/{req.name}"]
    for flag, value in (("--data", req.data), ("--epochs", req.epochs), ("--batch-size", req.batch_size),
                        ("--lr", req.lr), ("--patch", req.patch), ("--seed", req.seed), ("--limit", req.limit),
                        ("--device", req.device), ("--threads", req.threads)):
        if value is not None:
            argv += [flag, str(value)]
    if req.sigma_range is not None:
        argv += ["--sigma-range", str(req.sigma_range[0]), str(req.sigma_range[1])]
    if req.resume:
        argv.append("--resume")
    if req.export:
        argv += ["--export", req.export]
    if not req.progress:
        argv.append("--no-progress")
    return main(argv + list(req.extra))


if __name__ == "__main__":
    from restorekit.errors import RestorekitError

    try:
        sys.exit(main())
    except RestorekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
