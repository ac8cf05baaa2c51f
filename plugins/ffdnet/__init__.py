"""FFDNet plugin: a learned denoiser told the noise level, colour and grayscale.

How it works: an FFDNet-style network (``model.py``) reads the noisy image and
a map of its noise sigma, works at half resolution (four pixels per position)
and estimates the noise, which is subtracted. Because the level is an input,
one model serves every sigma in its training range and can be asked for more
or less smoothing than the image holds: it is a non-blind denoiser in its own
right and the prior inside plug-and-play solvers (``pnp``). ``train.py``
re-trains it from ``../shared/data``; ``restorekit train ffdnet`` runs the
same code through the ``register_trainers`` hook.
"""

from restorekit import hookimpl


@hookimpl
def register_restorers(register):
    # The class is the one declaration of name, tasks and parameters; its module imports no torch.
    from .restorer import FFDNetRestorer

    register(FFDNetRestorer)


@hookimpl
def register_trainers(register):
    from restorekit.training.trainers import TrainerSpec

    register(TrainerSpec(
        name="ffdnet",
        run="restorekit_plugins.ffdnet.train:run_request",
        summary="FFDNet (noise level as input) on image folders; plugin options after '--', "
                "e.g. -- --hidden-layers 12 --hidden-channels 64",
    ))
