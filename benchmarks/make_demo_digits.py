"""Extract the MNIST digits that ``restorekit demo`` inpaints into ``restorekit/data/demo_digits.npy``.

The demo's inpainting task shows the shipped ``mlp-inpaint`` model on digits
it never trained on. In ``../shared/data/MNIST`` the train split (4,000
digits) is sorted by class, 0 to 7; the model trained on its first 3,600
(classes 0-6 and 100 sevens) and validated on the last 400 (all sevens); the
t10k split holds classes 8 and 9 only. So the demo takes ``--per-class``
digits of class 7 from the validation sevens and of classes 8 and 9 from
t10k, evenly spaced through each pool. The images (uint8, 28x28) and a JSON
with their source, indices, labels and the source files' SHA-256 are written
atomically.

Run::

    .venv/bin/python benchmarks/make_demo_digits.py [--data ../shared/data] [--per-class 4]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "restorekit" / "data"
VAL_HELD_OUT = 400  # plugins/mlp_inpaint/train.py TrainConfig.val_digits


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format) as a numpy array."""
    raw = path.read_bytes()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data", help="folder holding MNIST/raw (default ../shared/data)")
    parser.add_argument("--per-class", type=int, default=4, help="digits of each of classes 7, 8, 9 (default 4)")
    args = parser.parse_args(argv)

    from restorekit.atomic import atomic_output

    raw = Path(args.data) / "MNIST" / "raw"
    files = {name: raw / name for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        print(f"error: missing {', '.join(missing)}; pass --data, the folder that holds MNIST/raw", file=sys.stderr)
        return 2
    train_x, train_y = read_idx(files["train-images-idx3-ubyte"]), read_idx(files["train-labels-idx1-ubyte"])
    test_x, test_y = read_idx(files["t10k-images-idx3-ubyte"]), read_idx(files["t10k-labels-idx1-ubyte"])

    held_out = np.arange(len(train_y) - VAL_HELD_OUT, len(train_y))
    pools = {7: ("train", held_out[train_y[held_out] == 7])}
    for label in (8, 9):
        pools[label] = ("t10k", np.flatnonzero(test_y == label))
    images, entries = [], []
    for label, (split, pool) in pools.items():
        if len(pool) < args.per_class:
            print(f"error: only {len(pool)} unseen digits of class {label}", file=sys.stderr)
            return 2
        chosen = pool[np.linspace(0, len(pool) - 1, args.per_class).round().astype(int)]
        source = train_x if split == "train" else test_x
        for index in chosen:
            images.append(source[index])
            entries.append({"split": split, "index": int(index), "label": label})

    array = np.stack(images).astype(np.uint8)
    meta = {
        "file": "demo_digits.npy",
        "what": "MNIST digits (uint8, 28x28, white on black) that restorekit demo inpaints",
        "why these": "never seen in training by the shipped mlp-inpaint: class 7 from the train split's last "
                     f"{VAL_HELD_OUT} (its validation digits), classes 8 and 9 from t10k (absent from this "
                     "MNIST copy's train split)",
        "source": "MNIST as shipped in shared/data/MNIST/raw (4,000 train digits sorted by class 0-7, "
                  "1,000 t10k digits of classes 8 and 9)",
        "source_file_sha256": {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in files.items()},
        "digits": entries,
        "labels": [e["label"] for e in entries],
        "regenerate": f"python benchmarks/make_demo_digits.py --data <data root> --per-class {args.per_class}",
    }
    OUT.mkdir(parents=True, exist_ok=True)
    with atomic_output(OUT / "demo_digits.npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    with atomic_output(OUT / "demo_digits.json") as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT / 'demo_digits.npy'} {array.shape} and its .json (labels {meta['labels']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
