"""The extension point behind ``restorekit train PLUGIN``: plugins register trainers.

The command is thin: it parses the options every trainer shares into a
:class:`TrainRequest` and hands it to the trainer the plugin registered
through the optional ``register_trainers`` hook. The plugin decides what
training means (its datasets, model and defaults); options it alone knows
come after ``--`` in :attr:`TrainRequest.extra`. A plugin's trainer::

    # my_plugin/__init__.py
    from restorekit import hookimpl

    @hookimpl
    def register_trainers(register):
        from restorekit.training.trainers import TrainerSpec
        register(TrainerSpec(name="mynet", run="my_plugin.train:run_request",
                             summary="MyNet on image folders"))

    # my_plugin/train.py
    def run_request(req):            # req.data, req.epochs, ..., req.extra
        ...build datasets with restorekit.training, fit(...), save_model(...)
        return 0

Importing this module does not import torch (``restorekit list`` stays quick).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import PluginError, UnknownRestorerError


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
    """The options of ``restorekit train``; ``None`` means "the trainer's default".

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
    reg.specs()  # loads the plugins
    hook = getattr(reg.manager.hook, "register_trainers", None)
    found: dict[str, TrainerSpec] = {}
    if hook is None:
        return found
    for impl in hook.get_hookimpls():
        collected: list[TrainerSpec] = []
        try:
            impl.function(register=collected.append)
        except Exception as exc:  # noqa: BLE001 - one plugin must not take the command down
            reg._fail(impl.plugin_name, "register_trainers", exc)
            continue
        for spec in collected:
            if not isinstance(spec, TrainerSpec):
                reg._fail(impl.plugin_name, "register_trainers", f"registered {spec!r}, not a TrainerSpec")
                continue
            found[spec.name] = TrainerSpec(spec.name, spec.run, spec.summary, impl.plugin_name)
    return dict(sorted(found.items()))


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


__all__ = ["TrainRequest", "TrainerSpec", "get_trainer", "trainers"]
