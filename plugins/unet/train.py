"""Re-train the shipped UNet deblurrers from ``../shared/data``.

Two variants share the architecture and this script:

``deblur``  input: a colour crop blurred (circularly) by the course kernel plus
            noise with sigma drawn uniformly in [0, 0.02]; target: the sharp crop.
``wiener``  input: the Wiener estimate (SNR 100) of that same blurred noisy crop;
            target: the sharp crop. It is the second step of ``wiener+unet``.

Training crops come from ``CBSD432`` (random 64x64 crops with flips, drawn
afresh at every step, so a run is described by its number of steps); its last
8 images (sorted by name) are held apart for the validation PSNR, measured at
sigma 0.01 on their central 128x128 crops with fixed noise. Adam, lr 1e-3
(the course's default), batch 32, lr divided by 10 for the last 20 % of steps.

Run (each variant takes about 30-45 minutes on one CPU core)::

    python -m restorekit_plugins.unet.train --variant wiener --out runs/unet-wiener
    python -m restorekit_plugins.unet.train --variant deblur --out runs/unet-deblur

then ship the result with ``--export`` (see ``--help``). A run is seeded
and resumable (``--resume``): a checkpoint is written atomically every
``--eval-every`` steps, so an interrupted run loses at most that much work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

VARIANTS = {"deblur": None, "wiener": 100.0}  # variant -> Wiener SNR of its input (None: raw blurred input)
WEIGHT_NAMES = {"deblur": "unet-deblur", "wiener": "unet-wiener"}


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and shipped metadata)."""

    variant: str = "wiener"
    data: str = ""
    steps: int = 6000
    batch_size: int = 32
    patch: int = 64
    lr: float = 1e-3
    lr_drop_at: float = 0.8
    sigma_min: float = 0.0
    sigma_max: float = 0.02
    val_images: int = 8
    val_size: int = 128
    val_sigma: float = 0.01
    eval_every: int = 500
    seed: int = 0
    base_channels: int = 16
    depth: int = 3
    threads: int = 1
    limit_images: int = 0
    extra: dict = field(default_factory=dict)


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_figure(fig, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def curves_figure(history: dict, path: Path, title: str) -> None:
    """Loss and validation PSNR against the step, written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(history["loss_steps"], history["loss"])
    a.set_yscale("log")
    a.set_xlabel("step")
    a.set_ylabel("training MSE (mean over the last interval)")
    b.plot(history["val_steps"], history["val_psnr"], marker="o")
    b.set_xlabel("step")
    b.set_ylabel("validation PSNR (dB)")
    fig.suptitle(title)
    fig.tight_layout()
    _atomic_figure(fig, path)
    plt.close(fig)


def psnr(x, ref) -> float:
    """Mean PSNR (dB, data range 1) over a batch, computed per image by scikit-image."""
    from skimage.metrics import peak_signal_noise_ratio

    vals = [
        peak_signal_noise_ratio(r.numpy().astype("float64"), a.numpy().astype("float64"), data_range=1.0)
        for a, r in zip(x.clamp(0, 1), ref)
    ]
    return float(sum(vals) / len(vals))


def train(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, progress: bool = True,
          images=None) -> dict:
    """Train a UNet variant; checkpoints, history and curves go to ``out``.

    ``images`` (a list of uint8 ``(3, H, W)`` tensors) replaces reading
    ``cfg.data`` (tests pass tiny synthetic images). Returns the history:
    ``loss`` (mean training MSE per interval) and ``val_psnr`` per evaluation.
    """
    import torch
    from tqdm import tqdm

    from .data import DeblurInputs, center_crops, course_kernel, data_root, load_folder, random_crops
    from .model import UNet

    if cfg.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {cfg.variant!r}")
    torch.set_num_threads(max(1, cfg.threads))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if images is None:
        folder = Path(cfg.data) if cfg.data else data_root() / "CBSD432"
        images = load_folder(folder, limit=cfg.limit_images or None)
    if len(images) <= cfg.val_images:
        raise ValueError(f"need more than {cfg.val_images} training images (the last ones validate), got {len(images)}")
    train_images, val_images = images[: -cfg.val_images], images[-cfg.val_images :]

    kernel = course_kernel()
    make_input = DeblurInputs(kernel, (cfg.sigma_min, cfg.sigma_max), VARIANTS[cfg.variant])
    val_clean = center_crops(val_images, cfg.val_size)
    val_in = make_input(val_clean, torch.Generator().manual_seed(12345), sigma=cfg.val_sigma)

    torch.manual_seed(cfg.seed)
    net = UNet(3, cfg.base_channels, cfg.depth)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    drop = max(1, int(cfg.steps * cfg.lr_drop_at))
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[drop], gamma=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = {"loss_steps": [], "loss": [], "val_steps": [], "val_psnr": [], "seconds": 0.0}
    step = 0
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        history, step = state["history"], state["step"]

    def evaluate() -> float:
        net.eval()
        with torch.no_grad():
            value = psnr(net.forward_padded(val_in), val_clean)
        net.train()
        return value

    if step == 0:
        history["val_steps"].append(0)
        history["val_psnr"].append(evaluate())
    bar = tqdm(total=cfg.steps, initial=step, desc=f"unet-{cfg.variant}", disable=not progress, mininterval=5)
    running, count, t0 = 0.0, 0, time.time()
    while step < cfg.steps:
        clean = random_crops(train_images, cfg.batch_size, cfg.patch, gen)
        noisy = make_input(clean, gen)
        loss = torch.nn.functional.mse_loss(net(noisy), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        running += loss.item()
        count += 1
        bar.update(1)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            history["loss_steps"].append(step)
            history["loss"].append(running / count)
            history["val_steps"].append(step)
            history["val_psnr"].append(evaluate())
            history["seconds"] += time.time() - t0
            running, count, t0 = 0.0, 0, time.time()
            bar.set_postfix(loss=f"{history['loss'][-1]:.2e}", val_psnr=f"{history['val_psnr'][-1]:.2f}")
            _atomic_torch_save(
                {"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "generator": gen.get_state(), "history": history, "step": step, "config": asdict(cfg),
                 "arch": net.arch()},
                ckpt_path,
            )
            (out / "history.json").write_text(json.dumps(history, indent=1))
            curves_figure(history, out / "curves.png", f"UNet ({cfg.variant}) on CBSD432 crops")
    bar.close()
    return history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restorekit_plugins.unet.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="wiener")
    parser.add_argument("--out", required=True, help="run folder: checkpoint.pt, history.json, curves.png")
    parser.add_argument("--data", default="", help="training image folder (default ../shared/data/CBSD432)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    defaults = TrainConfig()
    for name in ("steps", "batch_size", "patch", "eval_every", "seed", "base_channels", "depth", "threads",
                 "limit_images", "val_images"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("lr", "sigma_min", "sigma_max"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    args = parser.parse_args(argv)
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__})
    history = train(cfg, args.out, resume=args.resume)
    print(f"final validation PSNR {history['val_psnr'][-1]:.2f} dB after {cfg.steps} steps "
          f"({history['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
