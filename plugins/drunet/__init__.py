"""DRUNet plugin: a residual-UNet denoiser told the noise level, the prior of plug-and-play.

How it works: a DRUNet-style network (``model.py``: four scales of residual
blocks, a sigma-map input, no normalisation) estimates the noise, which is
subtracted. One model serves every sigma in its training range (0 to 0.21 on
the [0, 1] scale, low levels included so that a clean or lightly noisy image
comes back no worse). ``train.py`` trains it from ``../shared/data``;
``restorekit train drunet`` runs the same code (resumable with ``--resume``).
"""

from restorekit import hookimpl


@hookimpl
def register_restorers(register):
    # The class is the one declaration of name, tasks and parameters; its module imports no torch.
    from .restorer import DRUNetRestorer

    register(DRUNetRestorer)


@hookimpl
def register_trainers(register):
    from restorekit.training.trainers import TrainerSpec

    register(TrainerSpec(
        name="drunet",
        run="restorekit_plugins.drunet.train:run_request",
        summary="DRUNet-style prior (noise level as input) on image folders; resumable with --resume",
    ))
