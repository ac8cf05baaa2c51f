"""Sample data shipped inside the package, so the demo needs nothing downloaded.

``demo_digits()`` returns the MNIST digits that ``restorekit demo`` inpaints:
12 digits (classes 7, 8, 9) that the shipped ``mlp-inpaint`` model never saw
in training. ``restorekit/data/demo_digits.json`` records where each comes
from; ``benchmarks/make_demo_digits.py`` extracts them again from
``../shared/data/MNIST``. (The photographs the demo denoises and deblurs come
from scikit-image's bundled data.)
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import torch

from .errors import InputError

DEMO_DIGITS_FILE = "demo_digits.npy"


def demo_digits() -> tuple[torch.Tensor, list[int]]:
    """``(digits, labels)``: float32 ``(12, 1, 28, 28)`` in [0, 1] (white strokes on black) and their classes."""
    folder = resources.files("restorekit") / "data"
    with resources.as_file(folder / DEMO_DIGITS_FILE) as path, \
            resources.as_file(folder / DEMO_DIGITS_FILE.replace(".npy", ".json")) as meta_path:
        if not (path.is_file() and meta_path.is_file()):
            raise InputError(
                f"the packaged demo digits {path} (or its .json) are missing; reinstall restorekit "
                "(pip install -e .) so its data files are installed"
            )
        array = np.load(path, allow_pickle=False)
        labels = [int(v) for v in json.loads(meta_path.read_text(encoding="utf-8"))["labels"]]
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[1:] != (28, 28) or len(labels) != len(array):
        raise InputError(f"the packaged demo digits {path} are damaged (shape {array.shape}, dtype {array.dtype}); "
                         "reinstall restorekit")
    return torch.from_numpy(array.astype(np.float32) / 255.0)[:, None].contiguous(), labels


__all__ = ["demo_digits", "DEMO_DIGITS_FILE"]
