"""DnCNN plugin: a learned blind denoiser for colour and grayscale photographs.

How it works: the course's DnCNN (``model.py``), a stack of 3x3 convolutions
with ReLUs that estimates the noise, which is then subtracted from the input
(residual learning). The shipped model ``dncnn-color`` (in ``weights/``, its
``.json`` says what it was trained on, for how long, and the PSNR it reached)
is blind over Gaussian noise sigma in [0, 0.2] on the [0, 1] scale: it needs
no noise level and ignores the degradation it is given. Grayscale images are
restored by the same network: a gray image is repeated into three channels
(the model saw such images, noise included, in training) and the three
outputs are averaged back into one.

``train.py`` re-trains it (and the course's variants) from ``../shared/data``;
``restorekit train dncnn`` runs the same code through the ``register_trainers``
hook. Registration is cheap: the restorer's module imports no torch, and
torch and the weights load only when the restorer is built.
"""

from restorekit import hookimpl


@hookimpl
def register_restorers(register):
    # The class is the one declaration of name, tasks and parameters; its module imports no torch.
    from .restorer import DnCNNRestorer

    register(DnCNNRestorer)


@hookimpl
def register_trainers(register):
    from restorekit.training.trainers import TrainerSpec

    register(TrainerSpec(
        name="dncnn",
        run="restorekit_plugins.dncnn.train:run_request",
        summary="DnCNN on image folders (presets: course, dncnn-color, dncnn-gray); plugin options after '--', "
                "e.g. -- --preset course --hidden-channels 32 --no-bias",
    ))
