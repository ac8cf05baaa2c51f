"""The extension point behind ``restorekit train NAME``: plugins register trainers.

A plugin registers a :class:`TrainerSpec` through the optional
``register_trainers`` hook; its ``run`` names the training function. The
function declares its options once, as a dataclass
(:mod:`restorekit.training.options`), and both ``restorekit train NAME`` and
``python -m PLUGIN.train`` parse them from that declaration::

    # my_plugin/__init__.py
    from restorekit import hookimpl

    @hookimpl
    def register_trainers(register):
        from restorekit.training.trainers import TrainerSpec
        register(TrainerSpec(name="mynet", run="my_plugin.train:run", summary="MyNet on image folders"))

    # my_plugin/train.py
    from restorekit.training.options import TrainOptions, option, trainer

    @dataclass
    class MyOptions(TrainOptions):
        depth: int = option(3, "hidden layers", minimum=1)

    @trainer(MyOptions, name="mynet")
    def run(opts, run):              # opts: MyOptions; run: out, resume, export, progress, command
        ...build datasets with restorekit.training, fit(...), save_model(...)
        return 0

A plain function ``run(req)`` (not made with :func:`~restorekit.training.options.trainer`)
still works: it gets a :class:`TrainRequest` holding the common options, and
what follows ``--`` (with any option the command does not know) in
:attr:`TrainRequest.extra`.

Importing this module does not import torch (``restorekit list`` stays quick).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import InputError, PluginError, UnknownRestorerError


@dataclass(frozen=True)
class TrainerSpec:
    """A trainer a plugin offers: its name, how to run it (callable or ``"module:attr"``), one line of help."""

    name: str
    run: Callable[["TrainRequest"], int] | str
    summary: str = ""
    plugin: str = ""

    def resolve(self) -> Callable[["TrainRequest"], int]:
        if not isinstance(self.run, str):
            return self.run
        module, _, attr = self.run.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
            raise PluginError(f"trainer {self.name!r} of plugin {self.plugin!r} could not load {self.run!r}: "
                              f"{type(exc).__name__}: {exc}") from exc


@dataclass
class TrainRequest:
    """The common options of ``restorekit train`` for a trainer without a declaration; ``None``: its default.

    Sigmas are on the [0, 1] scale (25/255 = 0.098).
    """

    name: str
    data: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    sigma: float | None = None
    sigma_range: tuple[float, float] | None = None
    patch: int | None = None
    seed: int | None = None
    out: str | None = None
    resume: bool = False
    overwrite: bool = False
    limit: int | None = None
    device: str | None = None
    threads: int | None = None
    export: str = ""
    progress: bool = True
    extra: list[str] = field(default_factory=list)


def trainers(registry: Any = None) -> dict[str, TrainerSpec]:
    """Every trainer registered by the loaded plugins, by name."""
    from ..registry import default_registry

    reg = registry or default_registry()
    found: dict[str, TrainerSpec] = {}
    for plugin, spec in reg.collect("register_trainers", check=_trainer_problem):
        found[spec.name] = TrainerSpec(spec.name, spec.run, spec.summary, plugin)
    return dict(sorted(found.items()))


def _trainer_problem(obj: Any) -> str:
    """Why a registration of ``register_trainers`` is refused (``""`` for a :class:`TrainerSpec`)."""
    return "" if isinstance(obj, TrainerSpec) else "not a TrainerSpec"


def get_trainer(name: str, registry: Any = None) -> TrainerSpec:
    """The trainer registered as ``name`` (or the only trainer of the plugin named ``name``)."""
    import difflib

    found = trainers(registry)
    if name in found:
        return found[name]
    by_plugin = [t for t in found.values() if t.plugin in (name, name.replace("-", "_"))]
    if len(by_plugin) == 1:
        return by_plugin[0]
    msg = f"no trainer named {name!r}"
    close = difflib.get_close_matches(name, list(found), n=3)
    if close:
        msg += f"; did you mean {', '.join(map(repr, close))}?"
    msg += f" Plugins with trainers: {', '.join(found) or 'none'} (see 'restorekit train --list')"
    raise UnknownRestorerError(msg)


def _request_parser(prog: str):
    """The common options handed to a trainer that declares none (as :class:`TrainRequest`)."""
    from .options import number_pair, OptionParser

    p = OptionParser(prog=prog, add_help=False)
    p.add_argument("--data")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--sigma", type=float)
    noise.add_argument("--sigma-range", type=number_pair)
    p.add_argument("--patch", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--out")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true")
    again.add_argument("--overwrite", action="store_true")
    p.add_argument("--limit", type=int)
    p.add_argument("--device")
    p.add_argument("--threads", type=int)
    p.add_argument("--export", default="")
    p.add_argument("--no-progress", action="store_true")
    return p


def run_request(spec: TrainerSpec, function: Callable[[TrainRequest], int], argv: list[str]) -> int:
    """Run a trainer that declares no options: the common ones as a :class:`TrainRequest`, the rest in ``extra``."""
    from .options import is_main_process, check_device_option, prepare_run_folder

    cut = argv.index("--") if "--" in argv else len(argv)
    args, unknown = _request_parser(f"restorekit train {spec.name}").parse_known_args(argv[:cut])
    for value, what in ((args.epochs, "--epochs"), (args.batch_size, "--batch-size"), (args.limit, "--limit")):
        if value is not None and value < 1:
            raise InputError(f"{what} must be at least 1, got {value}")
    if args.threads is not None and args.threads < 0:
        raise InputError(f"--threads must be at least 0 (0: torch's default), got {args.threads}")
    if args.lr is not None and not args.lr > 0:
        raise InputError(f"--lr must be positive, got {args.lr}")
    if args.sigma is not None:
        from ..checks import check_sigma

        check_sigma(args.sigma, what="--sigma")
    if args.device is not None:
        check_device_option(args.device, "--device")
    out = args.out or f"runs/{spec.name}"
    prepare_run_folder(out, resume=args.resume, overwrite=args.overwrite, is_main=is_main_process())
    request = TrainRequest(
        name=spec.name, data=args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        sigma=args.sigma, sigma_range=args.sigma_range, patch=args.patch, seed=args.seed,
        out=out, resume=args.resume, overwrite=args.overwrite, limit=args.limit, device=args.device,
        threads=args.threads, export=args.export, progress=not args.no_progress, extra=unknown + argv[cut + 1:],
    )
    return int(function(request) or 0)


__all__ = ["TrainRequest", "TrainerSpec", "get_trainer", "run_request", "trainers"]
