r"""Train the DRUNet-style prior from ``../shared/data`` (or any image folders).

The shipped model ``drunet-color`` is trained as ``--preset drunet-color`` says:
colour, the noise sigma drawn per crop over the whole range down to zero (90%
uniform in [0, 0.21], 10% uniform in [0, 0.01], so a clean or lightly noisy image
is returned no worse), random 64x64 crops with flips and 90-degree turns of
``CBSD432`` (its last 8 images held apart for validation) plus a quarter of the
samples from ``Train400`` with the gray image and its noise repeated in all three
channels (so gray photos restore through the same model), batches of 16, Adam
1e-3 divided by 10 for the last fifth, mean squared error. Each sample's input
is the noisy image followed by its sigma map (the true sigma, constant over the
crop). The architecture (widths 16/32/64/128, two residual blocks per scale and
side) was chosen by measured quality per CPU second
(``benchmarks/compare_prior_architectures.py``, see ``benchmarks/RESULTS.md``).

Run (resumable: a run stopped at any point continues with ``--resume``)::

    restorekit train drunet --preset drunet-color --out runs/drunet-color --export drunet-color
    restorekit train drunet --out runs/drunet-color --resume --export drunet-color

``drunet-color-pnp``, the weights ``pnp`` runs as its prior when it fills in missing pixels
(``DRUNetRestorer.pnp_weights``), is the shipped network trained further through pnp's own inpainting
solver: half the batches masked (each sample missing 50-90% of its pixels) and restored by pnp, the loss on
pnp's result, the other half Gaussian denoising as above::

    restorekit train drunet --out runs/drunet-color-pnp --init-from drunet-color --widths 16,32,64,128 \
        --blocks 4 --pnp-share 0.5 --pnp-mask random:0.5-0.9 --patch 96 --batch-size 4 --lr 5e-5 \
        --lr-drop-at 0.8 --epochs 3 --map-share 0 --export drunet-color-pnp

and then resumed to 7 epochs (the same options with ``--resume --epochs 7`` in place of ``--init-from
drunet-color --epochs 3``; the shipped weights are that run's end, ``benchmarks/training/README.md``).

``--export NAME`` writes ``weights/NAME.pt`` and ``NAME.json`` (architecture,
data, noise range, steps, validation PSNR, the CPU, precision and seconds, the
command) when the run ends. ``--bf16`` trains under bfloat16 autocast (``auto``,
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
class DRUNetOptions(TrainOptions):
    """One DRUNet training run (stored in the checkpoint and the shipped metadata); also its command line."""

    preset: str = option("drunet-color", "starting settings; options given replace the preset's")
    data: str = option("", "colour training folder (by default CBSD432 under the data root)")
    gray_data: str = option("", "grayscale folder mixed in (by default Train400 under the data root)")
    gray_fraction: float = option(0.25, "share of samples from --gray-data, gray repeated in 3 channels",
                                  minimum=0, below=1)
    widths: str = option("16,32,64,128", "feature maps at the four scales, comma-separated")
    blocks: int = option(2, "residual blocks per scale and side", minimum=0, maximum=8)
    sigma_range: tuple[float, float] = option((0.0, 0.21), "noise sigma drawn uniformly per sample, [0, 1] scale",
                                              check=check_sigma_option)
    low_fraction: float = option(0.1, "share of samples whose sigma is drawn in [0, --low-sigma] instead",
                                 minimum=0, below=1)
    low_sigma: float = option(0.01, "upper end of the low-noise draws", minimum=0, maximum=1)
    map_share: float = option(0.0, "share of samples whose noise level is a per-pixel map (noise on a random part "
                              "of the pixels only, or growing with the intensity as shot noise does), so the "
                              "network learns to read maps such as Poisson-Gaussian noise's or pnp's inpainting "
                              "map", minimum=0, below=1)
    pnp_share: float = option(0.0, "share of batches given a random mask (--pnp-mask) and restored through pnp's "
                              "inpainting solver (ADMM, its defaults), the loss on pnp's result: the network is "
                              "trained as the prior pnp runs it (PnPRestorer.forward; the gradient through its last "
                              "8 iterations); the other batches are Gaussian denoising as usual", minimum=0, below=1)
    pnp_mask: str = option("random:0.5-0.9", "the masks of the --pnp-share batches: random:LOW-HIGH (each sample's "
                           "missing fraction uniform in the range) or random:FRACTION")
    patch: int = option(64, "crop side in pixels (a multiple of 8)", minimum=8)
    crops_per_epoch: int = option(3200, "random crops per epoch", minimum=1)
    epochs: int = option(18, "passes of --crops-per-epoch crops", minimum=1)
    batch_size: int = option(16, "samples per step and per process", minimum=1)
    lr: float = option(1e-3, "Adam learning rate", above=0)
    lr_drop_at: float = option(0.8, "fraction of the run after which the rate is divided by 10", above=0, below=1)
    limit: int | None = option(None, "read only the first N images of each folder", minimum=1)
    val_sigma: float = option(0.1, "noise sigma of the validation images (given to the model)",
                              check=check_sigma_option)
    val_crop: int = option(128, "side of the central validation crops", minimum=8)
    threads: int = option(1, "torch CPU threads per process (0: torch's default)", minimum=0)
    checkpoint_every: int = option(50, "steps between mid-epoch checkpoints (0: only at epoch ends)", minimum=0)
    bf16: str = option("auto", "bfloat16 autocast on the CPU (auto: where the CPU has AMX-BF16 or AVX512-BF16)",
                       choices=("auto", "on", "off"))
    init_from: str = option("", "start a new run from the network of this checkpoint (another run's "
                            "checkpoint.pt, e.g. to continue on a GPU with a larger batch; or shipped weights: a "
                            "name such as drunet-color, or a .pt with its .json): weights only, a fresh "
                            "optimizer and history; a narrower or shallower network is grown to --widths/--blocks "
                            "computing the same function (Net2Net)")
    export_checkpoint: bool = option(False, "train nothing: ship the network of the checkpoint in --out as it "
                                            "is (with --export), a run not finished marked so in its .json")

    presets: ClassVar[dict[str, dict[str, Any]]] = {"drunet-color": {}}


def parse_widths(text: str) -> tuple[int, ...]:
    from restorekit.errors import InputError

    try:
        widths = tuple(int(w) for w in str(text).split(","))
    except ValueError:
        widths = ()
    if len(widths) != 4 or min(widths) < 1 or max(widths) > 512:
        raise InputError(f"--widths {text!r}: give four comma-separated feature counts in 1-512, "
                         "e.g. 16,32,64,128")
    return widths


def training_sampler(opts: DRUNetOptions):
    """The sampler of ``opts``: a :class:`restorekit.degrade.DegradationSampler` (sigma per sample over the range, a
    low share, a ``map_share`` of per-pixel maps), mixed with ``pnp_share`` of masked batches
    (:class:`restorekit.degrade.SamplerMixture`) when the run trains through pnp."""
    from restorekit.degrade import DegradationSampler, SamplerMixture

    noise = DegradationSampler(sigma_range=tuple(opts.sigma_range), low_fraction=opts.low_fraction,
                               low_sigma=opts.low_sigma, map_share=opts.map_share)
    if not opts.pnp_share:
        return noise
    return SamplerMixture([(1 - opts.pnp_share, noise), (opts.pnp_share, DegradationSampler(mask=opts.pnp_mask))])


def trained_model(net, opts: DRUNetOptions):
    """What ``fit`` trains: the ``drunet`` restorer around ``net``, inside ``pnp`` when ``pnp_share`` > 0 (its
    :meth:`~restorekit_plugins.pnp.restorer.PnPRestorer.forward` runs the solver on masked batches and the
    denoiser alone on noisy ones; the denoiser's guard off, as pnp builds it)."""
    from .restorer import DRUNetRestorer

    if not opts.pnp_share:
        return DRUNetRestorer.from_network(net)
    pnp = _pnp()  # from the registry: plugins use each other through it, never by import
    guard = pnp.denoiser.config.get("low_noise_guard", "off")  # as pnp builds its denoiser
    return pnp.with_denoiser(DRUNetRestorer.from_network(net, low_noise_guard=guard))


def _pnp():
    """pnp from the registry, with its defaults (the tasks' solvers and schedules), no progress bar."""
    from restorekit.registry import default_registry

    return default_registry().create("pnp", progress=False)


def build_datasets(opts: DRUNetOptions, progress: bool = True):
    """``(clean_samples, val_triples, description, sampler)`` for ``opts``."""
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
    return ConcatPairs(parts), val, described, training_sampler(opts)


def train_drunet(opts: DRUNetOptions, out: str | os.PathLike, resume: bool = False, export: str | os.PathLike = "",
                 progress: bool = True, command: str = ""):
    """Train a DRUNet as ``opts`` says; write checkpoints to ``out``; ship as ``export`` if given."""
    import torch

    from restorekit.training import TrainConfig, fit, seed_everything

    from .model import DRUNet

    if opts.export_checkpoint:
        if not export:
            from restorekit.errors import InputError

            raise InputError("--export-checkpoint ships the checkpoint's network: give --export NAME too")
        path = export_checkpoint(out, export, progress, command)
        print(f"shipped the checkpoint's network as {path} (and {path.with_suffix('.json').name})")
        return 0
    if opts.threads:
        torch.set_num_threads(opts.threads)
    widths = parse_widths(opts.widths)
    bf16 = use_bf16(opts.bf16, opts.device)
    train, val, described, sampler = build_datasets(opts, progress)
    seed_everything(opts.seed)
    net = DRUNet(channels=3, widths=widths, blocks=opts.blocks)
    if opts.init_from:
        described["initialized_from"] = initialize_from(net, opts.init_from, resume, seed=opts.seed)
    cfg = TrainConfig(epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, lr_drop_at=opts.lr_drop_at,
                      seed=opts.seed, checkpoint_every=opts.checkpoint_every, device=opts.device,
                      progress=progress, log_every=25)
    title = f"DRUNet {'-'.join(map(str, widths))} x{opts.blocks}" + (" (bf16 autocast)" if bf16 else "")
    if opts.pnp_share:
        title += f", {opts.pnp_share:.0%} of batches through pnp"
    described["precision"] = "bfloat16 autocast" if bf16 else "float32"
    # The restorer that restores is the one trained: its forward reads each sample's sigma from the sampler's Noise.
    result = fit(trained_model(net, opts), train, cfg, val_pairs=val, out=out, resume=resume, title=title,
                 sampler=sampler, bf16=bf16, extra_state={"arch": net.arch(), "options": _jsonable(asdict(opts)),
                                                          "precision": described["precision"]})
    if export and result.is_main:
        ship(result.history, net, opts, described, export, command)
    return result


def initialize_from(net, path: str | os.PathLike, resume: bool = False, seed: int = 0) -> str:
    """Load the network weights of the checkpoint (or shipped weights) at ``path`` into ``net``; say what was loaded.

    ``path`` is a run's ``checkpoint.pt``, a weights ``.pt`` with its ``.json``
    sidecar, or the name of shipped weights (``drunet-color``).

    A new run starts from them (a fresh optimizer, schedule and history). A
    checkpoint of a narrower or shallower network is grown to ``net``'s widths
    and blocks so that it computes the same function (:mod:`.widen`, Net2Net;
    ``seed`` draws how copied feature maps share their weights); any other
    architecture is refused. Refused together with ``--resume``, which
    continues a run with its own weights.
    """
    from restorekit.errors import InputError
    from restorekit.training import load_checkpoint

    from .widen import architecture_of, widen_state_dict

    if resume:
        raise InputError("--init-from starts a new run from another run's weights and --resume continues the run in "
                         "--out: choose one")
    source = Path(path)
    named = ""
    if not source.is_file() and (WEIGHTS_DIR / f"{path}.pt").is_file():  # a shipped model's name
        source, named = WEIGHTS_DIR / f"{path}.pt", f"{path} (shipped weights)"
    if not source.is_file():
        raise InputError(f"--init-from {source}: no such checkpoint file (give a run's checkpoint.pt, e.g. "
                         "benchmarks/training/drunet-color-deep/checkpoint.pt, or shipped weights such as "
                         "drunet-color)")
    from restorekit.weights import sidecar_path

    if source.suffix == ".pt" and sidecar_path(source).is_file():  # shipped weights: a verified state dict
        from restorekit.weights import load_state_dict

        weights, _ = load_state_dict(source)
        state = {"model": weights}
    else:
        state = load_checkpoint(source)
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(f"--init-from {source}: not a checkpoint written by 'restorekit train' (it holds no model)")
    grown = ""
    try:
        old = architecture_of(state["model"])
    except ValueError as exc:
        raise InputError(f"--init-from {source}: {exc} (give a 'restorekit train drunet' checkpoint)") from None
    new = net.arch()
    if old != new:
        if old["channels"] != new["channels"]:
            raise InputError(f"--init-from {source}: its network restores {old['channels']} channels, this run's "
                             f"{new['channels']}")
        try:
            state["model"] = widen_state_dict(state["model"], new["widths"], new["blocks"], seed=seed)
        except ValueError as exc:
            raise InputError(f"--init-from {source}: {exc}; give --widths and --blocks at least its own "
                             f"({','.join(map(str, old['widths']))} and {old['blocks']})") from None
        grown = (f", grown from widths {'-'.join(map(str, old['widths']))} x{old['blocks']} to "
                 f"{'-'.join(map(str, new['widths']))} x{new['blocks']} computing the same function (Net2Net)")
    net.load_state_dict(state["model"])
    steps = len(state.get("history", {}).get("step", [])) and state["history"]["step"][-1]
    return (named or (f"{source} (step {steps})" if steps else str(source))) + grown


def _backprop_iterations() -> int:
    """pnp's ``backprop_iterations``, read from its registered class (nothing is built)."""
    from restorekit.registry import default_registry

    return int(default_registry().get("pnp").resolve_factory().backprop_iterations)


def _jsonable(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def export_checkpoint(out: str | os.PathLike, name: str | os.PathLike, progress: bool = False,
                      command: str = "") -> Path:
    """Ship the network of the checkpoint in ``out`` as ``name`` without training (a stop mid-run).

    The options, architecture and history are the checkpoint's own; the
    sidecar says how far the run got (``finished``, ``epochs``/``steps`` done of
    those planned), so weights taken from a run that has not ended are marked so.
    """
    from restorekit.training import load_checkpoint

    from .model import DRUNet

    state = load_checkpoint(Path(out) / "checkpoint.pt")
    extra = state.get("extra") or {}
    arch, saved = extra.get("arch"), extra.get("options")
    if not arch or not saved:
        from restorekit.errors import InputError

        raise InputError(f"{out}/checkpoint.pt holds no drunet architecture/options; pass the --out folder of a "
                         "'restorekit train drunet' run")
    net = DRUNet(**arch)
    net.load_state_dict(state["model"])
    known = {f for f in DRUNetOptions.__dataclass_fields__}
    opts = DRUNetOptions(**{k: (tuple(v) if k == "sigma_range" else v) for k, v in saved.items() if k in known})
    described = {"training_data": "CBSD432 and Train400 crops as the options say (see options)",
                 "precision": extra.get("precision", "float32")}
    history = state["history"]
    done = int(state.get("epoch", 0))
    step_in_epoch = int(state.get("step_in_epoch", 0))
    return ship(history, net, opts, described, name, command,
                progress_done={"epochs_done": done, "steps_into_next_epoch": step_in_epoch})


def ship(history: dict, net, opts: DRUNetOptions, described: dict, name: str | os.PathLike, command: str = "",
         progress_done: dict | None = None) -> Path:
    """Ship ``net`` as ``weights/<name>.pt`` (or to ``name`` if it ends in ``.pt``) + ``.json``.

    Through :func:`restorekit.weights.export`: ``trained_for`` from the run's
    sampler (:func:`training_sampler`), the machine, precision, steps and
    seconds; the sidecar also says whether the run finished.
    """
    from restorekit.weights import export

    h = history
    steps = len(h["epoch_loss"]) * h["steps_per_epoch"]
    if progress_done is not None:
        steps = progress_done["epochs_done"] * h["steps_per_epoch"] + progress_done["steps_into_next_epoch"]
    finished = len(h["epoch_loss"]) >= opts.epochs
    meta = {
        "restorer": "drunet",
        **{k: v for k, v in described.items() if k != "precision"},
        "channels": 3,
        "noise_sigma_range": list(opts.sigma_range),
        "noise_level_input": "sigma map channel (the true sigma in training)",
        "sigma_scale": "[0, 1] (25/255 = 0.098)",
        "epochs": len(h["epoch_loss"]),
        "epochs_planned": opts.epochs,
        "finished": finished,
        "status": "finished" if finished else (f"not finished: {steps} of {opts.epochs * h['steps_per_epoch']} "
                                               "planned steps; resume with --resume"),
        "optimizer": f"Adam lr {opts.lr}, /10 after {opts.lr_drop_at:.0%} of the planned steps, "
                     f"batch {opts.batch_size}",
        "seed": opts.seed,
        "val_psnr_setting": f"{VAL_HELD_OUT} held-out images, central {opts.val_crop}x{opts.val_crop}, "
                            f"sigma {opts.val_sigma} given to the model",
        "options": _jsonable(asdict(opts)),
    }
    if opts.pnp_share:
        meta["trained_through_pnp"] = (f"{opts.pnp_share:.0%} of the batches masked ({opts.pnp_mask}) and restored by "
                                       "pnp's inpainting solver (ADMM, its default schedule, ensemble and average), "
                                       "the loss on pnp's result, the gradient through its last "
                                       f"{_backprop_iterations()} iterations; the rest Gaussian denoising")
    path = Path(name) if str(name).endswith(".pt") else WEIGHTS_DIR / f"{name}.pt"
    return export(net, path, sampler=training_sampler(opts), history=h, metadata=meta,
                  precision=described.get("precision", "float32"), device=opts.device, threads=opts.threads,
                  steps=steps, command=command or f"restorekit train drunet --preset {opts.preset} --export {name}")


@trainer(DRUNetOptions, name="drunet")
def run_request(opts: DRUNetOptions, run: TrainRun):
    """``restorekit train drunet`` and ``python -m restorekit_plugins.drunet.train``: the run's ``FitResult``."""
    return train_drunet(opts, run.out, resume=run.resume, export=run.export_path(WEIGHTS_DIR, opts.preset) or "",
                        progress=run.progress, command=run.command)


if __name__ == "__main__":
    sys.exit(run_request.main())
