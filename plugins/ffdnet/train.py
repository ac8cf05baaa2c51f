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
under bfloat16 autocast (about 6x faster on CPUs with AMX-BF16, 2.2x with AVX512-BF16; ``auto``,
the default, turns it on where ``/proc/cpuinfo`` lists ``amx_bf16`` or ``avx512_bf16``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from restorekit.training.machine import use_bf16
from restorekit.training.options import TrainOptions, TrainRun, check_sigma_option, option, trainer

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
VAL_HELD_OUT = 8


@dataclass
class FFDNetOptions(TrainOptions):
    """One FFDNet training run (stored in the checkpoint and the shipped metadata); also its command line."""

    preset: str = option("ffdnet-color", "starting settings; options given replace the preset's")
    data: str = option("", "colour training folder (by default CBSD432 under the data root)")
    gray_data: str = option("", "grayscale folder mixed in (by default Train400 under the data root)")
    gray_fraction: float = option(0.25, "share of samples from --gray-data, gray repeated in 3 channels",
                                  minimum=0, below=1)
    hidden_layers: int = option(10, "hidden convolution layers", minimum=1)
    hidden_channels: int = option(32, "channels of each hidden layer", minimum=1)
    downscale: int = option(1, "1: full resolution; 2: FFDNet's 2x2 pixel blocks", choices=(1, 2))
    init_from: str = option("dncnn", "start from this registered restorer's blind network ('' for a fresh start)")
    sigma_range: tuple[float, float] = option((0.0, 0.21), "noise sigma drawn uniformly per sample, [0, 1] scale",
                                              check=check_sigma_option)
    patch: int = option(40, "crop side in pixels", minimum=2)
    crops_per_epoch: int = option(4800, "random crops per epoch", minimum=1)
    epochs: int = option(15, "passes of --crops-per-epoch crops", minimum=1)
    batch_size: int = option(32, "samples per step and per process", minimum=1)
    lr: float = option(5e-4, "Adam learning rate", above=0)
    lr_drop_at: float = option(0.8, "fraction of the run after which the rate is divided by 10", above=0, below=1)
    limit: int | None = option(None, "read only the first N images of each folder", minimum=1)
    val_sigma: float = option(0.1, "noise sigma of the validation images (given to the model)",
                              check=check_sigma_option)
    val_crop: int = option(128, "side of the central validation crops", minimum=2)
    threads: int = option(1, "torch CPU threads per process (0: torch's default)", minimum=0)
    checkpoint_every: int = option(100, "steps between mid-epoch checkpoints (0: only at epoch ends)", minimum=0)
    bf16: str = option("auto", "bfloat16 autocast on the CPU (auto: where the CPU has AMX-BF16 or AVX512-BF16)",
                       choices=("auto", "on", "off"))

    presets: ClassVar[dict[str, dict[str, Any]]] = {"ffdnet-color": {}}


PRESETS = FFDNetOptions.presets


def build_datasets(opts: FFDNetOptions, progress: bool = True):
    """``(clean_samples, val_triples, description, sampler)`` for ``opts``.

    The sampler (:class:`restorekit.degrade.DegradationSampler`) draws each
    sample's sigma and noise as :func:`restorekit.training.fit` runs; the
    ``ffdnet`` restorer's forward reads the levels from its ``Noise`` as a map.
    """
    from restorekit.degrade import DegradationSampler
    from restorekit.kernels import default_data_root
    from restorekit.training import CleanSamples, ConcatPairs, GrayAsColour, RandomCrops, fixed_pairs, load_images

    root = default_data_root() or Path("../shared/data")
    folder = Path(opts.data) if opts.data else root / "CBSD432"
    images = load_images(folder, limit=opts.limit, progress=progress)
    if len(images) > VAL_HELD_OUT * 2:
        train_images, val_images = images[:-VAL_HELD_OUT], images[-VAL_HELD_OUT:]
    else:  # tiny folders (tests): validate on the training images
        train_images, val_images = images, images[:2]
    sampler = DegradationSampler(sigma_range=tuple(opts.sigma_range))
    parts = [CleanSamples(RandomCrops(train_images, size=opts.patch, length=opts.crops_per_epoch), seed=opts.seed)]
    described = {"training_data": f"{folder.name}: {len(train_images)} images (random crops of {opts.patch}x"
                                  f"{opts.patch}), last {len(val_images)} held apart for validation"}
    if opts.gray_fraction > 0:
        gfolder = Path(opts.gray_data) if opts.gray_data else root / "Train400"
        gimages = load_images(gfolder, grayscale=True, limit=opts.limit, progress=progress)
        n_gray = max(1, round(opts.crops_per_epoch * opts.gray_fraction / (1 - opts.gray_fraction)))
        parts.append(GrayAsColour(CleanSamples(RandomCrops(gimages, size=opts.patch, length=n_gray),
                                               seed=opts.seed + 1)))
        described["training_data"] += (f"; plus {gfolder.name}: {len(gimages)} grayscale images as "
                                       f"{100 * opts.gray_fraction:.0f}% of samples, gray and noise repeated in "
                                       "3 channels")
    val = fixed_pairs(val_images, DegradationSampler(sigma=opts.val_sigma), seed=opts.seed, crop=opts.val_crop)
    return ConcatPairs(parts), val, described, sampler


def train_ffdnet(opts: FFDNetOptions, out: str | os.PathLike, resume: bool = False, export: str | os.PathLike = "",
                 progress: bool = True, command: str = ""):
    """Train an FFDNet as ``opts`` says, through the ``ffdnet`` restorer's forward; ship as ``export`` if given."""
    import torch

    from restorekit.training import TrainConfig, fit, seed_everything

    from .model import FFDNet
    from .restorer import FFDNetRestorer

    if opts.threads:
        torch.set_num_threads(opts.threads)
    bf16 = use_bf16(opts.bf16, opts.device)
    train, val, described, sampler = build_datasets(opts, progress)
    seed_everything(opts.seed)
    net = FFDNet(channels=3, hidden_layers=opts.hidden_layers, hidden_channels=opts.hidden_channels,
                 downscale=opts.downscale)
    if opts.init_from:
        described["initialised_from"] = initialise_from(net, opts.init_from)
    cfg = TrainConfig(epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, lr_drop_at=opts.lr_drop_at,
                      seed=opts.seed, checkpoint_every=opts.checkpoint_every, device=opts.device,
                      progress=progress, log_every=25)
    title = f"FFDNet {opts.hidden_layers}x{opts.hidden_channels}" + (" (bf16 autocast)" if bf16 else "")
    result = fit(FFDNetRestorer.from_network(net), train, cfg, val_pairs=val, out=out, resume=resume, title=title,
                 sampler=sampler, bf16=bf16, extra_state={"arch": net.arch(), "options": _jsonable(asdict(opts))})
    if export and result.is_main:
        ship(result, opts, described, sampler, export, command, "bfloat16 autocast" if bf16 else "float32")
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


def _jsonable(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def ship(result, opts: FFDNetOptions, described: dict, sampler, name: str | os.PathLike, command: str = "",
         precision: str = "float32") -> Path:
    """Ship ``result``'s network as ``weights/<name>.pt`` (or to ``name`` if it ends in ``.pt``) + ``.json``.

    Through :func:`restorekit.weights.export` (``trained_for`` from the sampler;
    machine, precision, steps and seconds from the run).
    """
    from restorekit.weights import export

    meta = {
        "restorer": "ffdnet",
        **described,
        "channels": 3,
        "noise_sigma_range": list(opts.sigma_range),
        "noise_level_input": "sigma map channel (the true sigma in training)",
        "sigma_scale": "[0, 1] (25/255 = 0.098)",
        "optimizer": f"Adam lr {opts.lr}, /10 after {opts.lr_drop_at:.0%} of the steps, batch {opts.batch_size}",
        "seed": opts.seed,
        "val_psnr_setting": f"{VAL_HELD_OUT} held-out images, central {opts.val_crop}x{opts.val_crop}, "
                            f"sigma {opts.val_sigma} given to the model",
        "options": _jsonable(asdict(opts)),
    }
    path = Path(name) if str(name).endswith(".pt") else WEIGHTS_DIR / f"{name}.pt"
    return export(result.model, path, sampler=sampler, history=result.history, metadata=meta, precision=precision,
                  device=opts.device, threads=opts.threads,
                  command=command or f"python -m restorekit_plugins.ffdnet.train --preset {opts.preset} --export {name}")


@trainer(FFDNetOptions, name="ffdnet")
def run_request(opts: FFDNetOptions, run: TrainRun):
    """``restorekit train ffdnet`` and ``python -m restorekit_plugins.ffdnet.train``: the run's ``FitResult``."""
    return train_ffdnet(opts, run.out, resume=run.resume, export=run.export_path(WEIGHTS_DIR, opts.preset) or "",
                        progress=run.progress, command=run.command)


if __name__ == "__main__":
    sys.exit(run_request.main())
