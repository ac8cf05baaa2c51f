"""Re-train every shipped model from ``../shared/data``, using the command stored with its weights.

Each shipped ``plugins/*/weights/NAME.json`` records, under ``metadata.command``,
the command that produced ``NAME.pt`` (with its ``--export``). This script
lists them and runs them one after another from the repository root::

    python benchmarks/retrain_weights.py --list          # what would run
    python benchmarks/retrain_weights.py                  # re-train everything (hours on a CPU)
    python benchmarks/retrain_weights.py --only dncnn-color

The data folder is found as the training scripts find it: ``$RESTOREKIT_DATA``
or ``../shared/data`` beside the repository. The new weights replace the old
ones (atomically) together with fresh metadata and SHA-256.

Each command trains from scratch: ``--overwrite`` is added, so a run folder
left by an earlier re-training is replaced (the trainers refuse a folder that
holds a checkpoint otherwise). ``--resume`` instead continues the runs an
interrupted re-training left behind. A model trained in stages (a run resumed
with other settings, e.g. ``drunet-color``: larger crops and a lower rate after
epoch 18) also records ``metadata.continue_commands``, each a ``--resume`` of
the same run folder or a new run grown from an earlier stage's checkpoint
(``--init-from``, e.g. ``drunet-color``'s 4-block network grown from the 2-block
run); they run in order after the first command. A model trained from another
shipped model's weights (``--init-from NAME``, e.g. ``drunet-color-pnp`` from
``drunet-color``) is re-trained after it (:func:`in_training_order`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shipped() -> list[tuple[str, str, list[str]]]:
    """``(name, command, continue_commands)`` of every shipped weights file that records its command."""
    found = []
    for side in sorted(ROOT.glob("plugins/*/weights/*.json")):
        meta = json.loads(side.read_text()).get("metadata", {})
        command = meta.get("command")
        if command:
            found.append((side.stem, command, list(meta.get("continue_commands") or [])))
    return found


def in_training_order(jobs: list[tuple[str, str, list[str]]]) -> list[tuple[str, str, list[str]]]:
    """``jobs`` in name order, except that one starting from another shipped model (``--init-from NAME``) comes
    after that model, so it starts from the re-trained weights."""
    names = {name for name, _, _ in jobs}

    def needs(job) -> set[str]:
        found = set()
        for line in [job[1], *job[2]]:
            words = shlex.split(line)
            found |= {b for a, b in zip(words, words[1:]) if a == "--init-from" and b in names and b != job[0]}
        return found

    ordered, done, pending = [], set(), list(jobs)
    while pending:
        ready = [job for job in pending if needs(job) <= done] or pending[:1]  # a cycle: the listed order
        for job in ready:
            ordered.append(job)
            done.add(job[0])
            pending.remove(job)
    return ordered


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true", help="print the commands without running them")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="re-train only NAME (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue the runs an interrupted re-training left (default: start each from scratch)")
    args = p.parse_args(argv)
    jobs = in_training_order([(n, c, more) for n, c, more in shipped() if not args.only or n in args.only])
    if not jobs:
        print("nothing to re-train (no shipped weights record a command, or --only matched none)", file=sys.stderr)
        return 2
    for name, command, more in jobs:
        for stage, line in enumerate([command, *more]):
            print(f"{name}: {line}", flush=True)
            if args.list:
                continue
            words = shlex.split(line)
            if words and words[0] == "python":
                words[0] = sys.executable
            if "--resume" not in words:
                words.append("--resume" if args.resume else "--overwrite")
            result = subprocess.run(words, cwd=ROOT)
            if result.returncode != 0:
                print(f"{name}: stage {stage + 1} failed with exit status {result.returncode}", file=sys.stderr)
                return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
