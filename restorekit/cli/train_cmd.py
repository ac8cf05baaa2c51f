"""``restorekit train NAME``: train a plugin's learned restorer.

The command is thin: it finds the trainer that a plugin registered (see
:mod:`restorekit.training.trainers`) and hands it the rest of the command
line. A trainer that declares its options (:mod:`restorekit.training.options`)
gets them parsed from that one declaration, which ``restorekit train NAME
--help`` shows; an older trainer gets a :class:`~restorekit.training.trainers.TrainRequest`.
"""

from __future__ import annotations

import argparse

HELP = "train a plugin's learned restorer (e.g. restorekit train dncnn --data DIR)"
DESCRIPTION = """Train a plugin's learned restorer on a folder of images.

Each trainer declares its own options and defaults: 'restorekit train NAME
--help' lists them (the same as 'python -m PLUGIN.train --help'). Every
trainer writes its checkpoint, history.json and curves.png to --out (default
runs/NAME); a folder that already holds a checkpoint is refused unless
--resume continues that run or --overwrite replaces it. Checkpoints are
written atomically. Sigmas are on the [0, 1] scale (25/255 = 0.098). A lone
'--' is accepted and ignored (older command lines put plugin options after it).

Examples:
  restorekit train --list
  restorekit train dncnn --help
  restorekit train dncnn --data ../shared/data/CBSD432 --epochs 2 --sigma 0.1 --out runs/dncnn
  restorekit train dncnn --out runs/c32 --preset course --hidden-channels 32 --no-bias
  restorekit train dncnn --out runs/c32 --resume
  torchrun --nproc-per-node 2 -m restorekit.cli.main train dncnn --data DIR --out runs/ddp
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plugin", nargs="?", metavar="NAME",
                        help="the trainer (usually the restorer or plugin name), e.g. dncnn")
    parser.add_argument("--list", action="store_true", help="list the plugins that can be trained")
    # Everything after NAME belongs to that trainer's own parser (see run()).
    parser.add_argument("options", nargs=argparse.REMAINDER, metavar="...",
                        help="the trainer's options ('restorekit train NAME --help' lists them)")


def run(args: argparse.Namespace) -> int:
    from ..training.options import Trainer
    from ..training.trainers import get_trainer, run_request, trainers

    if args.list or not args.plugin:
        found = trainers()
        if not found:
            print("no installed plugin registers a trainer")
        for name, spec in found.items():
            print(f"{name:14s} {spec.summary}  [plugin {spec.plugin}]")
        return 0 if args.list or found else 2
    spec = get_trainer(args.plugin)
    function = spec.resolve()
    if isinstance(function, Trainer):
        return function.run_argv(list(args.options), prog=f"restorekit train {spec.name}", name=spec.name)
    return run_request(spec, function, list(args.options))
