"""Re-train the shipped MLP inpainter from the MNIST digits in ``../shared/data/MNIST``.

As in the course: ``FullyConnectedNet(784, 784, n=32)``, inputs normalised by
MNIST's mean (0.1307) and std (0.3081) with the lower half set to 0, the
target the whole normalised digit, loss the mean squared error, batch 32,
and plain gradient descent written by hand (``p -= lr * p.grad``, lr 2) as an
optimizer (:class:`GradientDescent`) that restorekit's one training loop,
:func:`restorekit.training.fit`, runs: seeded sample order, atomic
checkpoints (``--resume``), ``history.json`` and ``curves.png``.

The MNIST copy here holds 4,000 train digits (the course used 60,000 for 3
epochs, 5,625 updates). The last 400 train digits are held apart for the
validation PSNR of the lower half; the 1,000 ``t10k`` digits are never seen
in training (they are the benchmark's). The default 50 epochs of the 3,600
others give 5,650 updates of batch 32 (the last batch of an epoch takes the
16 digits left over), about the course's 5,625 (3 epochs of 60,000). Run::

    python -m restorekit_plugins.mlp_inpaint.train --out runs/mlp-inpaint --export

It takes about a minute on one CPU core; ``--export`` writes the shipped
weights (``weights/mlp-inpaint.pt`` and its ``.json``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from restorekit.errors import InputError
from restorekit.training.options import TrainOptions, TrainRun, option, trainer


@dataclass
class TrainConfig(TrainOptions):
    """What defines a run (stored with the checkpoint and the shipped metadata); its command line."""

    mnist_root: str = option("", "folder holding MNIST/raw (by default ../shared/data)",
                             flags=("--mnist-root", "--data"))
    epochs: int = option(50, "passes over the training digits", minimum=1)
    batch_size: int = option(32, "digits per update", minimum=1)
    lr: float = option(2.0, "step of the hand-written gradient descent", above=0)
    val_digits: int = option(400, "last train digits held apart for the validation PSNR", minimum=1)
    backend: str = option("auto", "Linear/ReLU implementation", choices=("auto", "python", "compiled"))
    limit: int = option(0, "use only the first N train digits (0: all)", minimum=0)
    threads: int = option(1, "torch CPU threads (0: torch's default)", minimum=0)


#: What the model is trained for (its sidecar's ``metadata.trained_for``, read by the restorer's guard).
TRAINED_FOR = {"kernel_sha256": None, "noise_sigma_range": [0.0, 0.0], "tasks": ["inpaint"]}


def data_root() -> Path:
    env = os.environ.get("RESTOREKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def load_mnist(root: str | os.PathLike | None = None, train: bool = True) -> torch.Tensor:
    """MNIST digits as float ``(N, 1, 28, 28)`` in [0, 1] from a torchvision root (no download).

    ``root`` is the folder holding ``MNIST/raw`` (default: ``../shared/data``
    or ``$RESTOREKIT_DATA``).
    """
    from torchvision.datasets import MNIST

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


class GradientDescent(torch.optim.Optimizer):
    """The course's update, written by hand: ``p <- p - lr * grad`` (no momentum, no state).

    Parameters
    ----------
    params : iterable of parameters
    lr : float
        The step (the course's 2).
    """

    def __init__(self, params, lr: float) -> None:
        if not lr > 0:
            raise InputError(f"the gradient-descent step must be positive, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p -= group["lr"] * p.grad
        return loss


def lower_half_psnr(output: torch.Tensor, clean: torch.Tensor) -> float:
    """Validation metric of :func:`fit`: mean :func:`half_psnr` of the network's (normalised) output."""
    from .model import to_image

    return float(half_psnr(to_image(output), clean).mean())


def train(cfg: TrainConfig, out: str | os.PathLike | None = None, digits: torch.Tensor | None = None,
          resume: bool = False, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """Train the inpainter with :func:`restorekit.training.fit`; returns ``(net, history)``.

    ``digits`` (float ``(N, 1, 28, 28)``) replaces reading MNIST (tests pass
    a few). With ``out`` a checkpoint is written atomically after every
    epoch (``resume`` continues from it), with ``history.json`` and
    ``curves.png``. ``history`` is :func:`fit`'s: ``epoch_loss`` (mean
    squared error in normalised units) and ``val_psnr`` (the mean PSNR of the
    lower half of the validation digits) per epoch.
    """
    from torch.utils.data import TensorDataset

    from restorekit.training import TrainConfig as LoopConfig
    from restorekit.training import fit

    from .model import build_net, network_input, network_target

    if digits is None:
        digits = load_mnist(cfg.mnist_root or None, train=True)
    if cfg.limit:
        digits = digits[: cfg.limit]
    if len(digits) <= cfg.val_digits:
        raise InputError(f"need more than {cfg.val_digits} digits (the last ones validate), got {len(digits)}; "
                         "lower --val-digits or raise --limit")
    train_digits, val_digits = digits[: -cfg.val_digits], digits[-cfg.val_digits :]
    pairs = TensorDataset(network_input(train_digits), network_target(train_digits))
    val = [(network_input(val_digits), val_digits)]

    torch.manual_seed(cfg.seed)
    net = build_net(cfg.backend)
    loop = LoopConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, drop_last=False,
                      device=cfg.device, progress=progress, log_every=25)
    result = fit(net, pairs, loop, val_pairs=val, out=out, resume=resume, title="mlp-inpaint",
                 optimizer=lambda params: GradientDescent(params, lr=cfg.lr), val_metric=lower_half_psnr,
                 extra_state={"arch": {"din": 784, "dout": 784, "n": 32}, "config": asdict(cfg)})
    return result.model, result.history


@trainer(TrainConfig, name="mlp-inpaint")
def run_request(cfg: TrainConfig, run: TrainRun) -> int:
    """``restorekit train mlp-inpaint`` and ``python -m restorekit_plugins.mlp_inpaint.train``.

    ``--data`` (or ``--mnist-root``) is the folder holding ``MNIST/raw``;
    ``--export`` alone writes the shipped ``weights/mlp-inpaint.pt``,
    ``--export NAME`` or ``--export PATH.pt`` elsewhere. Example::

        restorekit train mlp-inpaint --epochs 50 --out runs/mlp-inpaint --export
    """
    from .restorer import SHIPPED, WEIGHTS_DIR

    net, history = train(cfg, run.out, resume=run.resume, progress=run.progress)
    print(f"done: {cfg.epochs} epochs, validation PSNR of the lower half {history['val_psnr'][-1]:.2f} dB")
    dest = run.export_path(WEIGHTS_DIR, SHIPPED)
    if dest is not None:
        print(f"wrote {ship(net, cfg, history, dest, run.command)}")
    return 0


def ship(net, cfg: TrainConfig, history: dict, path: str | os.PathLike, command: str = "") -> Path:
    """Write the weights (``path``, a ``.pt``) and their sidecar through :func:`restorekit.weights.export`.

    ``trained_for`` is :data:`TRAINED_FOR` (the lower half missing, no noise);
    the machine, precision, steps and seconds come from the run's ``history``.
    """
    from restorekit.weights import export

    meta = {
        "restorer": "mlp-inpaint",
        "training_data": "MNIST train digits (../shared/data/MNIST: 4,000 digits of classes 0-7; the last "
                         f"{cfg.val_digits} held apart for validation; the 1,000 t10k digits (classes 8, 9) never seen)",
        "task": "inpaint the lower half (rows 14-27) of 28x28 grayscale digits",
        "normalisation": {"mean": 0.1307, "std": 0.3081},
        "optimizer": f"plain gradient descent written by hand, lr {cfg.lr}, batch {cfg.batch_size}",
        "updates": cfg.epochs * -(-((cfg.limit or 4000) - cfg.val_digits) // cfg.batch_size),
        "seed": cfg.seed,
        "val_half_psnr_db": round(history["val_psnr"][-1], 3),
        "config": asdict(cfg),
    }
    return export(net, path, trained_for=TRAINED_FOR, history=history, arch={"din": 784, "dout": 784, "n": 32},
                  metadata=meta, device=cfg.device, threads=cfg.threads,
                  command=command or "python -m restorekit_plugins.mlp_inpaint.train --out runs/mlp-inpaint --export")


if __name__ == "__main__":
    sys.exit(run_request.main())
