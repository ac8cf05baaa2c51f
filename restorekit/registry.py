"""Discovering plugins and building restorers by name.

The :class:`Registry` owns a pluggy ``PluginManager``. On first use it loads
every entry point of the group ``restorekit.plugins`` (restorekit's own
plugins are declared there exactly like third-party ones), each in its own
``try``: a plugin that fails to import, or registers something invalid, is
recorded as a :class:`PluginFailure` and shown by ``restorekit list`` and
``restorekit doctor`` while the others keep working. Set the environment
variable ``RESTOREKIT_STRICT_PLUGINS=1`` to turn such failures into errors
(useful in a plugin author's own CI).

Nothing is loaded at ``import restorekit``: the default registry is created
by :func:`default_registry` on first use.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import DuplicateRestorerError, PluginError, UnknownRestorerError
from .restorer import Pipeline, Restorer, RestorerSpec, with_plugin

STRICT_ENV = "RESTOREKIT_STRICT_PLUGINS"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used: its name, what it points to, and why."""

    plugin: str
    target: str
    error: str
    details: str = ""

    def describe(self) -> dict:
        return {"plugin": self.plugin, "target": self.target, "error": self.error}


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name, the distribution that ships it and its version."""

    name: str
    target: str
    distribution: str = ""
    version: str = ""


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Registry:
    """Restorers contributed by plugins, built by name.

    Parameters
    ----------
    entry_points : bool
        Load the plugins declared in the ``restorekit.plugins`` entry-point
        group (default). Tests pass ``False`` and add plugins by hand.
    strict : bool, optional
        Raise on a failing plugin instead of recording it. Defaults to the
        ``RESTOREKIT_STRICT_PLUGINS`` environment variable.

    Examples
    --------
    >>> from restorekit.registry import Registry
    >>> reg = Registry()
    >>> "wiener" in reg.names()  # doctest: +SKIP
    True
    """

    def __init__(self, entry_points: bool = True, strict: bool | None = None) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.strict = strict_from_env() if strict is None else strict
        self._use_entry_points = entry_points
        self._extra: list[tuple[str, Any]] = []
        self._specs: dict[str, RestorerSpec] | None = None
        self._failures: list[PluginFailure] = []
        self._plugins: list[PluginInfo] = []

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to load or register (loads the plugins if not yet done)."""
        self._load()
        return self._failures

    @property
    def plugins(self) -> list[PluginInfo]:
        """Plugins that loaded (loads them if not yet done)."""
        self._load()
        return self._plugins

    # ------------------------------------------------------------------ loading
    def add_plugin(self, plugin: Any, name: str | None = None) -> None:
        """Add a plugin object or module by hand (as tests and notebooks do)."""
        self._extra.append((name or getattr(plugin, "__name__", repr(plugin)), plugin))
        self._specs = None

    def remove_plugin(self, name: str) -> None:
        """Remove a plugin added with :meth:`add_plugin`."""
        self._extra = [(n, p) for n, p in self._extra if n != name]
        if self.manager.has_plugin(name):
            self.manager.unregister(name=name)
        self._specs = None

    def reload(self) -> None:
        """Forget what was loaded; the next query loads the plugins again."""
        for name, _ in list(self.manager.list_name_plugin()):
            self.manager.unregister(name=name)
        self._specs = None

    def _fail(self, plugin: str, target: str, exc: BaseException | str) -> None:
        if isinstance(exc, BaseException):
            error = f"{type(exc).__name__}: {exc}"
            details = "".join(traceback.format_exception(exc))
        else:
            error, details = exc, ""
        if self.strict:
            raise PluginError(f"plugin {plugin!r} ({target}) failed: {error}")
        self._failures.append(PluginFailure(plugin, target, error, details))

    def _load(self) -> dict[str, RestorerSpec]:
        if self._specs is not None:
            return self._specs
        self._failures = []
        self._plugins = []
        for name, _ in list(self.manager.list_name_plugin()):
            self.manager.unregister(name=name)

        if self._use_entry_points:
            for ep in sorted(metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name):
                try:
                    module = ep.load()
                    self.manager.register(module, name=ep.name)
                except Exception as exc:  # noqa: BLE001 - one plugin must not take the tool down
                    self._fail(ep.name, ep.value, exc)
                    continue
                dist = getattr(ep, "dist", None)
                self._plugins.append(
                    PluginInfo(ep.name, ep.value, dist.metadata["Name"] if dist else "", dist.version if dist else "")
                )
        for name, plugin in self._extra:
            try:
                self.manager.register(plugin, name=name)
            except Exception as exc:  # noqa: BLE001
                self._fail(name, repr(plugin), exc)
                continue
            self._plugins.append(PluginInfo(name, repr(plugin)))

        specs: dict[str, RestorerSpec] = {}
        for impl in self.manager.hook.register_restorers.get_hookimpls():
            plugin_name = impl.plugin_name
            collected: list[RestorerSpec] = []

            def register(obj: Any, _into: list = collected, _plugin: str = plugin_name) -> None:
                _into.append(_as_spec(obj, _plugin))

            try:
                impl.function(register=register)
            except Exception as exc:  # noqa: BLE001
                self._fail(plugin_name, "register_restorers", exc)
                continue
            for spec in collected:
                problems = spec.problems()
                if problems:
                    self._fail(plugin_name, f"restorer {spec.name!r}", "; ".join(problems))
                    continue
                if spec.name in specs:
                    other = specs[spec.name].plugin
                    raise DuplicateRestorerError(
                        f"two plugins register a restorer named {spec.name!r}: {other!r} and {plugin_name!r}; "
                        f"uninstall or rename one of them"
                    )
                specs[spec.name] = with_plugin(spec, plugin_name)
        self._specs = dict(sorted(specs.items()))
        return self._specs

    # ------------------------------------------------------------------ queries
    def specs(self, task: str | None = None, standalone_only: bool = False) -> list[RestorerSpec]:
        """Every registered restorer's spec, sorted by name; only ``task``'s if given.

        ``standalone_only`` leaves out restorers registered as pipeline steps only
        (``RestorerSpec.standalone=False``), as automatic method choices do.
        """
        return [s for s in self._load().values()
                if (task is None or task in s.tasks) and (s.standalone or not standalone_only)]

    def names(self, task: str | None = None, standalone_only: bool = False) -> list[str]:
        return [s.name for s in self.specs(task, standalone_only)]

    def get(self, name: str) -> RestorerSpec:
        specs = self._load()
        if name not in specs:
            raise UnknownRestorerError(_unknown_message(name, specs, self._failures))
        return specs[name]

    def create(self, name: str, **params: Any) -> Restorer:
        """Build a restorer by name.

        A name registered exactly as given wins; otherwise ``"a+b"`` is read
        as a pipeline of ``a`` then ``b`` (parameters as ``a.param=value``).
        """
        specs = self._load()
        if name in specs:
            return specs[name].build(self, params)
        if "+" in name:
            parts = [p.strip() for p in name.split("+")]
            if all(parts):
                return self.pipeline(*parts, params=params)
        return self.get(name).build(self, params)

    def pipeline(self, *steps: str | Restorer, params: dict | None = None, name: str = "") -> Pipeline:
        """Chain restorers given by name (or as objects) into a :class:`Pipeline`."""
        from .restorer import split_step_params

        names = [s if isinstance(s, str) else s.name for s in steps]
        routed = split_step_params(names, params or {}, name or "+".join(names))
        built = [self.create(s, **p) if isinstance(s, str) else s for s, p in zip(steps, routed)]
        return Pipeline(built, name=name)


def _as_spec(obj: Any, plugin: str) -> RestorerSpec:
    if isinstance(obj, RestorerSpec):
        return obj
    if isinstance(obj, type) and issubclass(obj, Restorer):
        return RestorerSpec.from_class(obj)
    # A spec that will be refused with a clear reason.
    return RestorerSpec(name=repr(obj), tasks=frozenset(), factory=None, plugin=plugin)


def _unknown_message(name: str, specs: dict, failures: Iterable[PluginFailure]) -> str:
    import difflib

    msg = f"no restorer named {name!r}"
    close = difflib.get_close_matches(name, list(specs), n=3)
    if close:
        msg += f"; did you mean {', '.join(map(repr, close))}?"
    msg += f" Known: {', '.join(specs) or 'none'}. Run 'restorekit list' to see them all"
    failed = [f.plugin for f in failures]
    if failed:
        msg += f" (plugins that failed to load: {', '.join(failed)}; see 'restorekit doctor')"
    return msg


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, created (and plugins loaded) on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry()
    return _DEFAULT
