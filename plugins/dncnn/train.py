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

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from restorekit.training.options import TrainOptions, TrainRun, check_sigma_option, option, resolve_options, trainer

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
VAL_HELD_OUT = 8


def default_data_root() -> Path:
    from restorekit.kernels import default_data_root as root

    found = root()
    return found if found is not None else Path("../shared/data")


@dataclass
class DnCNNOptions(TrainOptions):
    """One DnCNN training run (stored in the checkpoint and the shipped metadata); also its command line."""

    preset: str = option("course", "starting settings; options given replace the preset's")
    data: str = option("", "colour training folder (by default --data-folder under the data root)")
    data_folder: str = option("CBSD432", "the folder under the data root (../shared/data) used without --data")
    gray_data: str = option("", "grayscale folder mixed in (by default Train400 under the data root)")
    gray_fraction: float = option(0.0, "share of samples from --gray-data, gray repeated in 3 channels",
                                  minimum=0, below=1)
    hidden_layers: int = option(8, "hidden convolution layers", minimum=1)
    hidden_channels: int = option(64, "channels of each hidden layer", minimum=1)
    use_bias: bool = option(True, "no bias in the convolutions", flags=("--no-bias",))
    sigma: float | None = option(0.1, "fixed noise sigma, [0, 1] scale", check=check_sigma_option, exclusive="noise")
    sigma_range: tuple[float, float] | None = option(None, "noise sigma drawn uniformly per sample, e.g. 0,0.2",
                                                     check=check_sigma_option, exclusive="noise")
    patch: int = option(32, "patch or crop side in pixels", minimum=1)
    sampling: str = option("patches", "patches: the course's non-overlapping grid; crops: random, with flips",
                           choices=("patches", "crops"))
    crops_per_epoch: int = option(0, "crops per epoch with --sampling crops (0: 32 per image)", minimum=0)
    epochs: int = option(2, "passes over the training set", minimum=1)
    batch_size: int = option(32, "samples per step and per process", minimum=1)
    lr: float = option(1e-3, "Adam learning rate", above=0)
    lr_drop_at: float | None = option(None, "fraction of the run after which the rate is divided by 10",
                                      above=0, below=1)
    samples_per_epoch: int | None = option(None, "random subset of the samples per epoch", minimum=1)
    limit: int | None = option(None, "read only the first N training images", minimum=1)
    val_sigma: float = option(0.1, "noise sigma of the validation images", check=check_sigma_option)
    val_crop: int = option(128, "side of the central validation crops", minimum=1)
    checkpoint_every: int = option(200, "steps between mid-epoch checkpoints (0: only at epoch ends)", minimum=0)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
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


PRESETS = DnCNNOptions.presets


def build_datasets(opts: DnCNNOptions, progress: bool = True):
    """``(clean_samples, val_triples, description, sampler)`` for ``opts``.

    The samples are clean crops or patches; the sampler
    (:class:`restorekit.degrade.DegradationSampler`) adds each batch's noise,
    one sigma per sample, as :func:`restorekit.training.fit` runs.
    """
    from restorekit.degrade import DegradationSampler
    from restorekit.training import CleanSamples, ConcatPairs, GrayAsColour, Patches, RandomCrops, fixed_pairs, load_images

    root = default_data_root()
    folder = Path(opts.data) if opts.data else root / opts.data_folder
    images = load_images(folder, limit=opts.limit, progress=progress)
    channels = int(images[0].shape[0])
    if len(images) > VAL_HELD_OUT * 2:
        train_images, val_images = images[:-VAL_HELD_OUT], images[-VAL_HELD_OUT:]
    else:  # tiny folders (tests): validate on the training images
        train_images, val_images = images, images[:2]
    sampler = (DegradationSampler(sigma=opts.sigma) if opts.sigma_range is None
               else DegradationSampler(sigma_range=tuple(opts.sigma_range)))
    if opts.sampling == "patches":
        source = Patches(train_images, size=opts.patch)
    elif opts.sampling == "crops":
        source = RandomCrops(train_images, size=opts.patch, length=opts.crops_per_epoch or len(train_images) * 32)
    else:
        raise ValueError(f"sampling must be 'patches' or 'crops', got {opts.sampling!r}")
    colour = CleanSamples(source, seed=opts.seed)
    gray = None
    described = {"training_data": f"{folder.name}: {len(train_images)} images ({opts.sampling} of {opts.patch}x"
                                  f"{opts.patch}), last {len(val_images)} held apart for validation"}
    if opts.gray_fraction > 0:
        gfolder = Path(opts.gray_data) if opts.gray_data else root / "Train400"
        gimages = load_images(gfolder, grayscale=True, limit=opts.limit, progress=progress)
        n_gray = max(1, round(len(source) * opts.gray_fraction / (1 - opts.gray_fraction)))
        gsource = (Patches(gimages, size=opts.patch) if opts.sampling == "patches"
                   else RandomCrops(gimages, size=opts.patch, length=n_gray))
        gray = GrayAsColour(CleanSamples(gsource, seed=opts.seed + 1))
        described["training_data"] += (f"; plus {gfolder.name}: {len(gimages)} grayscale images as "
                                       f"{100 * opts.gray_fraction:.0f}% of samples, gray and noise repeated in 3 channels")
    train = ConcatPairs([colour, gray]) if gray is not None else colour
    val = fixed_pairs(val_images, DegradationSampler(sigma=opts.val_sigma), seed=opts.seed, crop=opts.val_crop)
    described["channels"] = channels
    return train, val, described, sampler


