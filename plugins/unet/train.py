"""Re-train the shipped UNet deblurrers from ``../shared/data``.

Two variants share the architecture and this script:

``deblur``  input: a colour crop blurred (circularly) by the course kernel plus
            noise with sigma drawn uniformly in [0, 0.02]; target: the sharp crop.
``wiener``  input: the Wiener estimate (SNR 100) of that same blurred noisy crop;
            target: the sharp crop. It is the second step of ``wiener+unet``.

Training uses restorekit's engine (:mod:`restorekit.training`): random 64x64
crops of ``CBSD432`` with flips and 90-degree turns (``RandomCrops``; an
"epoch" is ``--crops-per-epoch`` crops, drawn afresh every epoch), degraded on
the fly by :class:`~restorekit_plugins.unet.data.DeblurInputs`; Adam, lr 1e-3
(the course's default), batch 32, lr divided by 10 for the last 20 % of the
run; validation PSNR after every epoch on the central 128x128 crops of the
last 8 CBSD432 images (sorted by name; held apart from training) at noise
sigma 0.01; checkpoints written atomically (``--resume`` continues); under
``torchrun`` the same command trains with DDP.

The shipped weights were made by (CPU, one thread on a shared 2-core machine:
47 and 36 minutes; validation PSNR was still rising, so a longer run, e.g.
``--epochs 30`` on a GPU, should do better)::

    python -m restorekit_plugins.unet.train --variant wiener --epochs 7 --out runs/unet-wiener --export
    python -m restorekit_plugins.unet.train --variant deblur --epochs 4 --out runs/unet-deblur --export

``--export`` writes ``weights/unet-<variant>.pt`` and its ``.json``
(metadata and SHA-256) once the run is complete.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

VARIANTS = {"deblur": None, "wiener": 100.0}  # variant -> Wiener SNR of its input (None: the raw blurred input)
WEIGHT_NAMES = {"deblur": "unet-deblur", "wiener": "unet-wiener"}


@dataclass
class UNetTrainConfig:
    """Everything that defines a UNet training run (kept in its checkpoint and the shipped metadata)."""

    variant: str = "wiener"
    data: str = ""
    epochs: int = 16
    crops_per_epoch: int = 16000
    batch_size: int = 32
    patch: int = 64
    lr: float = 1e-3
    lr_drop_at: float = 0.8
    sigma_min: float = 0.0
    sigma_max: float = 0.02
    val_images: int = 8
    val_size: int = 128
    val_sigma: float = 0.01
    seed: int = 0
    base_channels: int = 16
    depth: int = 3
    threads: int = 1
    limit_images: int = 0
    device: str = "cpu"


def train(cfg: UNetTrainConfig, out: str | os.PathLike | None, resume: bool = False, progress: bool = True,
          images=None):
    """Train a UNet variant with :func:`restorekit.training.fit`; returns its ``FitResult``.

    ``images`` (a list of ``(3, H, W)`` float tensors in [0, 1]) replaces
    reading ``cfg.data`` (tests pass tiny synthetic images).
    """
    import torch

    from restorekit.errors import InputError
    from restorekit.training import DegradedPairs, RandomCrops, TrainConfig, fit, fixed_pairs, load_images, seed_everything

    from .data import DeblurInputs, course_kernel, data_root
    from .model import UNet

    if cfg.variant not in VARIANTS:
        raise InputError(f"variant must be one of {sorted(VARIANTS)}, got {cfg.variant!r}")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if images is None:
        folder = Path(cfg.data) if cfg.data else data_root() / "CBSD432"
        images = load_images(folder, limit=cfg.limit_images or None, progress=progress)
    if len(images) <= cfg.val_images:
        raise InputError(f"need more than {cfg.val_images} training images (the last {cfg.val_images} validate), "
                         f"got {len(images)}; add images or lower --val-images")
    if any(im.shape[0] != 3 for im in images):
        raise InputError("the UNet deblurrers are trained on colour (3-channel) images; use a folder of RGB images")
    train_images, val_images = images[: -cfg.val_images], images[-cfg.val_images :]

    kernel = course_kernel()
    snr = VARIANTS[cfg.variant]
    pairs = DegradedPairs(RandomCrops(train_images, size=cfg.patch, length=cfg.crops_per_epoch),
                          DeblurInputs(kernel, (cfg.sigma_min, cfg.sigma_max), snr), seed=cfg.seed)
    val = fixed_pairs(val_images, DeblurInputs(kernel, (cfg.val_sigma, cfg.val_sigma), snr), seed=12345,
                      crop=cfg.val_size)
    seed_everything(cfg.seed)
    net = UNet(3, cfg.base_channels, cfg.depth)
    fit_cfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, lr_drop_at=cfg.lr_drop_at,
                          seed=cfg.seed, log_every=50, checkpoint_every=250, progress=progress,
                          device=cfg.device)
    return fit(net, pairs, fit_cfg, val_pairs=val, out=out, resume=resume, title=f"unet-{cfg.variant}",
               extra_state={"arch": net.arch(), "unet_config": asdict(cfg)})


def export(out: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Ship the finished run in ``out``: ``weights/unet-<variant>.pt`` + ``.json`` (metadata, SHA-256).

    ``dest`` overrides the destination ``.pt`` path (tests write elsewhere).
    """
    from restorekit.errors import InputError
    from restorekit.training import load_checkpoint
    from restorekit.weights import save_model

    from .data import course_kernel
    from .restorer import WEIGHTS_DIR

    state = load_checkpoint(Path(out) / "checkpoint.pt")
    cfg = UNetTrainConfig(**state["extra"]["unet_config"])
    history = state["history"]
    if int(state["epoch"]) < cfg.epochs or int(state["step_in_epoch"]) != 0:
        raise InputError(f"the run in {out} stopped in epoch {int(state['epoch']) + 1} of {cfg.epochs}; "
                         "finish it with --resume before --export")
    kernel = course_kernel()
    snr = VARIANTS[cfg.variant]
    steps = history["steps_per_epoch"] * cfg.epochs
    n_train = (cfg.limit_images or 432) - cfg.val_images
    metadata = {
        "restorer": "unet" if cfg.variant == "deblur" else "unet-wiener",
        "input": ("a blurred noisy colour image" if snr is None
                  else f"the Wiener estimate (SNR {snr:g}, reg 1/SNR) of a blurred noisy colour image")
                 + ", clipped to [0, 1]",
        "training_data": f"CBSD432 (../shared/data/CBSD432): the first {n_train} images sorted by name; "
                         f"the last {cfg.val_images} held apart for validation",
        "crops": f"random {cfg.patch}x{cfg.patch} crops with random flips and 90-degree turns, "
                 f"{cfg.crops_per_epoch} fresh crops per epoch",
        "blur": "circular convolution (restorekit.degrade.Blur) with the course kernel "
                "(restorekit.kernels.load_kernel('course'): MNIST train digit 0 resized to 7x7, sum 1)",
        "kernel_sha256": hashlib.sha256(kernel.numpy().tobytes()).hexdigest(),
        "noise_sigma_range": [cfg.sigma_min, cfg.sigma_max],
        "noise_scale": "[0, 1]",
        "optimizer": f"Adam lr {cfg.lr:g}, divided by 10 after {cfg.lr_drop_at:.0%} of the steps; MSE loss",
        "epochs": cfg.epochs,
        "steps": steps,
        "batch_size": cfg.batch_size,
        "val_psnr_db": round(history["val_psnr"][-1], 3),
        "val_psnr_per_epoch": [round(v, 3) for v in history["val_psnr"]],
        "val_protocol": f"central {cfg.val_size}x{cfg.val_size} crops of the {cfg.val_images} held-apart images, "
                        f"noise sigma {cfg.val_sigma}, fixed noise",
        "train_seconds": round(history["seconds"], 1),
        "hardware": f"CPU, {cfg.threads} thread(s), on a 2-core machine shared with other jobs",
        "seed": cfg.seed,
        "command": f"python -m restorekit_plugins.unet.train --variant {cfg.variant} --epochs {cfg.epochs} "
                   f"--crops-per-epoch {cfg.crops_per_epoch} --out runs/unet-{cfg.variant} --export",
        "config": asdict(cfg),
    }
    path = Path(dest) if dest else WEIGHTS_DIR / f"{WEIGHT_NAMES[cfg.variant]}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_model(state["model"], path, arch=state["extra"]["arch"], metadata=metadata)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The training options (shared by this script and ``restorekit train unet``)."""
    defaults = UNetTrainConfig()
    parser.add_argument("--variant", choices=sorted(VARIANTS), default=defaults.variant,
                        help="deblur: blurred noisy input; wiener: Wiener (SNR 100) estimate as input")
    parser.add_argument("--data", default="", help="training image folder (default ../shared/data/CBSD432)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    for name in ("epochs", "crops_per_epoch", "batch_size", "patch", "seed", "base_channels", "depth", "threads",
                 "limit_images", "val_images"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("lr", "sigma_min", "sigma_max"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))


