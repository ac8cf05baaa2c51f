"""MLP inpainter plugin: the course's fully connected network filling the lower half of digits.

How it works: ``FullyConnectedNet(784, 784, n=32)`` from :mod:`restorekit.nn`
(restorekit's own Linear/ReLU with hand-written backward passes; the
compiled C++ ops when the extension is built) maps a flattened 28x28 digit,
normalised by MNIST's mean and std with its lower half zeroed, to the whole
digit. ``train.py`` trains it with plain gradient descent (lr 2, the update
written by hand) on MNIST; the weights ship in ``weights/`` with their
metadata. It restores 28x28 grayscale digits with the lower-half mask and
refuses anything else with a clear message.
"""

from restorekit import hookimpl


@hookimpl
def register_restorers(register):
    # The class is the one declaration of name, tasks and parameters; its module imports no torch.
    from .restorer import MLPInpaint

    register(MLPInpaint)


@hookimpl
def register_trainers(register):
    from restorekit.training.trainers import TrainerSpec

    register(TrainerSpec(
        name="mlp-inpaint",
        run="restorekit_plugins.mlp_inpaint.train:run_request",
        summary="MLP inpainter, hand-written gradient descent (lr 2) on MNIST lower halves; "
                "--data is the folder holding MNIST/raw",
    ))


@hookimpl
def register_op_checks(register):
    # restorekit's compiled Linear/ReLU/fused ops, which this plugin's network runs on: what
    # `restorekit gradcheck` (and `--plugin mlp_inpaint`) checks. Registering imports no torch.
    from restorekit.testing import restorekit_op_checks

    for spec in restorekit_op_checks():
        register(spec)
