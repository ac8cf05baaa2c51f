"""Interpolation plugin: ``bicubic``, the plain-upsampling anchor for super-resolution.

How it works: ``torch.nn.functional.interpolate(mode="bicubic",
align_corners=False, antialias=False)`` by the degradation's scale (Keys'
cubic with ``a = -0.75``, torch's choice), clamped to [0, 1]. Nothing is
inverted: it is the baseline every super-resolver must beat. With
``align_corners=False`` each low-resolution pixel sits at the centre of its
``s x s`` block, where :class:`restorekit.degrade.Downsample`'s default
(bicubic, block-centred) anti-aliasing puts it.

Registration is lazy: this file imports no torch, ``restorer.py`` is
imported when the restorer is first built.
"""

from restorekit import RestorerSpec, hookimpl

SUMMARY = "bicubic interpolation by the degradation's scale (torch interpolate, no inversion): the SR anchor"


@hookimpl
def register_restorers(register):
    register(RestorerSpec(
        name="bicubic",
        tasks={"superresolve"},
        params=(),
        factory="restorekit_plugins.interp.restorer:Bicubic",
        summary=SUMMARY,
    ))
