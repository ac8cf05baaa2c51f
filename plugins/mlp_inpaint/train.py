"""Re-train the shipped MLP inpainter from the MNIST digits in ``../shared/data/MNIST``.

As in the course: ``FullyConnectedNet(784, 784, n=32)``, inputs normalised by
MNIST's mean (0.1307) and std (0.3081) with the lower half set to 0, the
target the whole normalised digit, loss the mean squared error, batch 32,
and plain gradient descent written by hand (``p -= lr * p.grad``, lr 2).

The MNIST copy here holds 4,000 train digits (the course used 60,000 for 3
epochs, 5,625 updates). The last 400 train digits are held apart for the
validation PSNR; the 1,000 ``t10k`` digits are never seen in training (they
are the benchmark's). The default 50 epochs of the 3,600 others give 5,650
updates of batch 32, about the course's 5,625 (3 epochs of 60,000). Run::

    python -m restorekit_plugins.mlp_inpaint.train --out runs/mlp-inpaint

It takes under a minute on one CPU core; ``--export`` writes the shipped
weights (``weights/mlp-inpaint.pt`` and its ``.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch


@dataclass
class TrainConfig:
    """What defines a run (stored with the checkpoint and the shipped metadata)."""

    mnist_root: str = ""
    epochs: int = 50
    batch_size: int = 32
    lr: float = 2.0
    val_digits: int = 400
    seed: int = 0
    backend: str = "auto"
    limit: int = 0


def data_root() -> Path:
    env = os.environ.get("RESTOREKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def load_mnist(root: str | os.PathLike | None = None, train: bool = True) -> torch.Tensor:
    """MNIST digits as float ``(N, 1, 28, 28)`` in [0, 1] from a torchvision root (no download).

    ``root`` is the folder holding ``MNIST/raw`` (default: ``../shared/data``
    or ``$RESTOREKIT_DATA``).
    """
    from torchvision.datasets import MNIST

    from restorekit.errors import InputError

    root = Path(root) if root else data_root()
    try:
        ds = MNIST(str(root), train=train, download=False)
    except RuntimeError as exc:
        raise InputError(
            f"no MNIST digits under {root} ({exc}); pass the folder that holds MNIST/raw "
            "(the IDX files) with --mnist-root"
        ) from None
    return (ds.data.float() / 255.0)[:, None]


def half_psnr(restored: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """PSNR (dB, data range 1) of the lower half of each digit, restored clipped to [0, 1]; shape ``(N,)``."""
    h = truth.shape[-2] // 2
    err = (restored.clamp(0, 1)[..., h:, :] - truth[..., h:, :]).double().square().flatten(1).mean(1)
    return 10 * torch.log10(1.0 / err.clamp_min(1e-12))


def gradient_descent_step(net: torch.nn.Module, lr: float) -> None:
    """The course's update, written by hand: ``p <- p - lr * grad``, then clear the gradients."""
    with torch.no_grad():
        for p in net.parameters():
            p -= lr * p.grad
            p.grad = None


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def train(cfg: TrainConfig, out: str | os.PathLike | None = None, digits: torch.Tensor | None = None,
          resume: bool = False, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """Train the inpainter; returns ``(net, history)``.

    ``digits`` (float ``(N, 1, 28, 28)``) replaces reading MNIST (tests pass
    a few). With ``out`` a checkpoint is written atomically after every
    epoch (``--resume`` continues from it), with ``history.json`` and
    ``curves.png``.
    """
    from tqdm import tqdm

    from .model import build_net, network_input, network_target, to_image

    if digits is None:
        digits = load_mnist(cfg.mnist_root or None, train=True)
    if cfg.limit:
        digits = digits[: cfg.limit]
    if len(digits) <= cfg.val_digits:
        raise ValueError(f"need more than {cfg.val_digits} digits (the last ones validate), got {len(digits)}")
    train_digits, val_digits = digits[: -cfg.val_digits], digits[-cfg.val_digits :]
    x_all, y_all = network_input(train_digits), network_target(train_digits)
    x_val = network_input(val_digits)

    torch.manual_seed(cfg.seed)
    net = build_net(cfg.backend)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = {"epoch": [], "loss": [], "val_half_psnr": [], "seconds": 0.0}
    start = 0
    ckpt = Path(out) / "checkpoint.pt" if out else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if resume and ckpt.exists():
            state = torch.load(ckpt, weights_only=False)
            net.load_state_dict(state["model"])
            gen.set_state(state["generator"])
            history, start = state["history"], state["epoch"]

    steps_per_epoch = math.ceil(len(x_all) / cfg.batch_size)
    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=start * steps_per_epoch, desc="mlp-inpaint",
               disable=not progress, mininterval=2)
    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        order = torch.randperm(len(x_all), generator=gen)
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = torch.mean((net(x_all[idx]) - y_all[idx]) ** 2)
            loss.backward()
            gradient_descent_step(net, cfg.lr)
            total += loss.item() * len(idx)
            bar.update(1)
        with torch.no_grad():
            val = float(half_psnr(to_image(net(x_val)), val_digits).mean())
        history["epoch"].append(epoch + 1)
        history["loss"].append(total / len(order))
        history["val_half_psnr"].append(val)
        history["seconds"] += time.time() - t0
        bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", val_psnr=f"{val:.2f}")
        if ckpt is not None:
            _atomic_save({"model": net.state_dict(), "generator": gen.get_state(), "history": history,
                          "epoch": epoch + 1, "config": asdict(cfg)}, ckpt)
    bar.close()
    if out:
        (Path(out) / "history.json").write_text(json.dumps(history, indent=1))
        _curves(history, Path(out) / "curves.png")
    return net, history


