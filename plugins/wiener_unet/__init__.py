"""Wiener+UNet plugin: a named pipeline, the course's best deblurrer.

``wiener+unet`` first inverts the blur with the Wiener filter at SNR 100
(from the ``wiener`` plugin; it needs the blur kernel in the degradation),
then lets ``unet-wiener`` (from the ``unet`` plugin, trained on exactly such
Wiener outputs of the course kernel with noise up to sigma 0.02) remove the
amplified noise and ringing. It registers no code of its own, only the
pipeline: this is how a plugin composes other plugins' restorers. Because
the name is registered, ``restorekit.create("wiener+unet")`` builds this
pipeline rather than reading ``a+b`` as an ad-hoc composition; step
parameters still work (``wiener.snr=...``, ``unet-wiener.device=cuda``).
"""

from restorekit import hookimpl, pipeline_spec


@hookimpl
def register_restorers(register):
    register(pipeline_spec(
        "wiener+unet",
        [("wiener", {"snr": 100.0}), "unet-wiener"],
        tasks={"deblur"},
        summary="Wiener filter (SNR 100) then a UNet trained on its outputs (course kernel, noise <= 0.02)",
    ))
