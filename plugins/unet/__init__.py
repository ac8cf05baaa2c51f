"""UNet plugin: two learned deblurring restorers on one encoder-decoder network.

``unet`` takes a colour image blurred by the course's 7x7 MNIST-digit kernel
with noise up to sigma 0.02 ([0, 1] scale) and returns the sharp image.
``unet-wiener`` takes the Wiener (SNR 100) estimate of such an image and
removes its amplified noise and ringing; the ``wiener_unet`` plugin chains
the two as ``wiener+unet``.

How it works: a 3-level UNet (``model.py``) predicts a correction added to its
input; the weights shipped in ``weights/`` were trained by ``train.py`` on
CBSD432 crops (see each ``.json`` for data, noise range, steps and the PSNR
reached). Registration is lazy: torch and the weights load only when one of
these restorers is built.
"""

from restorekit import Param, RestorerSpec, hookimpl

_PARAMS_DEVICE = Param("device", "cpu", "torch device to run on, e.g. cpu or cuda")


@hookimpl
def register_restorers(register):
    register(RestorerSpec(
        name="unet",
        tasks={"deblur"},
        params=(Param("weights", "unet-deblur", "shipped model name or path to a .pt file (with its .json)"),
                _PARAMS_DEVICE),
        factory="restorekit_plugins.unet.restorer:UNetDeblur",
        summary="UNet deblurrer for the course 7x7 MNIST-digit kernel, noise sigma <= 0.02 ([0,1] scale)",
    ))
    register(RestorerSpec(
        name="unet-wiener",
        tasks={"denoise"},
        params=(Param("weights", "unet-wiener", "shipped model name or path to a .pt file (with its .json)"),
                _PARAMS_DEVICE),
        factory="restorekit_plugins.unet.restorer:UNetWiener",
        summary="UNet cleaning a Wiener (SNR 100) estimate of a course-kernel blur; use it as wiener+unet",
        standalone=False,  # its input is a Wiener estimate, not a noisy photo: kept out of automatic choices
    ))


@hookimpl
def register_trainers(register):
    from restorekit.training.trainers import TrainerSpec

    register(TrainerSpec(
        name="unet",
        run="restorekit_plugins.unet.train:run_request",
        summary="UNet deblurrers on CBSD432 crops, course kernel, noise 0-0.02; "
                "after '--': --variant deblur|wiener, --crops-per-epoch N, --base-channels C, --depth D",
    ))