def train_dncnn(opts: DnCNNOptions, out: str | os.PathLike, resume: bool = False, export: str | os.PathLike = "",
                progress: bool = True, command: str = ""):
    """Train a DnCNN as ``opts`` says; write checkpoints to ``out``; ship as ``export`` if given.

    The network is trained through the ``dncnn`` restorer's own forward pass
    (:meth:`restorekit.learned.LearnedRestorer.forward`) on batches degraded by
    a :class:`restorekit.degrade.DegradationSampler`. ``export`` is a weights
    name (``weights/NAME.pt``) or a path ending in ``.pt``.
    """
    from restorekit.training import TrainConfig, fit, seed_everything

    from .model import DnCNN
    from .restorer import DnCNNRestorer

    train, val, described, sampler = build_datasets(opts, progress)
    seed_everything(opts.seed)
    net = DnCNN(channels=described["channels"], hidden_layers=opts.hidden_layers,
                hidden_channels=opts.hidden_channels, use_bias=opts.use_bias)
    restorer = DnCNNRestorer.from_network(net)
    cfg = TrainConfig(epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, lr_drop_at=opts.lr_drop_at,
                      seed=opts.seed, samples_per_epoch=opts.samples_per_epoch, checkpoint_every=opts.checkpoint_every,
                      device=opts.device, progress=progress, log_every=25)
    title = f"DnCNN {opts.hidden_layers}x{opts.hidden_channels}{'' if opts.use_bias else ' no bias'}"
    result = fit(restorer, train, cfg, val_pairs=val, out=out, resume=resume, title=title, sampler=sampler,
                 extra_state={"arch": net.arch(), "options": _jsonable(asdict(opts))})
    if export and result.is_main:
        ship(result, opts, described, sampler, export, command)
    return result


def _jsonable(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def ship(result, opts: DnCNNOptions, described: dict, sampler, name: str | os.PathLike, command: str = "") -> Path:
    """Ship ``result``'s network as ``weights/<name>.pt`` (or to ``name`` if it ends in ``.pt``) + ``.json``.

    Through :func:`restorekit.weights.export`: ``trained_for`` from the
    sampler, the machine, precision, steps and seconds from the run.
    """
    from restorekit.weights import export

    noise = ({"noise_sigma_range": list(opts.sigma_range)} if opts.sigma_range is not None
             else {"noise_sigma": opts.sigma})
    meta = {
        "restorer": "dncnn",
        **described,
        **noise,
        "sigma_scale": "[0, 1] (25/255 = 0.098)",
        "samples_per_epoch": opts.samples_per_epoch or result.history["steps_per_epoch"] * opts.batch_size,
        "optimizer": f"Adam lr {opts.lr}" + (f", /10 after {opts.lr_drop_at:.0%} of the steps" if opts.lr_drop_at else "")
                     + f", batch {opts.batch_size}",
        "seed": opts.seed,
        "val_psnr_setting": f"{VAL_HELD_OUT} held-out images, central {opts.val_crop}x{opts.val_crop}, sigma {opts.val_sigma}",
        "options": _jsonable(asdict(opts)),
    }
    path = Path(name) if str(name).endswith(".pt") else WEIGHTS_DIR / f"{name}.pt"
    return export(result.model, path, sampler=sampler, history=result.history, metadata=meta, device=opts.device,
                  command=command or "python -m restorekit_plugins.dncnn.train "
                                     f"--preset {opts.preset} --export {name}")


def options_from(preset: str, **overrides) -> DnCNNOptions:
    """``DnCNNOptions`` of ``preset`` with ``overrides`` (``None`` values ignored), checked."""
    return resolve_options(DnCNNOptions, {"preset": preset, **{k: v for k, v in overrides.items() if v is not None}})


@trainer(DnCNNOptions, name="dncnn")
def run_request(opts: DnCNNOptions, run: TrainRun):
    """``restorekit train dncnn`` and ``python -m restorekit_plugins.dncnn.train``: the run's ``FitResult``."""
    return train_dncnn(opts, run.out, resume=run.resume, export=run.export_path(WEIGHTS_DIR, opts.preset) or "",
                       progress=run.progress, command=run.command)


if __name__ == "__main__":
    sys.exit(run_request.main())
