"""Training options declared once: a dataclass that is the command line of a trainer.

A plugin describes its training run as a dataclass whose fields carry their
help and limits (:func:`option`), and marks its training function with
:func:`trainer`. From that one declaration restorekit builds the argument
parser of both ``restorekit train NAME`` and ``python -m <plugin>.train``
(same flags, same help, same checks), fills in the dataclass, prepares the
run folder and calls the function::

    # my_plugin/train.py
    from dataclasses import dataclass
    from restorekit.training.options import TrainOptions, TrainRun, option, trainer

    @dataclass
    class MyOptions(TrainOptions):            # epochs, batch_size, lr, seed, device, threads
        data: str = option("", "training image folder")
        depth: int = option(3, "hidden layers", minimum=1)
        epochs: int = option(10, "passes over the training set", minimum=1)   # a new default

    @trainer(MyOptions, name="mynet")
    def run(opts: MyOptions, run: TrainRun):
        result = fit(net, pairs, TrainConfig(...), out=run.out, resume=run.resume, ...)
        dest = run.export_path(WEIGHTS_DIR, "mynet")      # None unless --export
        return result                  # a FitResult is reported ("done: ...") with status 0; or an exit status

    if __name__ == "__main__":
        raise SystemExit(run.main())                       # python -m my_plugin.train --depth 4

    # my_plugin/__init__.py: register(TrainerSpec(name="mynet", run="my_plugin.train:run"))

Field ``depth`` becomes ``--depth`` (underscores turn into dashes; ``flags``
renames or adds aliases), typed from the annotation: ``int``, ``float``,
``str``, ``bool`` (``--name``, or ``--no-name`` when the default is True),
``X | None`` and ``tuple[float, float]`` (written ``LOW,HIGH``).
Every trainer also gets the run options ``--out`` (default
``runs/NAME``; see :attr:`TrainOptions.run_folder`), ``--resume``,
``--overwrite``, ``--export [NAME|PATH.pt]`` and ``--no-progress``. A folder
that holds a checkpoint is refused unless ``--resume`` or ``--overwrite``
says what to do with it. A lone ``--`` is accepted and ignored (older
command lines put the plugin's options after it).

``presets`` (a class attribute: preset name -> field values) gives the
``preset`` field its choices; the chosen preset's values replace the
defaults, options given on the command line replace both. Fields that share
an ``exclusive`` group are alternatives: giving one clears the others (to
None). Limits (``minimum``, ``maximum``, ``above``, ``below``, ``choices``,
``check``) are enforced when a run starts, each failure one line naming the
flag and the fix.

Importing this module does not import torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shlex
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..errors import InputError, RestorekitError

#: Options every trainer gets; they describe the run folder, not the training (never stored in options).
RUN_KEYS = ("out", "resume", "overwrite", "export", "no_progress")
#: Files of a run that ``--overwrite`` removes before the new run starts.
RUN_FILES = ("checkpoint.pt", "history.json", "curves.png")


def option(default: Any, help: str, *, flags: tuple[str, ...] | None = None, choices: tuple | None = None,
           minimum: float | None = None, maximum: float | None = None, above: float | None = None,
           below: float | None = None, check: Callable[[Any, str], Any] | None = None,
           exclusive: str = "", metavar: str | None = None) -> Any:
    """A dataclass field that is also a training option (see the module docstring).

    Parameters
    ----------
    default
        The value when neither a preset nor the command line sets it.
    help : str
        One line for ``--help`` (the default is appended).
    flags : tuple of str, optional
        The option strings (default ``--field-name``); more than one gives aliases.
    choices : tuple, optional
        The allowed values.
    minimum, maximum : number, optional
        Inclusive limits (for a pair, of each number).
    above, below : number, optional
        Exclusive limits.
    check : callable, optional
        ``check(value, flag)`` raising a :class:`~restorekit.errors.RestorekitError`
        for a value it refuses (e.g. a device that is not there).
    exclusive : str
        Name of a group of alternative fields (giving one clears the others).
    metavar : str, optional
        How ``--help`` names the value.
    """
    meta = {"help": help, "flags": tuple(flags) if flags else None, "choices": tuple(choices) if choices else None,
            "minimum": minimum, "maximum": maximum, "above": above, "below": below, "check": check,
            "exclusive": exclusive, "metavar": metavar}
    return field(default=default, metadata={"restorekit_option": meta})


def check_device_option(value: Any, flag: str) -> Any:
    """``check`` for a device option: the device must exist here (see :func:`restorekit.checks.check_device`)."""
    from ..checks import check_device

    check_device(value, what=flag)
    return value


def check_sigma_option(value: Any, flag: str) -> Any:
    """``check`` for a noise sigma on the [0, 1] scale (see :func:`restorekit.checks.check_sigma`)."""
    from ..checks import check_sigma

    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        check_sigma(v, what=flag)
    return value


@dataclass
class TrainOptions:
    """The options most trainers share; subclass it and add (or re-declare) fields.

    Attributes
    ----------
    presets : dict
        Class attribute: preset name -> field values (the ``preset`` field,
        when declared, picks one).
    run_folder : str
        Class attribute: the default ``--out``, formatted with ``name`` (the
        trainer's) and the option values.
    """

    epochs: int = option(1, "passes over the training set", minimum=1)
    batch_size: int = option(32, "samples per step and per process", minimum=1)
    lr: float = option(1e-3, "learning rate", above=0)
    seed: int = option(0, "seeds the model, the sample order and the noise", minimum=0, maximum=2**63 - 1)
    device: str = option("cpu", "cpu, cuda or cuda:N", check=check_device_option)
    threads: int = option(0, "torch CPU threads per process (0: torch's default)", minimum=0)

    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    run_folder: ClassVar[str] = "runs/{name}"


@dataclass(frozen=True)
class TrainRun:
    """Where and how a run writes: the run options every trainer gets.

    Attributes
    ----------
    name : str
        The trainer's name.
    out : pathlib.Path
        The run folder (checkpoint, ``history.json``, ``curves.png``).
    resume : bool
        Continue from the checkpoint in ``out``.
    overwrite : bool
        The previous run in ``out`` was removed before this one started.
    export : str or None
        None: do not ship; ``""``: ship under the trainer's default name; a
        name, or a path ending in ``.pt`` (see :meth:`export_path`).
    progress : bool
        Show progress bars.
    command : str
        The command that re-creates this run from scratch (without ``--resume``
        or ``--overwrite``), for the shipped metadata.
    """

    name: str
    out: Path
    resume: bool = False
    overwrite: bool = False
    export: str | None = None
    progress: bool = True
    command: str = ""

    def export_path(self, weights_dir: str | os.PathLike, default_name: str) -> Path | None:
        """Where ``--export`` ships the weights: None without it, else ``PATH.pt`` or ``weights_dir/NAME.pt``."""
        if self.export is None:
            return None
        name = self.export or default_name
        return Path(name) if name.endswith(".pt") else Path(weights_dir) / f"{name}.pt"


# --------------------------------------------------------------------------- the declaration
def _fields(options: type) -> list[tuple[dataclasses.Field, Any, dict]]:
    """``(field, type, option metadata)`` of every option field of the dataclass ``options``."""
    hints = typing.get_type_hints(options)
    found = []
    for f in dataclasses.fields(options):
        meta = f.metadata.get("restorekit_option")
        if meta is None:
            meta = {"help": "", "flags": None, "choices": None, "minimum": None, "maximum": None, "above": None,
                    "below": None, "check": None, "exclusive": "", "metavar": None}
        found.append((f, hints[f.name], meta))
    return found


def _flags(f: dataclasses.Field, meta: dict) -> tuple[str, ...]:
    return meta["flags"] or ("--" + f.name.replace("_", "-"),)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``(type, optional)``: ``int | None`` -> ``(int, True)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return tp, False


def _is_pair(tp: Any) -> bool:
    return tp is tuple or typing.get_origin(tp) is tuple


def number_pair(text: str) -> tuple[float, float]:
    parts = [p for p in text.replace(":", ",").replace(" ", ",").split(",") if p]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers LOW,HIGH (e.g. 0,0.2), got {text!r}")
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers LOW,HIGH, got {text!r}") from None


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return "none" if value in (None, "") else str(value)


def _help(options: type, f: dataclasses.Field, meta: dict) -> str:
    """The help line: the field's own text, its default and the presets' values that differ from it."""
    text = meta["help"] or f.name.replace("_", " ")
    notes = [] if isinstance(f.default, bool) or "by default" in text else [f"default {_shown(f.default)}"]
    by_preset = {name: values[f.name] for name, values in options.presets.items()
                 if f.name in values and values[f.name] != f.default}
    if by_preset:
        notes.append("presets: " + ", ".join(f"{name} {_shown(v)}" for name, v in by_preset.items()))
    return (f"{text} ({'; '.join(notes)})" if notes else text).replace("%", "%%")


class OptionParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are :class:`InputError` (one line, exit 2), not ``SystemExit``."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise InputError(f"{message}; see '{self.prog} --help'")


def build_parser(options: type, prog: str, description: str = "", name: str = "") -> argparse.ArgumentParser:
    """The argument parser declared by the dataclass ``options`` plus the run options.

    Values not given stay out of the namespace (``argparse.SUPPRESS``), so
    :func:`resolve_options` can tell a preset's value from a given one.
    """
    parser = OptionParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                     argument_default=argparse.SUPPRESS)
    groups: dict[str, Any] = {}
    own = parser.add_argument_group(f"options of {name or prog}")
    for f, tp, meta in _fields(options):
        base, _optional = _base_type(tp)
        target = own
        if meta["exclusive"]:
            if meta["exclusive"] not in groups:
                groups[meta["exclusive"]] = own.add_mutually_exclusive_group()
            target = groups[meta["exclusive"]]
        kw: dict[str, Any] = {"dest": f.name, "help": _help(options, f, meta)}
        flags = _flags(f, meta)
        choices = meta["choices"] or (tuple(options.presets) if f.name == "preset" and options.presets else None)
        if base is bool:
            if f.default is True and not meta["flags"]:
                flags = ("--no-" + f.name.replace("_", "-"),)
            target.add_argument(*flags, action="store_false" if f.default is True else "store_true", **kw)
            continue
        if _is_pair(base):
            target.add_argument(*flags, type=number_pair, metavar=meta["metavar"] or "LOW,HIGH", **kw)
            continue
        kw["type"] = base if base in (int, float) else str
        if choices:
            kw["choices"] = choices
        if meta["metavar"]:
            kw["metavar"] = meta["metavar"]
        target.add_argument(*flags, **kw)
    run = parser.add_argument_group("the run folder")
    folder = options.run_folder.replace("{name}", name) if name else options.run_folder
    run.add_argument("--out", help=f"run folder: checkpoint.pt, history.json, curves.png (default {folder})")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out (its checkpoint, history and curves) with a new one")
    run.add_argument("--export", nargs="?", const="", metavar="NAME|PATH.pt",
                     help="when training ends, ship the model as the plugin's weights NAME (alone: the default "
                          "name), or to PATH.pt; a .json with metadata and SHA-256 goes beside it")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def check_options(opts: Any) -> Any:
    """Enforce the limits declared on the fields of ``opts``; return it.

    Raises
    ------
    RestorekitError
        For the first value out of its limits: one line naming the flag.
    """
    for f, tp, meta in _fields(type(opts)):
        value = getattr(opts, f.name)
        flag = _flags(f, meta)[0]
        if value is None:
            continue
        base, _ = _base_type(tp)
        if meta["choices"] and value not in meta["choices"]:
            raise InputError(f"{flag} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
        if base in (int, float) or _is_pair(base):
            numbers = list(value) if _is_pair(base) else [value]
            if _is_pair(base) and (len(numbers) != 2 or numbers[0] > numbers[1]):
                raise InputError(f"{flag} takes two numbers LOW,HIGH with LOW <= HIGH, got {_shown(value)}")
            for v in numbers:
                _check_number(flag, v, meta)
        if meta["check"] is not None:
            meta["check"](value, flag)
    return opts


def _number(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _check_number(flag: str, v: Any, meta: dict) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise InputError(f"{flag} must be a finite number, got {v}")
    for key, ok, words in (("minimum", lambda b: v >= b, "at least"), ("maximum", lambda b: v <= b, "at most"),
                           ("above", lambda b: v > b, "above"), ("below", lambda b: v < b, "below")):
        bound = meta[key]
        if bound is not None and not ok(bound):
            raise InputError(f"{flag} must be {words} {_number(bound)}, got {_number(v)}")


def resolve_options(options: type, given: dict[str, Any]) -> Any:
    """The options of a run: defaults, then the chosen preset's values, then ``given``; checked.

    Parameters
    ----------
    options : dataclass type
    given : dict
        Field name -> value, only for the options the user set.
    """
    names = {f.name for f in dataclasses.fields(options)}
    unknown = sorted(set(given) - names)
    if unknown:
        raise InputError(f"unknown training option(s) {', '.join(unknown)} for {options.__name__}")
    values: dict[str, Any] = {}
    if options.presets and "preset" in names:
        preset = given.get("preset", next(f.default for f in dataclasses.fields(options) if f.name == "preset"))
        if preset not in options.presets:
            raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(options.presets)}")
        values.update(options.presets[preset])
    values.update(given)
    groups: dict[str, list[str]] = {}
    for f, _, meta in _fields(options):
        if meta["exclusive"]:
            groups.setdefault(meta["exclusive"], []).append(f.name)
    for members in groups.values():
        chosen = [m for m in members if m in given and given[m] is not None]
        if chosen:
            values.update({m: None for m in members if m not in chosen})
    return check_options(options(**values))


# --------------------------------------------------------------------------- the run folder
def prepare_run_folder(out: str | os.PathLike, resume: bool = False, overwrite: bool = False,
                       is_main: bool = True) -> Path:
    """Make ``out`` ready for a run: refuse a file, refuse an earlier run's checkpoint unless told.

    With ``overwrite`` the earlier run's files (:data:`RUN_FILES`) are
    removed; hidden temporary files left by a killed run are removed too
    (:func:`restorekit.atomic.remove_stale_temporaries`). Only the main
    process (``is_main``) changes anything.

    Raises
    ------
    InputError
        If ``out`` is not a folder, or holds a checkpoint and neither
        ``resume`` nor ``overwrite`` is set (or both are).
    """
    from ..atomic import remove_stale_temporaries

    out = Path(out)
    if resume and overwrite:
        raise InputError("--resume continues the run in --out and --overwrite replaces it: choose one")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder; name a folder for the run (it is created if missing)")
    checkpoint = out / RUN_FILES[0]
    if checkpoint.exists() and not (resume or overwrite):
        raise InputError(f"{out} holds the checkpoint of an earlier run; continue it with --resume, replace it "
                         "with --overwrite, or choose another --out")
    if is_main and out.is_dir():
        remove_stale_temporaries(out, older_than_s=0)
        if overwrite:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
    return out


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# --------------------------------------------------------------------------- the trainer
class Trainer:
    """A training function with its options: what :func:`trainer` makes.

    Call it as the function (``trainer(opts, run)``); :meth:`run_argv`
    parses a command line into options and a :class:`TrainRun` and calls it;
    :meth:`main` is the ``python -m plugin.train`` entry.
    """

    def __init__(self, function: Callable[[Any, TrainRun], Any], options: type, name: str) -> None:
        if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
            raise TypeError(f"trainer options must be a dataclass, got {options!r}")
        self.function, self.options, self.name = function, options, name
        self.__doc__ = function.__doc__
        self.__module__ = function.__module__
        self.__name__ = getattr(function, "__name__", "trainer")

    def __call__(self, opts: Any, run: TrainRun) -> Any:
        return self.function(opts, run)

    def module_name(self) -> str:
        """The importable name of the module defining the function (also when run as ``__main__``)."""
        module = sys.modules.get(self.function.__module__)
        spec = getattr(module, "__spec__", None)
        return spec.name if spec is not None and spec.name else self.function.__module__

    def parser(self, prog: str | None = None, name: str | None = None) -> argparse.ArgumentParser:
        """The argument parser (the options' declaration plus the run options)."""
        module = sys.modules.get(self.function.__module__)
        return build_parser(self.options, prog or f"python -m {self.module_name()}",
                            description=(getattr(module, "__doc__", None) or "").strip(), name=name or self.name)

    def run_argv(self, argv: list[str], prog: str | None = None, name: str | None = None) -> int:
        """Parse ``argv``, check the options, prepare the run folder and train; the exit status."""
        name = name or self.name
        words = [a for a in argv if a != "--"]
        given = vars(self.parser(prog, name).parse_args(words))
        run_given = {k: given.pop(k) for k in RUN_KEYS if k in given}
        opts = resolve_options(self.options, given)
        folder = run_given.get("out") or self.options.run_folder.format(name=name, **dataclasses.asdict(opts))
        resume, overwrite = bool(run_given.get("resume")), bool(run_given.get("overwrite"))
        out = prepare_run_folder(folder, resume=resume, overwrite=overwrite, is_main=is_main_process())
        threads = getattr(opts, "threads", 0)
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        again = [a for a in words if a not in ("--resume", "--overwrite")]
        run = TrainRun(name=name, out=out, resume=resume, overwrite=overwrite, export=run_given.get("export"),
                       progress=not run_given.get("no_progress"),
                       command=f"python -m {self.module_name()} {shlex.join(again)}".rstrip())
        outcome = self.function(opts, run)
        if hasattr(outcome, "summary") and hasattr(outcome, "is_main"):  # a FitResult: report it, status 0
            if outcome.is_main:
                print(f"done: {outcome.summary()}; run folder {out}")
            return 0
        return int(outcome or 0)

    def main(self, argv: list[str] | None = None) -> int:
        """The script entry: errors as one ``error: ...`` line and exit status 2."""
        try:
            return self.run_argv(list(sys.argv[1:] if argv is None else argv))
        except RestorekitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2


def trainer(options: type, name: str) -> Callable[[Callable[[Any, TrainRun], Any]], Trainer]:
    """Mark ``function(opts, run)`` as a trainer taking the options dataclass ``options``.

    Parameters
    ----------
    options : dataclass type
        The declaration (fields made with :func:`option`, usually a
        :class:`TrainOptions` subclass).
    name : str
        The trainer's name (the default run folder is ``runs/NAME``).
    """
    return lambda function: Trainer(function, options, name)


__all__ = ["RUN_FILES", "RUN_KEYS", "TrainOptions", "TrainRun", "Trainer", "build_parser", "check_device_option",
           "check_options", "check_sigma_option", "option", "prepare_run_folder", "resolve_options", "trainer"]
