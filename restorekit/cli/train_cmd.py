"""``restorekit train PLUGIN``: train a plugin's learned restorer.

The command is thin: it gathers the options every trainer shares and runs the
trainer that the plugin registered (see :mod:`restorekit.training.trainers`).
"""

from __future__ import annotations

import argparse

HELP = "train a plugin's learned restorer (e.g. restorekit train dncnn --data DIR)"
DESCRIPTION = """Train a plugin's learned restorer on a folder of images.

The plugin decides what training means; the options below are common to all
trainers and default to the plugin's own settings. Options that only one
plugin knows follow '--' (options this command does not know are passed
to the plugin's trainer as well). Sigmas are on the [0, 1] scale (25/255 = 0.098).
Checkpoints are written atomically to --out; --resume continues from them.

Examples:
  restorekit train --list
  restorekit train dncnn --data ../shared/data/CBSD432 --epochs 2 --sigma 0.1 --out runs/dncnn
  restorekit train dncnn --out runs/c32 -- --preset course --hidden-channels 32 --no-bias
  torchrun --nproc-per-node 2 -m restorekit.cli.main train dncnn --data DIR --out runs/ddp
"""


def _sigma_range(text: str) -> tuple[float, float]:
    parts = text.replace(":", ",").split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (e.g. 0,0.2), got {text!r}")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers LOW,HIGH, got {text!r}") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"need 0 <= LOW <= HIGH, got {text!r}")
    return low, high


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plugin", nargs="?", help="the trainer (usually the restorer or plugin name), e.g. dncnn")
    parser.add_argument("--list", action="store_true", help="list the plugins that can be trained")
    _add_common(parser)
    # Everything after PLUGIN; split at '--' and parsed again in run() (argparse cannot mix both).
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="after '--': options of the plugin's trainer")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="training image folder (or a BSDS300 root holding images/train)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="samples per step and process (course: 32)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (course: 1e-3)")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("--sigma", type=float, help="fixed noise sigma, [0, 1] scale")
    noise.add_argument("--sigma-range", type=_sigma_range, metavar="LOW,HIGH",
                       help="noise sigma drawn uniformly per sample, e.g. 0,0.2")
    parser.add_argument("--patch", type=int, help="patch or crop side in pixels")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", help="run folder for checkpoint.pt, history.json, curves.png (default runs/PLUGIN)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--limit", type=int, help="read only the first N training images")
    parser.add_argument("--device", help="cpu or cuda")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process")
    parser.add_argument("--export", default="", metavar="NAME", help="ship the result as the plugin's weights NAME")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _split_extra(args: argparse.Namespace) -> list[str]:
    """Parse the common options that followed PLUGIN into ``args``; return the rest for the plugin's trainer.

    The plugin's options normally follow ``--``; any option this command does
    not know is handed to the plugin too, whose own parser names it if it is
    wrong.
    """
    from ..errors import InputError

    rest = list(args.extra)
    cut = rest.index("--") if "--" in rest else len(rest)
    before, after = rest[:cut], rest[cut + 1:]
    if before:
        common = argparse.ArgumentParser(prog="restorekit train", add_help=False, exit_on_error=False)
        _add_common(common)
        defaults = vars(common.parse_args([]))
        try:
            parsed, unknown = common.parse_known_args(before)
        except argparse.ArgumentError as exc:
            raise InputError(f"{exc}; see 'restorekit train --help'") from None
        for key, value in vars(parsed).items():
            if value != defaults[key]:
                setattr(args, key, value)
        after = unknown + after  # options this command does not know belong to the plugin's trainer
    return after


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..training.trainers import TrainRequest, get_trainer, trainers

    if args.list or not args.plugin:
        found = trainers()
        if not found:
            print("no installed plugin registers a trainer")
        for name, spec in found.items():
            print(f"{name:14s} {spec.summary}  [plugin {spec.plugin}]")
        return 0 if args.list or found else 2
    extra = _split_extra(args)
    for value, what in ((args.epochs, "--epochs"), (args.batch_size, "--batch-size"), (args.limit, "--limit")):
        if value is not None and value < 1:
            raise InputError(f"{what} must be at least 1, got {value}")
    if args.lr is not None and not args.lr > 0:
        raise InputError(f"--lr must be positive, got {args.lr}")
    if args.sigma is not None and args.sigma < 0:
        raise InputError(f"--sigma must be >= 0 on the [0, 1] scale, got {args.sigma}")
    spec = get_trainer(args.plugin)
    request = TrainRequest(
        name=spec.name, data=args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        sigma=args.sigma, sigma_range=args.sigma_range, patch=args.patch, seed=args.seed,
        out=args.out or f"runs/{spec.name}", resume=args.resume, limit=args.limit, device=args.device,
        threads=args.threads, export=args.export, progress=not args.no_progress, extra=extra,
    )
    return int(spec.resolve()(request) or 0)
