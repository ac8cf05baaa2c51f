"""Command-line specs shared by the commands: ``--param`` pairs, declared parameters, seeds, kernel fit.

Degradations from words (a mask SPEC: ``lower-half``, ``random:FRACTION``, a
mask file; noise; the Compose one image sees) are built by
:mod:`restorekit.degrade.spec`, the one builder that ``bench`` and
:mod:`restorekit.testing` use too; its names are re-exported here for the
commands.

Nothing here imports torch at module import.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError, ParameterError

#: The mask specs, for ``--help`` (the words :class:`restorekit.degrade.spec.MaskSpec` reads).
MASK_HELP = "lower-half, random:FRACTION (missing fraction, drawn from --seed), or a mask .npy/image file"
#: Names re-exported from :mod:`restorekit.degrade.spec`, imported on first use (it imports torch).
_FROM_SPEC = {"MaskSpec": "MaskSpec", "image_degradation": "build_degradation", "parse_noise": "parse_noise"}


def __getattr__(name: str) -> Any:  # PEP 562: the builder is imported when a command runs, not at --help
    if name in _FROM_SPEC:
        from ..degrade import spec

        return getattr(spec, _FROM_SPEC[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_params(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["snr=auto", "wiener.snr=10"]`` -> ``{"snr": "auto", "wiener.snr": "10"}``."""
    params: dict[str, str] = {}
    for pair in pairs or ():
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ParameterError(f"--param {pair!r} must look like NAME=VALUE (e.g. --param snr=auto)")
        if key in params:
            raise ParameterError(f"--param {key} is given twice; give it once")
        params[key] = value.strip()
    return params


def with_declared_params(registry: Any, method: str, params: dict, **wanted: Any) -> dict:
    """``params`` plus each of ``wanted`` (not None) for the method, or each pipeline step, that declares it.

    A value already in ``params`` is kept; a step's parameter is added as
    ``STEP.NAME``. An unknown method is returned as it is (``registry.create``
    gives the clear error).
    """
    specs = {s.name: s for s in registry.specs()}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    out = dict(params)

    def add(name: str, prefix: str) -> None:
        spec = specs.get(name)
        for pname, value in wanted.items():
            if spec is not None and any(p.name == pname for p in spec.params):
                out.setdefault(f"{prefix}{pname}", value)

    if method in specs:
        spec = specs[method]
        if not spec.steps:
            add(method, "")
            return out
        steps = [n for n, _ in spec.steps]
    elif "+" in method:
        steps = [p.strip() for p in method.split("+")]
    else:
        return out
    for step in steps:
        add(step, f"{step}.")
    return out


def check_kernel_fits(degradation: Any, image: Any, path: Path, option: str) -> None:
    """Refuse, naming the file, a blur kernel larger than the image it is applied to."""
    blur = degradation.blur
    if blur is None:
        return
    kh, kw = blur.kernel.shape
    h, w = image.shape[-2:]
    if kh > h or kw > w:
        raise InputError(
            f"{path}: the blur kernel from {option} ({kh}x{kw}) is larger than the image ({h}x{w}); "
            "use a smaller kernel or a larger image"
        )


def image_seed(seed: int, name: str) -> int:
    """The noise seed of the image called ``name``: a hash of (``seed``, ``name``).

    An image gets the same noise whatever else is in the batch and in
    whatever order the inputs come.
    """
    digest = hashlib.sha256(f"{int(seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


__all__ = ["MASK_HELP", "MaskSpec", "check_kernel_fits", "image_degradation", "image_seed", "parse_noise",
           "parse_params"]
