"""Re-train the shipped UNet deblurrers from ``../shared/data``.

Two variants share the architecture and this script:

``deblur``  input: a colour crop blurred (circularly) by the course kernel plus
            noise with sigma drawn uniformly in [0, 0.02]; target: the sharp crop.
``wiener``  input: the Wiener estimate (SNR 100) of that same blurred noisy crop;
            target: the sharp crop. It is the second step of ``wiener+unet``.

Training uses restorekit's engine (:mod:`restorekit.training`): random 64x64
crops of ``CBSD432`` with flips and 90-degree turns (``RandomCrops``; an
"epoch" is ``--crops-per-epoch`` crops, drawn afresh every epoch), each batch
degraded by a :class:`restorekit.degrade.DegradationSampler` (the course
kernel's circular blur, then noise of a sigma drawn per crop), and the loss
taken on the restorer's own forward pass (``unet``), or on the ``wiener+unet``
pipeline's (the ``wiener`` restorer at SNR 100, then ``unet-wiener``); Adam, lr 1e-3
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
(metadata, ``trained_for`` from the sampler, SHA-256) once the run is complete.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from restorekit.errors import InputError
from restorekit.training.options import TrainOptions, TrainRun, check_sigma_option, option, trainer

VARIANTS = {"deblur": None, "wiener": 100.0}  # variant -> Wiener SNR of its input (None: the raw blurred input)
WEIGHT_NAMES = {"deblur": "unet-deblur", "wiener": "unet-wiener"}


@dataclass
class UNetTrainConfig(TrainOptions):
    """Everything that defines a UNet training run (kept in its checkpoint and the shipped metadata); its command line."""

    variant: str = option("wiener", "deblur: blurred noisy input; wiener: the Wiener (SNR 100) estimate as input",
                          choices=tuple(VARIANTS))
    data: str = option("", "training image folder (by default CBSD432 under the data root)")
    epochs: int = option(16, "passes of --crops-per-epoch crops", minimum=1)
    crops_per_epoch: int = option(16000, "random crops per epoch (drawn afresh every epoch)", minimum=1)
    batch_size: int = option(32, "samples per step and per process", minimum=1)
    patch: int = option(64, "crop side in pixels", minimum=1)
    lr: float = option(1e-3, "Adam learning rate", above=0)
    lr_drop_at: float = option(0.8, "fraction of the run after which the rate is divided by 10", above=0, below=1)
    sigma_min: float = option(0.0, "lowest noise sigma of the training inputs, [0, 1] scale", check=check_sigma_option)
    sigma_max: float = option(0.02, "highest noise sigma of the training inputs, [0, 1] scale",
                              check=check_sigma_option)
    val_images: int = option(8, "last images of the folder held apart for validation", minimum=1)
    val_size: int = option(128, "side of the central validation crops", minimum=1)
    val_sigma: float = option(0.01, "noise sigma of the validation inputs", check=check_sigma_option)
    base_channels: int = option(16, "channels of the first level (doubled at each level down)", minimum=1)
    depth: int = option(3, "levels of the UNet", minimum=1)
    threads: int = option(1, "torch CPU threads per process (0: torch's default)", minimum=0)
    limit_images: int = option(0, "read only the first N images (0: all)", flags=("--limit-images", "--limit"),
                               minimum=0)

    run_folder: ClassVar[str] = "runs/unet-{variant}"

    def __post_init__(self) -> None:
        if self.sigma_min > self.sigma_max:
            raise InputError(f"--sigma-min ({self.sigma_min}) must not exceed --sigma-max ({self.sigma_max})")


def training_sampler(cfg: UNetTrainConfig, sigma: float | None = None):
    """The :class:`restorekit.degrade.DegradationSampler` of ``cfg``: the course kernel, sigma per crop.

    ``sigma`` fixes the level (validation).
    """
    from restorekit.degrade import DegradationSampler

    from .data import course_kernel

    noise = {"sigma": sigma} if sigma is not None else {"sigma_range": (cfg.sigma_min, cfg.sigma_max)}
    return DegradationSampler(kernels=course_kernel(), tasks=["deblur"], **noise)


class WienerThenUNet:
    """The ``wiener+unet`` pipeline as :func:`restorekit.training.fit` trains it: only the UNet learns.

    ``forward(y, degradation)`` is the ``wiener`` restorer (SNR ``snr``; no
    gradient) followed by the ``unet-wiener`` restorer's own forward, so the
    network learns from exactly what the pipeline's first step gives it.
    """

    def __init__(self, restorer, snr: float) -> None:
        import restorekit

        self.restorer = restorer
        self.first = restorekit.create("wiener", snr=snr)

    @property
    def net(self):
        return self.restorer.net

    def forward(self, y, degradation=None, net=None):
        import torch

        with torch.no_grad():
            x = self.first(y, degradation)
        return self.restorer.forward(x, degradation, net)


def train(cfg: UNetTrainConfig, out: str | os.PathLike | None, resume: bool = False, progress: bool = True,
          images=None):
    """Train a UNet variant with :func:`restorekit.training.fit`; returns its ``FitResult``.

    ``images`` (a list of ``(3, H, W)`` float tensors in [0, 1]) replaces
    reading ``cfg.data`` (tests pass tiny synthetic images).
    """
    from restorekit.training import CleanSamples, RandomCrops, TrainConfig, fit, fixed_pairs, load_images, seed_everything

    from .data import data_root
    from .model import UNet
    from .restorer import UNetDeblur, UNetWiener

    if cfg.variant not in VARIANTS:
        raise InputError(f"variant must be one of {sorted(VARIANTS)}, got {cfg.variant!r}")
    if images is None:
        folder = Path(cfg.data) if cfg.data else data_root() / "CBSD432"
        images = load_images(folder, limit=cfg.limit_images or None, progress=progress)
    if len(images) <= cfg.val_images:
        raise InputError(f"need more than {cfg.val_images} training images (the last {cfg.val_images} validate), "
                         f"got {len(images)}; add images or lower --val-images")
    if any(im.shape[0] != 3 for im in images):
        raise InputError("the UNet deblurrers are trained on colour (3-channel) images; use a folder of RGB images")
    train_images, val_images = images[: -cfg.val_images], images[-cfg.val_images :]

    snr = VARIANTS[cfg.variant]
    samples = CleanSamples(RandomCrops(train_images, size=cfg.patch, length=cfg.crops_per_epoch), seed=cfg.seed)
    val = fixed_pairs(val_images, training_sampler(cfg, cfg.val_sigma), seed=12345, crop=cfg.val_size)
    seed_everything(cfg.seed)
    net = UNet(3, cfg.base_channels, cfg.depth)
    model = UNetDeblur.from_network(net) if snr is None else WienerThenUNet(UNetWiener.from_network(net), snr)
    fit_cfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, lr_drop_at=cfg.lr_drop_at,
                          seed=cfg.seed, log_every=50, checkpoint_every=250, progress=progress,
                          device=cfg.device)
    return fit(model, samples, fit_cfg, val_pairs=val, out=out, resume=resume, title=f"unet-{cfg.variant}",
               sampler=training_sampler(cfg), extra_state={"arch": net.arch(), "unet_config": asdict(cfg)})


def export(out: str | os.PathLike, dest: str | os.PathLike | None = None, command: str = "") -> Path:
    """Ship the finished run in ``out``: ``weights/unet-<variant>.pt`` + ``.json`` (metadata, SHA-256).

    Through :func:`restorekit.weights.export`, with ``trained_for`` from the
    run's sampler (the course kernel's SHA-256, the noise range), so a
    retrained model keeps its guard. ``dest`` overrides the destination
    ``.pt`` path (tests write elsewhere).
    """
    from restorekit import weights
    from restorekit.training import load_checkpoint

    from .restorer import WEIGHTS_DIR

    state = load_checkpoint(Path(out) / "checkpoint.pt")
    cfg = UNetTrainConfig(**state["extra"]["unet_config"])
    history = state["history"]
    if int(state["epoch"]) < cfg.epochs or int(state["step_in_epoch"]) != 0:
        raise InputError(f"the run in {out} stopped in epoch {int(state['epoch']) + 1} of {cfg.epochs}; "
                         "finish it with --resume before --export")
    snr = VARIANTS[cfg.variant]
    sampler = training_sampler(cfg)
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
        "kernel_sha256": sampler.trained_for["kernel_sha256"],
        "noise_sigma_range": [cfg.sigma_min, cfg.sigma_max],
        "noise_scale": "[0, 1]",
        "optimizer": f"Adam lr {cfg.lr:g}, divided by 10 after {cfg.lr_drop_at:.0%} of the steps; MSE loss",
        "batch_size": cfg.batch_size,
        "val_psnr_per_epoch": [round(v, 3) for v in history["val_psnr"]],
        "val_protocol": f"central {cfg.val_size}x{cfg.val_size} crops of the {cfg.val_images} held-apart images, "
                        f"noise sigma {cfg.val_sigma}, fixed noise",
        "seed": cfg.seed,
        "config": asdict(cfg),
    }
    path = Path(dest) if dest else WEIGHTS_DIR / f"{WEIGHT_NAMES[cfg.variant]}.pt"
    return weights.export(state["model"], path, sampler=sampler, history=history, arch=state["extra"]["arch"],
                          metadata=metadata, device=cfg.device, threads=cfg.threads,
                          command=command or f"python -m restorekit_plugins.unet.train --variant {cfg.variant} "
                                             f"--epochs {cfg.epochs} --crops-per-epoch {cfg.crops_per_epoch} "
                                             f"--out runs/unet-{cfg.variant} --export")


@trainer(UNetTrainConfig, name="unet")
def run_request(cfg: UNetTrainConfig, run: TrainRun) -> int:
    """``restorekit train unet`` and ``python -m restorekit_plugins.unet.train``.

    ``--export`` alone ships the finished run as its variant's weights
    (``weights/unet-<variant>.pt``); ``--export NAME`` or ``--export PATH.pt``
    elsewhere. Example::

        restorekit train unet --variant wiener --epochs 8 --out runs/unet-wiener --export
    """
    from .restorer import WEIGHTS_DIR

    result = train(cfg, run.out, resume=run.resume, progress=run.progress)
    if result.is_main:
        print(f"done: {result.summary()}; run folder {run.out}")
        dest = run.export_path(WEIGHTS_DIR, WEIGHT_NAMES[cfg.variant])
        if dest is not None:
            print(f"wrote {export(run.out, dest, run.command)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_request.main())