def _curves(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(history["epoch"], history["loss"])
    a.set_yscale("log")
    a.set_xlabel("epoch")
    a.set_ylabel("training MSE (normalised units)")
    b.plot(history["epoch"], history["val_half_psnr"])
    b.set_xlabel("epoch")
    b.set_ylabel("validation PSNR of the lower half (dB)")
    fig.suptitle("MLP inpainter, MNIST lower half")
    fig.tight_layout()
    tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restorekit_plugins.mlp_inpaint.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="run folder: checkpoint.pt, history.json, curves.png")
    parser.add_argument("--mnist-root", default="", help="folder holding MNIST/raw (default ../shared/data)")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--backend", choices=("auto", "python", "compiled"), default="auto")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--export", action="store_true", help="also write the shipped weights of this plugin")
    args = parser.parse_args(argv)
    cfg = TrainConfig(mnist_root=args.mnist_root, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      seed=args.seed, backend=args.backend)
    torch.set_num_threads(1)
    net, history = train(cfg, args.out, resume=args.resume)
    print(f"validation PSNR of the lower half: {history['val_half_psnr'][-1]:.2f} dB")
    if args.export:
        from .restorer import export_weights

        path = export_weights(net, cfg, history)
        print(f"wrote {path}")
    return 0


def run_request(req) -> int:
    """``restorekit train mlp-inpaint``: ``--data`` is the folder holding ``MNIST/raw``.

    Noise and patch options do not apply (the task is fixed: the lower half
    of 28x28 digits); ``--export NAME_OR_PATH`` ships the result.
    Example::

        restorekit train mlp-inpaint --epochs 50 --out runs/mlp-inpaint --export mlp-inpaint
    """
    from restorekit.errors import InputError

    from .restorer import WEIGHTS_DIR, export_weights

    unused = [flag for flag, value in (("--sigma", req.sigma), ("--sigma-range", req.sigma_range),
                                       ("--patch", req.patch)) if value is not None]
    if unused:
        raise InputError(f"mlp-inpaint trains on MNIST digits with the lower half masked; {', '.join(unused)} "
                         "does not apply: leave it out")
    parser = argparse.ArgumentParser(prog="restorekit train mlp-inpaint --")
    parser.add_argument("--backend", choices=("auto", "python", "compiled"), default="auto")
    parser.add_argument("--val-digits", type=int, default=TrainConfig.val_digits)
    extra = parser.parse_args(list(req.extra))
    cfg = TrainConfig(mnist_root=req.data or "", epochs=req.epochs or TrainConfig.epochs,
                      batch_size=req.batch_size or TrainConfig.batch_size, lr=req.lr or TrainConfig.lr,
                      seed=req.seed if req.seed is not None else 0, backend=extra.backend,
                      val_digits=extra.val_digits, limit=req.limit or 0)
    torch.set_num_threads(req.threads or 1)
    out = req.out or "runs/mlp-inpaint"
    net, history = train(cfg, out, resume=req.resume, progress=req.progress)
    print(f"done: {cfg.epochs} epochs, validation PSNR of the lower half {history['val_half_psnr'][-1]:.2f} dB")
    if req.export:
        name = Path(req.export).stem
        dest_dir = Path(req.export).parent if req.export.endswith(".pt") else WEIGHTS_DIR
        print(f"wrote {export_weights(net, cfg, history, name=name, folder=dest_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
