"""The ``mlp-inpaint`` restorer: fills the missing lower half of 28x28 grayscale digits.

It knows one problem only, the course's: MNIST-like digits (white strokes on
black, 28x28, one channel, values in [0, 1]) whose lower 14 rows are missing.
Anything else (another size, colour, another mask) raises
:class:`~restorekit.errors.InputError` saying what it got. Without a mask in
the degradation the lower-half mask is assumed. The observed upper half is
returned unchanged; the lower half is the network's prediction, clipped to
[0, 1].
"""

from __future__ import annotations

from pathlib import Path

from restorekit.errors import InputError
from restorekit.learned import LearnedRestorer
from restorekit.restorer import Param

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = "mlp-inpaint"
class MLPInpaint(LearnedRestorer):
    """Course MLP inpainter for the lower half of 28x28 grayscale digits."""

    name = "mlp-inpaint"
    tasks = frozenset({"inpaint"})
    summary = "MLP FullyConnectedNet(784, 784, n=32) filling the lower half of 28x28 grayscale digits"
    weights_dir = WEIGHTS_DIR
    default_weights = SHIPPED
    tileable = False  # a fixed 28x28 input
    # What restorekit.testing.check_restorer holds it to: 28x28 grayscale digits, the lower half missing.
    channels = (1,)
    fixed_size = (28, 28)

    @staticmethod
    def example_degradation(task: str, height: int, width: int):
        """The one degradation it was trained for: the lower half missing (no noise)."""
        from restorekit.degrade import Mask

        return Mask.lower_half(height, width)
    params = (
        Param("backend", "auto", "Linear/ReLU implementation: compiled ops when built, else Python",
              choices=("auto", "python", "compiled")),
    )

    def build_network(self, arch: dict):
        from .model import build_net

        return build_net(self.config["backend"])

    def check_input(self, net, image, degradation=None) -> None:
        """Refuse anything but a batch of 28x28 grayscale digits with the lower-half mask."""
        import torch

        from .model import SIDE, lower_half_mask

        n, c, h, w = image.shape
        if (h, w) != (SIDE, SIDE):
            raise InputError(
                f"'mlp-inpaint' restores 28x28 digits only (the MNIST size it was trained on), got {h}x{w}; "
                "resize the digit to 28x28 or use an inpainter for photographs"
            )
        if c != 1:
            raise InputError(
                f"'mlp-inpaint' restores grayscale digits (1 channel), got {c} channels; "
                "convert to grayscale first, e.g. image.mean(dim=1, keepdim=True)"
            )
        mask = getattr(degradation, "mask", None) if degradation is not None else None
        if mask is None:
            return
        mask = torch.as_tensor(mask).float()
        expected = lower_half_mask(mask.dtype).to(mask.device)
        if mask.shape[-2:] != (SIDE, SIDE) or not bool(((mask != 0).float() == expected).all()):
            missing = float(1 - (mask != 0).float().mean())
            raise InputError(
                "'mlp-inpaint' was trained for one mask only: the lower half (rows 14-27) missing; "
                f"this mask differs (shape {tuple(mask.shape)}, {missing:.0%} missing). Use Mask.lower_half(28, 28) "
                "or a general inpainter"
            )

    def run_network(self, net, x, degradation):
        """Predict the whole digit from its upper half; keep the observed half as given."""
        from .model import lower_half_mask, network_input, to_image

        predicted = to_image(net(network_input(x)))
        keep = lower_half_mask(x.dtype).to(x.device)
        return x * keep + predicted * (1 - keep)
