"""Training learned restorers: datasets of (degraded, clean) pairs, one loop, checkpoints, DDP.

Usage (the same for any model; DnCNN's ``train.py`` is a complete example)::

    import torch
    from restorekit.training import (AddNoise, BlurNoise, DegradedPairs, Patches, RandomCrops,
                                     TrainConfig, fit, fixed_pairs, load_images, seed_everything)

    images = load_images("../shared/data/CBSD432")           # list of (C, H, W) in [0, 1]
    train, val = images[:-8], images[-8:]
    # clean samples: the course's non-overlapping 32x32 patches, or random crops with flips
    source = Patches(train, size=32)                         # or RandomCrops(train, size=64, length=20000)
    # how a clean sample becomes the network's input: any make_input(clean, generator) -> degraded
    make_input = AddNoise(sigma_range=(0.0, 0.2))            # or AddNoise(0.1), BlurNoise(kernel, sigma_range=...)
    pairs = DegradedPairs(source, make_input, seed=0)

    seed_everything(0)                                       # before building the model
    net = MyNet()
    result = fit(net, pairs, TrainConfig(epochs=2, batch_size=32, lr=1e-3, samples_per_epoch=None),
                 val_pairs=fixed_pairs(val, make_input, crop=128), out="runs/mynet", resume=False)
    result.history["val_psnr"], result.model                  # per-epoch validation PSNR, trained net
    # out/ holds checkpoint.pt (atomic, resumable: resume=True), history.json and curves.png

    from restorekit.weights import save_model                # ship it: .pt + .json with SHA-256
    if result.is_main:
        save_model(result.model, "plugins/mine/weights/mynet.pt", arch={...}, metadata={...})

A ``make_input`` that runs a classical restorer first (e.g. blur + noise, then
Wiener) turns the same loop into training a refiner of that restorer's output.
Under ``torchrun --nproc-per-node N`` the same call trains with DDP (gloo on
CPU); only rank 0 writes files (``result.is_main``).

Plugins expose their training to ``restorekit train PLUGIN`` through the
optional ``register_trainers`` hook (see :mod:`restorekit.training.trainers`),
declaring its options once as a dataclass (:mod:`restorekit.training.options`:
``option``, ``TrainOptions``, ``trainer``).
"""

from __future__ import annotations

import importlib
from typing import Any

# Names -> submodule; loaded on first use so that importing restorekit.training.trainers
# (as plugins do at registration) does not import torch.
_EXPORTS = {
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "AddNoise": "datasets", "BlurNoise": "datasets", "CleanSamples": "datasets", "ConcatPairs": "datasets", "DegradedPairs": "datasets",
    "GrayAsColour": "datasets", "Patches": "datasets",
    "RandomCrops": "datasets", "extract_patches": "datasets", "fixed_pairs": "datasets", "image_files": "datasets",
    "load_images": "datasets", "mnist_images": "datasets", "to_grayscale": "datasets",
    "FitResult": "loop", "TrainConfig": "loop", "batch_generator": "loop", "curves_figure": "loop", "evaluate_psnr": "loop", "fit": "loop",
    "seed_everything": "loop",
    "TrainOptions": "options", "TrainRun": "options", "option": "options", "trainer": "options",
    "TrainRequest": "trainers", "TrainerSpec": "trainers",
}


def __getattr__(name: str) -> Any:  # PEP 562
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'restorekit.training' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
