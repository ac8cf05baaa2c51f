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
  alpha and bit depth where the output format can store them;
* :func:`run_batch` runs the jobs, going on past a file that fails (each
  failure one line), and :func:`batch_error` turns the outcome into the
  command's final error (a summary, exit status 2).

Nothing here imports torch at module import (the CLI stays quick).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
    from ..imageio import IMAGE_SUFFIXES, file_problem, format_of, list_images

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
            raise InputError(f"input {path} {file_problem(path) or 'is not a file or folder; check the path'}")
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
    from ..atomic import check_name_length

    raw = os.fspath(output)
    out = Path(raw)
    check_name_length(out)
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


#: Figure formats that ``demo -o`` and ``bench --figure`` write (matplotlib chooses by suffix).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def check_figure_path(path: str | os.PathLike, option: str) -> Path:
    """Refuse, before any work, a figure file name whose suffix is not a figure format we write."""
    target = Path(path)
    if target.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError(
            f"{option} {target}: cannot write a figure as {target.suffix or '(no suffix)'!r}; "
            f"end the name with {', '.join(FIGURE_SUFFIXES[:-1])} or {FIGURE_SUFFIXES[-1]}"
        )
    return target


@dataclass
class BatchOutcome:
    """What :func:`run_batch` did: how many jobs succeeded, each failure's line, and why it stopped early."""

    total: int
    done: int = 0
    failures: list[str] = field(default_factory=list)
    stopped: str | None = None
    #: The exception that stopped the batch (kept in this process only: for --debug and its traceback).
    error: BaseException | None = field(default=None, compare=False)

    def portable(self) -> "BatchOutcome":
        """This outcome without :attr:`error`, to send to other processes."""
        return BatchOutcome(self.total, self.done, list(self.failures), self.stopped)

    def merged(self, others: Sequence["BatchOutcome"]) -> "BatchOutcome":
        """This outcome and ``others`` (e.g. from other processes) as one."""
        out = BatchOutcome(self.total + sum(o.total for o in others), self.done + sum(o.done for o in others),
                           list(self.failures), self.stopped, self.error)
        for other in others:
            out.failures += other.failures
            if out.stopped is None and other.stopped is not None:
                out.stopped, out.error = other.stopped, other.error
        return out


def failure_message(job: Job, exc: BaseException, memory_hint: str) -> str | None:
    """The one-line message of ``exc`` raised while processing ``job``; ``None`` if it is not a per-file failure.

    A :class:`~restorekit.errors.RestorekitError` keeps its message (the
    file named first if the message does not name it); running out of memory
    (``MemoryError``, torch's ``OutOfMemoryError``) says so with ``memory_hint``.
    """
    from ..errors import RestorekitError

    where = out_of_memory(exc)
    if where is not None:
        return f"{job.source}: ran out of {where}; {memory_hint}"
    if isinstance(exc, RestorekitError):
        text = str(exc)
        return text if str(job.source) in text or str(job.target) in text else f"{job.source}: {text}"
    return None


def out_of_memory(exc: BaseException) -> str | None:
    """``"memory (RAM)"`` or ``"GPU memory"`` when ``exc`` (or the error it wraps) is running out of memory.

    Recognises ``MemoryError`` and torch's ``OutOfMemoryError`` (without
    importing torch), also when a restorer's contract wrapped them in a
    :class:`~restorekit.errors.RestorerFailedError`; ``None`` otherwise.
    """
    for candidate in (exc, exc.__cause__):
        if candidate is None:
            continue
        if type(candidate).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (torch.cuda.OutOfMemoryError)
            return "GPU memory"
        if isinstance(candidate, MemoryError):
            return "memory (RAM)"
    return None


def run_batch(jobs: Sequence[Job], work: Any, *, command: str, fail_fast: bool = False, progress: bool = True,
              memory_hint: str = "free some memory or use a smaller image") -> BatchOutcome:
    """Run ``work(job)`` for every job, going on past files that fail.

    Each failure (a :class:`~restorekit.errors.RestorekitError` or running
    out of memory) is printed at once as one line ``restorekit COMMAND:
    error: ...`` on stderr; the batch goes on with the next file unless
    ``fail_fast`` is set or the failure concerns every write (a full disk, a
    read-only folder). Other exceptions (bugs) propagate. Nothing partial is
    left behind: outputs are written atomically.

    Returns
    -------
    BatchOutcome
        Pass it to :func:`batch_error` once every process is done.
    """
    import sys

    from tqdm import tqdm

    outcome = BatchOutcome(total=len(jobs))
    bar = tqdm(jobs, desc=command, unit="image", disable=(not progress) or len(jobs) < 2 or None)
    for job in bar:
        try:
            work(job)
        except (Exception, MemoryError) as exc:  # noqa: BLE001 - sorted out by failure_message
            message = failure_message(job, exc, memory_hint)
            if message is None:
                raise
            outcome.failures.append(message)
            if fail_fast or getattr(exc, "folder_wide", False):
                outcome.stopped, outcome.error = message, exc
                break
            tqdm.write(f"restorekit {command}: error: {message}", file=sys.stderr)
        else:
            outcome.done += 1
    bar.close()
    return outcome


def batch_error(outcome: BatchOutcome, verb: str, where: Path) -> Exception | None:
    """The error to raise after a batch (``None`` when every job succeeded).

    A batch stopped early (``--fail-fast``, a full disk) raises its last
    failure (the earlier ones were printed); otherwise one summary line
    counts the failures printed above and the files written to ``where``.
    Under ``torchrun`` the outcome is the merged one of all ranks, the same
    everywhere: the error is marked ``reported_by_rank_0`` so that the CLI
    prints it once.
    """
    from ..errors import InputError, RestorekitError

    def everywhere(error: Exception) -> Exception:
        error.reported_by_rank_0 = True
        return error

    if outcome.stopped is not None:
        if outcome.total == 1 and isinstance(outcome.error, RestorekitError) and not out_of_memory(outcome.error):
            return everywhere(outcome.error)  # as raised: --debug shows its traceback
        left = outcome.total - outcome.done - len(outcome.failures)
        more = f" ({outcome.done} {verb}, {left} not tried)" if outcome.total > 1 else ""
        error = InputError(outcome.stopped + more)
        error.__cause__ = outcome.error
        return everywhere(error)
    if not outcome.failures:
        return None
    n = len(outcome.failures)
    return everywhere(InputError(
        f"{n} of {outcome.total} image{'s' if outcome.total != 1 else ''} failed (each named above); "
        f"{outcome.done} {verb} -> {where}; fix or remove the failed files and run again for them"
    ))


def clips_values(target: Path, source_bit_depth: int | None) -> bool:
    """True when :func:`write_output` will clip ``target``'s values to [0, 1] and quantize them."""
    from ..imageio import default_bit_depth, format_of

    return default_bit_depth(format_of(target), source_bit_depth) is not None


__all__ = [
    "FORMAT_SUFFIXES",
    "BatchOutcome",
    "FIGURE_SUFFIXES",
    "Job",
    "batch_error",
    "check_figure_path",
    "clips_values",
    "failure_message",
    "out_of_memory",
    "collect_inputs",
    "plan_outputs",
    "prepare_folders",
    "run_batch",
    "write_output",
]
