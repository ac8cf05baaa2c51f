"""Re-train DnCNN models from ``../shared/data`` (or any image folder).

Presets (``--preset``) fix what the shipped models were trained on; every
option can still be overridden:

``dncnn-color``  the shipped default: colour, blind over sigma in [0, 0.2], 10 hidden
                 layers of 32 channels; random 40x40 crops with flips and 90-degree
                 turns of ``CBSD432`` (9,600 per epoch, 13 epochs; its last 8 images
                 held apart for validation) plus, for the grayscale path, a
                 quarter of the samples from ``Train400`` with the gray image
                 and its noise repeated in all three channels;
``dncnn-gray``   the grayscale model: the same network with one channel, blind over
                 sigma in [0, 0.2], random 40x40 crops of ``Train400`` (last 8 held
                 apart), 9,600 per epoch, 12 epochs;
``course``       the course set-up: non-overlapping 32x32 patches of
                 ``CBSD432``, noise sigma 0.1, Adam 1e-3, batch 32, 2 epochs.

Run::

    python -m restorekit_plugins.dncnn.train --preset dncnn-color --out runs/dncnn-color --export dncnn-color
    python -m restorekit_plugins.dncnn.train --preset dncnn-gray --out runs/dncnn-gray --export dncnn-gray
    python -m restorekit_plugins.dncnn.train --preset course --hidden-channels 32 --no-bias --out runs/c32nb

``--export NAME`` writes ``weights/NAME.pt`` and ``NAME.json`` (architecture,
data, noise, epochs, the validation PSNR reached, the command) when training
ends. Runs are seeded and resumable (``--resume``; checkpoints are atomic).
Under ``torchrun --nproc-per-node N`` the run is data-parallel. Noise sigmas
are on the [0, 1] scale (25/255 = 0.098).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
VAL_HELD_OUT = 8


def default_data_root() -> Path:
    from restorekit.kernels import default_data_root as root

    found = root()
    return found if found is not None else Path("../shared/data")


@dataclass
class DnCNNOptions:
    """One DnCNN training run (stored in the checkpoint and the shipped metadata)."""

    preset: str = "course"
    data: str = ""                       # training folder (default <data root>/<data_folder>)
    data_folder: str = "CBSD432"         # the folder under the data root used when data is not given
    gray_data: str = ""                  # grayscale folder mixed in (default <data root>/Train400 for dncnn-color)
    gray_fraction: float = 0.0           # share of samples taken from gray_data
    hidden_layers: int = 8
    hidden_channels: int = 64
    use_bias: bool = True
    sigma: float | None = 0.1
    sigma_range: tuple[float, float] | None = None
    patch: int = 32
    sampling: str = "patches"            # "patches" (non-overlapping, the course's) or "crops" (random, flips)
    crops_per_epoch: int = 0             # length of an epoch with sampling="crops"
    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-3
    lr_drop_at: float | None = None
    samples_per_epoch: int | None = None
    seed: int = 0
    limit: int | None = None             # read only the first N training images
    val_sigma: float = 0.1
    val_crop: int = 128
    threads: int = 0
    checkpoint_every: int = 200
    device: str = "cpu"


PRESETS = {
    "course": dict(sigma=0.1, sigma_range=None, patch=32, sampling="patches", epochs=2, hidden_layers=8,
                   hidden_channels=64, gray_fraction=0.0),
    # What the shipped dncnn-color was trained with on a shared 2-core CPU (see its .json); a bigger
    # budget (e.g. a GPU) would raise epochs/crops_per_epoch and hidden_channels (64) with this same script.
    "dncnn-color": dict(sigma=None, sigma_range=(0.0, 0.2), patch=40, sampling="crops", crops_per_epoch=9600,
                        epochs=13, hidden_layers=10, hidden_channels=32, gray_fraction=0.25, lr_drop_at=0.8),
    # The grayscale model: Train400 (gray), the same network with one channel in and out.
    "dncnn-gray": dict(data_folder="Train400", sigma=None, sigma_range=(0.0, 0.2), patch=40, sampling="crops",
                       crops_per_epoch=9600, epochs=12, hidden_layers=10, hidden_channels=32, gray_fraction=0.0,
                       lr_drop_at=0.8),
}


class GrayAsColour:
    """Gray ``(degraded, clean)`` pairs repeated into three identical channels."""

    def __init__(self, pairs) -> None:
        self.pairs = pairs

    def set_epoch(self, epoch: int) -> None:
        self.pairs.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index):
        degraded, clean = self.pairs[index]
        return degraded.expand(3, -1, -1).contiguous(), clean.expand(3, -1, -1).contiguous()


class Mixture:
    """Samples of several pair datasets, one after another, each told the epoch."""

    def __init__(self, *parts) -> None:
        self.parts = [p for p in parts if p is not None and len(p)]
        self.offsets = []
        total = 0
        for p in self.parts:
            self.offsets.append(total)
            total += len(p)
        self.total = total

    def set_epoch(self, epoch: int) -> None:
        for p in self.parts:
            p.set_epoch(epoch)

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int):
        for part, offset in zip(reversed(self.parts), reversed(self.offsets)):
            if index >= offset:
                return part[index - offset]
        raise IndexError(index)


def build_datasets(opts: DnCNNOptions, progress: bool = True):
    """``(train_pairs, val_pairs, description)`` for ``opts``."""
    from restorekit.training import (AddNoise, DegradedPairs, Patches, RandomCrops, fixed_pairs, load_images)

    root = default_data_root()
    folder = Path(opts.data) if opts.data else root / opts.data_folder
    images = load_images(folder, limit=opts.limit, progress=progress)
    channels = int(images[0].shape[0])
    if len(images) > VAL_HELD_OUT * 2:
        train_images, val_images = images[:-VAL_HELD_OUT], images[-VAL_HELD_OUT:]
    else:  # tiny folders (tests): validate on the training images
        train_images, val_images = images, images[:2]
    make_input = AddNoise(opts.sigma, None) if opts.sigma_range is None else AddNoise(None, tuple(opts.sigma_range))
    if opts.sampling == "patches":
        source = Patches(train_images, size=opts.patch)
    elif opts.sampling == "crops":
        source = RandomCrops(train_images, size=opts.patch, length=opts.crops_per_epoch or len(train_images) * 32)
    else:
        raise ValueError(f"sampling must be 'patches' or 'crops', got {opts.sampling!r}")
    colour = DegradedPairs(source, make_input, seed=opts.seed)
    gray = None
    described = {"training_data": f"{folder.name}: {len(train_images)} images ({opts.sampling} of {opts.patch}x"
                                  f"{opts.patch}), last {len(val_images)} held apart for validation"}
    if opts.gray_fraction > 0:
        gfolder = Path(opts.gray_data) if opts.gray_data else root / "Train400"
        gimages = load_images(gfolder, grayscale=True, limit=opts.limit, progress=progress)
        n_gray = max(1, round(len(source) * opts.gray_fraction / (1 - opts.gray_fraction)))
        gsource = (Patches(gimages, size=opts.patch) if opts.sampling == "patches"
                   else RandomCrops(gimages, size=opts.patch, length=n_gray))
        gray = GrayAsColour(DegradedPairs(gsource, make_input, seed=opts.seed + 1))
        described["training_data"] += (f"; plus {gfolder.name}: {len(gimages)} grayscale images as "
                                       f"{100 * opts.gray_fraction:.0f}% of samples, gray and noise repeated in 3 channels")
    train = Mixture(colour, gray) if gray is not None else colour
    val = fixed_pairs(val_images, AddNoise(opts.val_sigma), seed=opts.seed, crop=opts.val_crop)
    described["channels"] = channels
    return train, val, described


def train_dncnn(opts: DnCNNOptions, out: str | os.PathLike, resume: bool = False, export: str = "",
                progress: bool = True, command: str = ""):
    """Train a DnCNN as ``opts`` says; write checkpoints to ``out``; ship as ``export`` if given."""
    import torch

    from restorekit.training import TrainConfig, fit, seed_everything

    from .model import DnCNN

    if opts.threads:
        torch.set_num_threads(opts.threads)
    train, val, described = build_datasets(opts, progress)
    seed_everything(opts.seed)
    net = DnCNN(channels=described["channels"], hidden_layers=opts.hidden_layers,
                hidden_channels=opts.hidden_channels, use_bias=opts.use_bias)
    cfg = TrainConfig(epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, lr_drop_at=opts.lr_drop_at,
                      seed=opts.seed, samples_per_epoch=opts.samples_per_epoch, checkpoint_every=opts.checkpoint_every,
                      device=opts.device, progress=progress, log_every=25)
    title = f"DnCNN {opts.hidden_layers}x{opts.hidden_channels}{'' if opts.use_bias else ' no bias'}"
    result = fit(net, train, cfg, val_pairs=val, out=out, resume=resume, title=title,
                 extra_state={"arch": net.arch(), "options": _jsonable(asdict(opts))})
    if export and result.is_main:
        export_weights(result, opts, described, export, command)
    return result


def _jsonable(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def export_weights(result, opts: DnCNNOptions, described: dict, name: str, command: str = "") -> Path:
    """Ship ``result.model`` as ``weights/<name>.pt`` + ``.json`` (provenance and SHA-256)."""
    from restorekit.weights import save_model

    h = result.history
    noise = ({"noise_sigma_range": list(opts.sigma_range)} if opts.sigma_range is not None
             else {"noise_sigma": opts.sigma})
    meta = {
        "restorer": "dncnn",
        **described,
        **noise,
        "sigma_scale": "[0, 1] (25/255 = 0.098)",
        "epochs": opts.epochs,
        "steps": h["steps_per_epoch"] * opts.epochs,
        "samples_per_epoch": opts.samples_per_epoch or h["steps_per_epoch"] * opts.batch_size,
        "optimizer": f"Adam lr {opts.lr}" + (f", /10 after {opts.lr_drop_at:.0%} of the steps" if opts.lr_drop_at else "")
                     + f", batch {opts.batch_size}",
        "seed": opts.seed,
        "val_psnr_db": round(h["val_psnr"][-1], 3) if h["val_psnr"] else None,
        "val_psnr_setting": f"{VAL_HELD_OUT} held-out images, central {opts.val_crop}x{opts.val_crop}, sigma {opts.val_sigma}",
        "final_train_loss": round(h["epoch_loss"][-1], 6) if h["epoch_loss"] else None,
        "train_seconds": round(h["seconds"], 1),
        "command": command or "python -m restorekit_plugins.dncnn.train " + f"--preset {opts.preset} --export {name}",
        "options": _jsonable(asdict(opts)),
    }
    path = WEIGHTS_DIR / f"{name}.pt"
    WEIGHTS_DIR.mkdir(exist_ok=True)
    save_model(result.model, path, arch=result.model.arch(), metadata=meta)
    return path


def options_from(preset: str, **overrides) -> DnCNNOptions:
    """``DnCNNOptions`` of ``preset`` with ``overrides`` (``None`` values ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    if overrides.get("sigma") is not None:
        values["sigma_range"] = None
    if overrides.get("sigma_range") is not None:
        values["sigma"] = None
    return DnCNNOptions(preset=preset, **values)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="course", choices=sorted(PRESETS), help="starting settings (default: course)")
    p.add_argument("--data", default=None, help="colour training folder (default ../shared/data/CBSD432)")
    p.add_argument("--gray-data", default=None, help="gray folder mixed in (default ../shared/data/Train400)")
    p.add_argument("--gray-fraction", type=float, default=None, help="share of gray samples (0 to 1)")
    p.add_argument("--hidden-layers", type=int, default=None)
    p.add_argument("--hidden-channels", type=int, default=None)
    p.add_argument("--no-bias", dest="use_bias", action="store_const", const=False, default=None)
    p.add_argument("--sigma", type=float, default=None, help="fixed noise sigma, [0, 1] scale")
    p.add_argument("--sigma-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"))
    p.add_argument("--patch", type=int, default=None, help="patch or crop side in pixels")
    p.add_argument("--sampling", choices=("patches", "crops"), default=None)
    p.add_argument("--crops-per-epoch", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--lr-drop-at", type=float, default=None)
    p.add_argument("--samples-per-epoch", type=int, default=None, help="random subset of samples per epoch")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="read only the first N images")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, history.json, curves.png)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export", default="", help="ship the result as weights/NAME.pt + NAME.json")
    p.add_argument("--no-progress", action="store_true")


