"""UNet plugin: two learned deblurring restorers on one encoder-decoder network.

``unet`` takes a colour image blurred by the course's 7x7 MNIST-digit kernel
with noise up to sigma 0.02 ([0, 1] scale) and returns the sharp image.
``unet-wiener`` takes the Wiener (SNR 100) estimate of such an image and
removes its amplified noise and ringing; the ``wiener_unet`` plugin chains
the two as ``wiener+unet``.

How it works: a 3-level UNet (``model.py``) predicts a correction added to its
input; the weights shipped in ``weights/`` were trained by ``train.py`` on
CBSD432 crops (see each ``.json`` for data, noise range, steps and the PSNR
reached). Registration is cheap: the restorers' module imports no torch, and
torch and the weights load only when one of them is built.
"""

from restorekit import hookimpl


@hookimpl
def register_restorers(register):
    # The classes are the one declaration of names, tasks and parameters; their module imports no torch.
    from .restorer import UNetDeblur, UNetWiener

    register(UNetDeblur)
    register(UNetWiener)


@hookimpl
def register_trainers(register):
    from restorekit.training.trainers import TrainerSpec

    register(TrainerSpec(
        name="unet",
        run="restorekit_plugins.unet.train:run_request",
        summary="UNet deblurrers on CBSD432 crops, course kernel, noise 0-0.02; "
                "after '--': --variant deblur|wiener, --crops-per-epoch N, --base-channels C, --depth D",
    ))