def config_from_args(args: argparse.Namespace) -> UNetTrainConfig:
    return UNetTrainConfig(**{k: v for k, v in vars(args).items() if k in UNetTrainConfig.__dataclass_fields__})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restorekit_plugins.unet.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="run folder: checkpoint.pt, history.json, curves.png")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--export", action="store_true",
                        help="when the run is complete, write it as the shipped weights of its variant")
    add_arguments(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    result = train(cfg, args.out, resume=args.resume)
    if result.is_main:
        print(f"final validation PSNR {result.history['val_psnr'][-1]:.2f} dB after {cfg.epochs} epochs "
              f"({result.history['seconds'] / 60:.1f} min)")
        if args.export:
            print(f"wrote {export(args.out)}")
    return 0


def run_request(req) -> int:
    """``restorekit train unet``: the command's common options, then this script's own after ``--``.

    ``--sigma S`` fixes the noise, ``--sigma-range LO HI`` draws it; ``--limit``
    reads only the first images; ``--export NAME_OR_PATH`` ships the finished
    run (a name goes to this plugin's ``weights/NAME.pt``). Example::

        restorekit train unet --epochs 8 --out runs/unet-wiener --export unet-wiener -- --variant wiener
    """
    from .restorer import WEIGHTS_DIR

    parser = argparse.ArgumentParser(prog="restorekit train unet --")
    add_arguments(parser)
    args = parser.parse_args(list(req.extra))
    for field_name, value in (("data", req.data), ("epochs", req.epochs), ("batch_size", req.batch_size),
                              ("lr", req.lr), ("patch", req.patch), ("seed", req.seed),
                              ("limit_images", req.limit), ("threads", req.threads), ("device", req.device)):
        if value is not None:
            setattr(args, field_name, value)
    if req.sigma is not None:
        args.sigma_min = args.sigma_max = req.sigma
    if req.sigma_range is not None:
        args.sigma_min, args.sigma_max = req.sigma_range
    cfg = config_from_args(args)
    out = req.out or f"runs/unet-{cfg.variant}"
    result = train(cfg, out, resume=req.resume, progress=req.progress)
    if result.is_main:
        h = result.history
        print(f"done: {cfg.epochs} epochs, validation PSNR {h['val_psnr'][-1]:.2f} dB, {h['seconds']:.0f} s; "
              f"run folder {out}")
        if req.export:
            dest = Path(req.export) if req.export.endswith(".pt") else WEIGHTS_DIR / f"{req.export}.pt"
            print(f"wrote {export(out, dest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
