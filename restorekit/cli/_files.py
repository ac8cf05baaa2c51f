"""From command-line INPUT... and -o OUT to (input file, output file) pairs, safely.

Shared by the commands that turn images into images (``degrade``,
``restore``) and available to others:

* :func:`collect_inputs` expands folders (their images, sorted by name) and
  checks that every file exists and has a known format;
* :func:`plan_outputs` decides where each result goes: OUT is a file when
  there is one input and OUT has an image suffix, otherwise a folder in which
  each output keeps its input's file name (its suffix replaced by ``fmt`` if
  given). It refuses any plan that would overwrite an input or write two
  results to one file, before anything is written;
* :func:`write_output` writes one result atomically, keeping the input's
  alpha and bit depth where the output format can store them.

Nothing here imports torch at module import (the CLI stays quick).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError

#: ``--format`` choices -> suffix.
FORMAT_SUFFIXES = {"png": ".png", "jpg": ".jpg", "tif": ".tif", "npy": ".npy"}


@dataclass(frozen=True)
class Job:
    """One input file and the output file its result goes to."""

    source: Path
    target: Path


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand folders and check files; return the input images in order, without repeats.

    Raises
    ------
    InputError
        For a path that does not exist, a file of unknown format, a folder
        without images, or no inputs at all.
    """
    from ..imageio import IMAGE_SUFFIXES, format_of, list_images

    found: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            images = list_images(path)
            if not images:
                raise InputError(f"the folder {path} holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
        elif path.is_file():
            format_of(path)
            images = [path]
        else:
            raise InputError(f"input {path} does not exist; check the path")
        for image in images:
            key = image.resolve()
            if key not in seen:
                seen.add(key)
                found.append(image)
    if not found:
        raise InputError("no input images given")
    return found


def _is_file_target(output: Path, raw: str, count: int) -> bool:
    from ..imageio import FORMATS

    if output.is_dir() or raw.endswith(("/", os.sep)):
        return False
    if output.suffix.lower() in FORMATS:
        if count > 1:
            raise InputError(
                f"-o {raw} names one file but there are {count} inputs; give a folder for -o"
            )
        return True
    if output.suffix and count == 1 and not output.exists():
        raise InputError(
            f"-o {raw}: unknown image format {output.suffix!r}; use one of {', '.join(FORMATS)} "
            f"(or end -o with '/' to name a folder)"
        )
    if output.exists():
        raise InputError(f"-o {raw} exists and is not a folder; give a folder or an image file name")
    return False


def plan_outputs(sources: Sequence[Path], output: str | os.PathLike, fmt: str | None = None) -> list[Job]:
    """Pair every input with its output file, refusing unsafe plans.

    Parameters
    ----------
    sources : sequence of Path
        The inputs, from :func:`collect_inputs`.
    output : str or path-like
        ``-o``: an image file name (only with one input; its suffix sets the
        format), or a folder (created if needed).
    fmt : {"png", "jpg", "tif", "npy"}, optional
        Output format for the folder form; by default each output keeps its
        input's suffix.

    Returns
    -------
    list of Job

    Raises
    ------
    InputError
        If an output would overwrite an input, two inputs would write the
        same output, ``-o`` names one file for several inputs, or ``fmt``
        contradicts ``-o``'s suffix.
    """
    raw = os.fspath(output)
    out = Path(raw)
    if fmt is not None and fmt not in FORMAT_SUFFIXES:
        raise InputError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMAT_SUFFIXES)}")
    if _is_file_target(out, raw, len(sources)):
        from ..imageio import format_of

        if fmt is not None and format_of("x" + FORMAT_SUFFIXES[fmt]) != format_of(out):
            raise InputError(f"--format {fmt} contradicts -o {raw}; drop --format or change the suffix")
        jobs = [Job(sources[0], out)]
    else:
        jobs = []
        for src in sources:
            suffix = FORMAT_SUFFIXES[fmt] if fmt else src.suffix
            jobs.append(Job(src, out / (src.stem + suffix)))
    _check_plan(jobs, sources)
    return jobs


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_plan(jobs: Sequence[Job], sources: Sequence[Path]) -> None:
    targets: dict[Path, Path] = {}
    for job in jobs:
        for src in sources:
            if _same(job.target, src):
                raise InputError(
                    f"the output {job.target} would overwrite the input {src}; "
                    "restorekit never overwrites an input: choose another -o"
                )
        key = job.target.resolve()
        if key in targets:
            raise InputError(
                f"the inputs {targets[key]} and {job.source} would both be written to {job.target}; "
                "rename one of them or process them separately"
            )
        targets[key] = job.source


def prepare_folders(jobs: Sequence[Job]) -> None:
    """Create the output folders of ``jobs`` (after every check has passed)."""
    for folder in sorted({job.target.parent for job in jobs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from None


def write_output(job: Job, tensor: Any, loaded: Any) -> Path:
    """Write ``tensor`` to ``job.target`` atomically, like the input ``loaded`` (a LoadedImage).

    The alpha channel of the input is written back; its bit depth is kept
    when the output format can store it (16-bit PNG/TIFF, float TIFF/.npy),
    else 8-bit (float for ``.npy``).
    """
    from ..imageio import default_bit_depth, format_of, write_image

    fmt = format_of(job.target)
    return write_image(
        job.target,
        tensor,
        alpha=loaded.alpha,
        bit_depth=default_bit_depth(fmt, loaded.bit_depth),
    )


def clips_values(target: Path, source_bit_depth: int | None) -> bool:
    """True when :func:`write_output` will clip ``target``'s values to [0, 1] and quantize them."""
    from ..imageio import default_bit_depth, format_of

    return default_bit_depth(format_of(target), source_bit_depth) is not None


__all__ = [
    "FORMAT_SUFFIXES",
    "Job",
    "clips_values",
    "collect_inputs",
    "plan_outputs",
    "prepare_folders",
    "write_output",
]
