"""Training learned restorers: clean samples, one degradation sampler, one loop through the restorer, one export.

The object that restores is the object that is trained: :func:`fit` runs a
learned restorer's own differentiable forward
(:meth:`restorekit.learned.LearnedRestorer.forward`, what ``restore`` runs under
``no_grad`` with the guard, tiling, dtype and device around it) on batches of
clean samples degraded by a :class:`restorekit.degrade.DegradationSampler` (the
operators and noise restoration uses, one level per sample), and
:func:`restorekit.weights.export` ships it with the sampler's ``trained_for``.
Usage (DnCNN's and DRUNet's ``train.py`` are complete examples)::

    from restorekit.degrade import DegradationSampler
    from restorekit.training import (CleanSamples, Patches, RandomCrops, TrainConfig, fit, fixed_pairs,
                                     load_images, seed_everything)
    from restorekit.weights import export

    images = load_images("../shared/data/CBSD432")           # list of (C, H, W) in [0, 1]
    train, val = images[:-8], images[-8:]
    # clean samples: the course's non-overlapping 32x32 patches, or random crops with flips
    samples = CleanSamples(Patches(train, size=32), seed=0)  # or RandomCrops(train, size=64, length=20000)
    # how each batch is degraded: one sigma per sample (blur kernels, masks, downsampling too)
    sampler = DegradationSampler(sigma_range=(0.0, 0.2), low_fraction=0.1, low_sigma=0.01)

    seed_everything(0)                                       # before building the model
    restorer = MyRestorer.from_network(MyNet())              # a LearnedRestorer around a new network
    result = fit(restorer, samples, TrainConfig(epochs=2, batch_size=32, lr=1e-3), sampler=sampler,
                 val_pairs=fixed_pairs(val, DegradationSampler(sigma=0.1), crop=128), out="runs/mynet")
    result.history["val_psnr"], result.model                  # per-epoch validation PSNR, trained net
    # out/ holds checkpoint.pt (atomic, resumable: resume=True), history.json and curves.png

    if result.is_main:                                       # ship it: .pt + .json, trained_for from the sampler
        export(result.model, "plugins/mine/weights/mynet.pt", sampler=sampler, history=result.history)

A pipeline step is trained the same way through the pipeline's forward (the
``unet`` plugin trains ``unet-wiener`` behind the ``wiener`` restorer). Under
``torchrun --nproc-per-node N`` the same call trains with DDP (gloo on CPU);
only rank 0 writes files (``result.is_main``).

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
    "CleanSamples": "datasets", "ConcatPairs": "datasets",
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