OPTION_KEYS = ("data", "gray_data", "gray_fraction", "hidden_layers", "hidden_channels", "use_bias", "sigma",
               "sigma_range", "patch", "sampling", "crops_per_epoch", "epochs", "batch_size", "lr", "lr_drop_at",
               "samples_per_epoch", "seed", "limit", "threads", "checkpoint_every", "device")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restorekit_plugins.dncnn.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    overrides = {k: getattr(args, k) for k in OPTION_KEYS}
    if overrides["sigma_range"] is not None:
        overrides["sigma_range"] = tuple(overrides["sigma_range"])
    opts = options_from(args.preset, **overrides)
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]  # what re-creates the run
    command = "python -m restorekit_plugins.dncnn.train " + shlex.join(given)
    result = train_dncnn(opts, args.out, resume=args.resume, export=args.export, progress=not args.no_progress,
                         command=command)
    if result.is_main:
        h = result.history
        print(f"done: {len(h['epoch_loss'])} epochs, validation PSNR {h['val_psnr'][-1]:.2f} dB, "
              f"{h['seconds']:.0f} s; run folder {args.out}")
    return 0


def run_request(req) -> int:
    """``restorekit train dncnn``: the command's common options, then the plugin's own (``req.extra``)."""
    argv = ["--out", req.out or f"runs/{req.name}"]
    for flag, value in (("--data", req.data), ("--epochs", req.epochs), ("--batch-size", req.batch_size),
                        ("--lr", req.lr), ("--sigma", req.sigma), ("--patch", req.patch), ("--seed", req.seed),
                        ("--limit", req.limit), ("--device", req.device), ("--threads", req.threads)):
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
