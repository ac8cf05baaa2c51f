"""Wiener plugin: non-blind deconvolution with the degradation's blur kernel.

How it works: the Fourier-domain Wiener filter
``X = conj(H) Y / (|H|^2 + reg)``, where ``H`` is the kernel's transfer
function. ``snr=100`` (the course's choice) sets ``reg = 1 / snr``;
``snr="auto"`` sets ``reg(f) = sigma^2 / S_x(f)`` per frequency from the
degradation's noise level and a power-law fit of the observed image's
spectrum (see ``restorer.py``). Borders follow the blur's ``boundary``: the
circular model is inverted exactly; a ``"reflect"`` blur (a real photo) is
inverted on a mirrored extension, so borders do not ring.

Registration is lazy: this file imports no torch, ``restorer.py`` is
imported when the restorer is first built.
"""

from restorekit import Param, RestorerSpec, hookimpl
from restorekit.restorer import float_or_auto
from restorekit.tiling import parse_memory


#: The restorer's parameters (also its class attribute ``Wiener.params``).
PARAMS = (
    Param("snr", 100.0, "signal-to-noise ratio (reg = 1/snr), or 'auto' to derive it from the noise sigma",
          parse=float_or_auto, high=1e12),
    Param("clip", True, "clip the output to [0, 1]"),
    Param("max_memory", "auto", "memory the FFTs may use, e.g. 2GiB (auto: what is free); more is refused",
          parse=parse_memory, high=10**12),
)
SUMMARY = "Wiener deconvolution with the degradation's blur kernel (FFT; snr=100 or 'auto' from sigma)"


@hookimpl
def register_restorers(register):
    register(RestorerSpec(
        name="wiener",
        tasks={"deblur"},
        params=PARAMS,
        factory="restorekit_plugins.wiener.restorer:Wiener",
        summary=SUMMARY,
    ))
