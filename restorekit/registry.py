"""Discovering plugins and building restorers by name.

The :class:`Registry` owns a pluggy ``PluginManager``. On first use it loads
every entry point of the group ``restorekit.plugins`` (restorekit's own
plugins are declared there exactly like third-party ones, and load first),
then the plugins added by hand. Each plugin is imported, checked and called
in its own ``try``:

* anything it raises while importing or registering (``SystemExit``
  included; ``KeyboardInterrupt`` is let through so Ctrl-C still
  interrupts) marks it failed; its code runs under
  :func:`restorekit.isolation.plugin_code`, so its ``print()`` goes to
  stderr (JSON on stdout stays valid) and an ``os._exit`` fails it with a
  message instead of ending the process;
* a function named like a hook but not marked ``@hookimpl`` (which pluggy
  ignores) gets a warning naming it and the fix;
* a plugin that declares a plugin API version (``RESTOREKIT_PLUGIN_API``,
  see :mod:`restorekit.hookspecs`) other than this restorekit's, or
  implements a hook restorekit does not know, fails without being called;
* each registration is checked (name, tasks, parameter declarations); a
  restorer name already registered by an earlier plugin fails only the
  second registration, naming both plugins;
* once every plugin has loaded, each named pipeline is checked: its steps
  must name registered restorers, its fixed step parameters must be valid,
  and its tasks, when not given, become its first step's.

Failures are recorded as :class:`PluginFailure` and shown by ``restorekit
plugins``, ``list`` and ``doctor`` while every other restorer keeps
working. ``RESTOREKIT_STRICT_PLUGINS=1`` turns failures into errors (for a
plugin author's own CI); ``RESTOREKIT_DISABLE_PLUGINS=a,b`` skips the named
plugins without importing them.

Nothing is loaded at ``import restorekit``: the default registry is created
by :func:`default_registry` on first use.
"""

from __future__ import annotations

import inspect
import os
import traceback
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs
from .errors import DuplicateRestorerError, ParameterError, PluginError, UnknownRestorerError
from .isolation import PluginExit, plugin_code
from .restorer import Param, Pipeline, Restorer, RestorerSpec, resolve_params, split_step_params, with_plugin

STRICT_ENV = "RESTOREKIT_STRICT_PLUGINS"
DISABLE_ENV = "RESTOREKIT_DISABLE_PLUGINS"
#: The distribution whose plugins load first (and so keep their names if a later plugin reuses one).
BUILTIN_DISTRIBUTION = "restorekit"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, or a registration of it that was refused.

    ``target`` says what failed: the entry point's target (an import), a
    hook (``register_restorers``), or one registration (``restorer 'x'``,
    ``pipeline 'y'``); ``details`` holds the traceback when there is one.
    """

    plugin: str
    target: str
    error: str
    details: str = ""

    def describe(self) -> dict:
        return {"plugin": self.plugin, "target": self.target, "error": self.error}


@dataclass(frozen=True)
class PluginInfo:
    """A plugin: its name, what it points to, the distribution that ships it, its version and hooks."""

    name: str
    target: str
    distribution: str = ""
    version: str = ""
    hooks: tuple[str, ...] = ()

    def describe(self) -> dict:
        return {"name": self.name, "target": self.target, "distribution": self.distribution,
                "version": self.version, "hooks": list(self.hooks)}


def strict_from_env() -> bool:
    """Whether ``RESTOREKIT_STRICT_PLUGINS`` asks for failures to be errors."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def disabled_from_env() -> frozenset[str]:
    """The plugin names listed in ``RESTOREKIT_DISABLE_PLUGINS`` (comma-separated)."""
    return frozenset(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())


def api_problem(plugin: Any) -> str:
    """Why ``plugin``'s declared plugin API version does not fit this restorekit, or ``""``."""
    declared = getattr(plugin, hookspecs.PLUGIN_API_ATTRIBUTE, None)
    if declared is None:
        return ""
    versions = declared if isinstance(declared, (tuple, list, set, frozenset)) else (declared,)
    if not versions or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in versions):
        return (f"{hookspecs.PLUGIN_API_ATTRIBUTE} = {declared!r} must be a version string such as "
                f"{hookspecs.PLUGIN_API_VERSION!r} or a tuple of them")
    if hookspecs.PLUGIN_API_VERSION in {str(v) for v in versions}:
        return ""
    wanted = ", ".join(str(v) for v in versions)
    return (f"written for restorekit plugin API {wanted}, but this restorekit provides "
            f"{hookspecs.PLUGIN_API_VERSION}; install a version of the plugin made for API "
            f"{hookspecs.PLUGIN_API_VERSION}, or a restorekit that provides {wanted}")


def _known_hooks() -> list[str]:
    return sorted(name for name in dir(hookspecs)
                  if callable(getattr(hookspecs, name)) and hasattr(getattr(hookspecs, name), "restorekit_spec"))


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
    disabled : iterable of str, optional
        Plugin names to skip (not imported, listed as disabled). Defaults to
        the ``RESTOREKIT_DISABLE_PLUGINS`` environment variable.

    Examples
    --------
    >>> from restorekit.registry import Registry
    >>> reg = Registry()
    >>> "wiener" in reg.names()  # doctest: +SKIP
    True
    """

    def __init__(self, entry_points: bool = True, strict: bool | None = None,
                 disabled: Iterable[str] | None = None) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.strict = strict_from_env() if strict is None else strict
        self._disabled_names = None if disabled is None else frozenset(disabled)
        self._use_entry_points = entry_points
        self._extra: list[tuple[str, Any]] = []
        self._specs: dict[str, RestorerSpec] | None = None
        self._failures: list[PluginFailure] = []
        self._plugins: list[PluginInfo] = []
        self._disabled: list[PluginInfo] = []
        self._unknown_disabled: list[str] = []

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins (or registrations) that failed (loads the plugins if not yet done)."""
        self._load()
        return self._failures

    @property
    def plugins(self) -> list[PluginInfo]:
        """Plugins that loaded, in load order (loads them if not yet done)."""
        self._load()
        return self._plugins

    @property
    def disabled(self) -> list[PluginInfo]:
        """Plugins skipped because ``RESTOREKIT_DISABLE_PLUGINS`` (or ``disabled=``) names them."""
        self._load()
        return self._disabled

    @property
    def unknown_disabled(self) -> list[str]:
        """Names in the disable list that match no installed plugin (a typo, usually)."""
        self._load()
        return self._unknown_disabled

    def version_of(self, plugin: str) -> str:
        """The version of the loaded plugin named ``plugin`` (``""`` when unknown)."""
        return next((p.version for p in self.plugins if p.name == plugin), "")

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

    def _fail(self, plugin: str, target: str, exc: BaseException | str,
              error_class: type[PluginError] = PluginError) -> None:
        if isinstance(exc, BaseException):
            error = f"{type(exc).__name__}: {exc}"
            details = "".join(traceback.format_exception(exc))
        else:
            error, details = exc, ""
        if self.strict:
            raise error_class(f"plugin {plugin!r} ({target}) failed: {error}")
        self._failures.append(PluginFailure(plugin, target, error, details))

    def _entry_points(self) -> list:
        """Entry points in load order: restorekit's own first, then the others by name."""
        def builtin(ep) -> bool:
            dist = getattr(ep, "dist", None)
            return dist is not None and dist.metadata["Name"] == BUILTIN_DISTRIBUTION

        eps = metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
        return sorted(eps, key=lambda ep: (not builtin(ep), ep.name))

    def _register(self, name: str, target: str, obtain, distribution: str, version: str) -> None:
        """Import (``obtain()``), check and register one plugin, recording a failure instead of raising."""
        try:
            with plugin_code(f"plugin {name!r} (import)"):  # print() to stderr, os._exit refused
                plugin = obtain()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: one plugin must not take the tool down
            self._fail(name, target, exc)
            return
        problem = api_problem(plugin)
        if problem:
            self._fail(name, target, problem)
            return
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - pluggy refuses a bad hook signature or a reused name
            self._fail(name, target, exc)
            return
        unknown = [c.name for c in self.manager.get_hookcallers(plugin) or []
                   if not c.has_spec() and not all(i.optionalhook for i in c.get_hookimpls())]
        if unknown:
            self.manager.unregister(plugin)
            self._fail(name, target, f"implements unknown hook{'s' if len(unknown) > 1 else ''} "
                                     f"{', '.join(unknown)}; restorekit's hooks are {', '.join(_known_hooks())} "
                                     "(check the spelling, or upgrade restorekit)")
            return
        _warn_unmarked_hooks(self.manager, plugin, name)
        hooks = tuple(sorted(c.name for c in self.manager.get_hookcallers(plugin) or []))
        version = version or str(getattr(plugin, "__version__", "") or "")
        self._plugins.append(PluginInfo(name, target, distribution, version, hooks))

    def _load(self) -> dict[str, RestorerSpec]:
        if self._specs is not None:
            return self._specs
        self._failures, self._plugins, self._disabled, self._unknown_disabled = [], [], [], []
        for name, _ in list(self.manager.list_name_plugin()):
            self.manager.unregister(name=name)
        disabled = disabled_from_env() if self._disabled_names is None else self._disabled_names
        seen: set[str] = set()

        candidates = []
        if self._use_entry_points:
            for ep in self._entry_points():
                dist = getattr(ep, "dist", None)
                candidates.append((ep.name, ep.value, ep.load, dist.metadata["Name"] if dist else "",
                                   dist.version if dist else ""))
        candidates += [(name, repr(plugin), (lambda p=plugin: p), "", "") for name, plugin in self._extra]
        for name, target, obtain, distribution, version in candidates:
            seen.add(name)
            if name in disabled:
                self._disabled.append(PluginInfo(name, target, distribution, version))
                continue
            self._register(name, target, obtain, distribution, version)
        self._unknown_disabled = sorted(disabled - seen)

        specs = self._collect_restorers()
        self._check_pipelines(specs)
        self._specs = dict(sorted(specs.items()))
        return self._specs

    def _collect(self, hook: str, plugin: str | None = None,
                 check: Callable[[Any], str] | None = None) -> list[tuple[str, Any]]:
        """What the loaded plugins register through ``hook``, as ``(plugin name, object)`` pairs in load order.

        Each plugin's implementation is called with a ``register`` callback. One that raises
        (``SystemExit`` too; Ctrl-C still interrupts) is recorded as a failure of its plugin and what
        it registered before raising is dropped; an object for which ``check(obj)`` returns a reason
        is recorded as a failure and left out. Only ``plugin``'s implementation when given.
        """
        caller = getattr(self.manager.hook, hook, None)
        impls = {i.plugin_name: i for i in caller.get_hookimpls()} if caller is not None else {}
        found: list[tuple[str, Any]] = []
        for info in list(self._plugins):
            impl = impls.get(info.name)
            if impl is None or (plugin is not None and info.name != plugin):
                continue
            collected: list[Any] = []
            try:
                with plugin_code(f"plugin {info.name!r} ({hook})"):
                    impl.function(register=collected.append)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit too: one plugin must not take the tool down
                self._fail(info.name, hook, exc)
                continue
            for obj in collected:
                problem = check(obj) if check is not None else ""
                if problem:
                    self._fail(info.name, hook, f"registered {obj!r}: {problem}")
                    continue
                found.append((info.name, obj))
        return found

    def collect(self, hook: str, plugin: str | None = None,
                check: Callable[[Any], str] | None = None) -> list[tuple[str, Any]]:
        """What the plugins register through the hook named ``hook``: ``(plugin name, object)`` pairs.

        Loads the plugins if not yet done, then calls each one's implementation of ``hook``
        (:mod:`restorekit.hookspecs`) in load order with a ``register`` callback. A plugin whose
        hook raises, and each object for which ``check(obj)`` returns a reason (a non-empty
        string), are recorded in :attr:`failures` (raised in strict mode) and left out.

        Parameters
        ----------
        hook : str
            A hook of :mod:`restorekit.hookspecs`, e.g. ``"register_trainers"``.
        plugin : str, optional
            Only this plugin's registrations.
        check : callable, optional
            ``check(obj) -> str``: why ``obj`` is not acceptable, or ``""``.

        Examples
        --------
        >>> from restorekit.registry import Registry
        >>> Registry(entry_points=False).collect("register_trainers")
        []
        """
        self._load()
        return self._collect(hook, plugin, check)

    def _collect_restorers(self) -> dict[str, RestorerSpec]:
        """Every loaded plugin's ``register_restorers`` in load order, keeping the valid registrations."""
        specs: dict[str, RestorerSpec] = {}
        for plugin, spec in self._collect("register_restorers", check=_spec_problem):
            spec = _as_spec(spec)
            problems = spec.problems()
            kind = "pipeline" if spec.steps else "restorer"
            if problems:
                self._fail(plugin, f"{kind} {spec.name!r}", "; ".join(problems))
                continue
            if spec.name in specs:
                other = specs[spec.name].plugin
                again = "registers it twice" if other == plugin else f"registers it after plugin {other!r}"
                self._fail(plugin, f"{kind} {spec.name!r}",
                           f"the name {spec.name!r} is taken: plugin {plugin!r} {again}; this registration "
                           f"is skipped and {other!r}'s is kept. Rename one of them, or disable one with "
                           f"{DISABLE_ENV}={plugin}", DuplicateRestorerError)
                continue
            specs[spec.name] = with_plugin(spec, plugin)
        return specs

    def _check_pipelines(self, specs: dict[str, RestorerSpec]) -> None:
        """Check every named pipeline against the registered restorers; fill in tasks from the first step."""
        state: dict[str, str] = {}  # name -> "checking" | "ok" | "failed"

        def problem_of(name: str) -> str:
            spec = specs[name]
            for step, fixed in spec.steps:
                if step not in specs:
                    import difflib

                    close = difflib.get_close_matches(step, [n for n in specs if n != name], n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    return f"step {step!r} is not a registered restorer{hint}"
                if state.get(step) == "checking":
                    return f"step {step!r} leads back to pipeline {name!r}"
                if not check(step):
                    return f"step {step!r} failed its own checks"
                step_spec = specs[step]
                if fixed and not step_spec.steps:
                    try:
                        resolve_params(step_spec.params, fixed, step)
                    except ParameterError as exc:
                        return f"the fixed parameters of step {step!r} are invalid: {exc}"
            return ""

        def check(name: str) -> bool:
            if not specs[name].steps or state.get(name) == "ok":
                return True
            if state.get(name) == "failed":
                return False
            state[name] = "checking"
            problem = problem_of(name)
            if problem:
                state[name] = "failed"
                self._fail(specs[name].plugin, f"pipeline {name!r}", problem)
                return False
            spec = specs[name]
            if not spec.tasks:
                specs[name] = replace(spec, tasks=specs[spec.steps[0][0]].tasks)
            state[name] = "ok"
            return True

        for name in [n for n, s in specs.items() if s.steps]:
            check(name)
        for name in [n for n, s in state.items() if s == "failed"]:
            del specs[name]

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

    def step_params(self, name: str) -> tuple[Param, ...]:
        """The parameters of pipeline ``name``'s steps as ``step.param`` with the pipeline's defaults.

        These are what ``--param step.param=value`` overrides; a step's
        fixed value is shown as its default. Empty for a restorer that is
        not a pipeline.
        """
        spec = self.get(name)
        found: list[Param] = []
        for step, fixed in spec.steps:
            inner = self.step_params(step) if self.get(step).steps else self.get(step).params
            found += [replace(p, name=f"{step}.{p.name}", default=fixed.get(p.name, p.default)) for p in inner]
        return tuple(found)

    def create(self, name: str, **params: Any) -> Restorer:
        """Build a restorer by name.

        A name registered exactly as given wins; otherwise ``"a+b"`` is read
        as a pipeline of ``a`` then ``b`` (parameters as ``a.param=value``).
        A named pipeline's steps are built by this registry. A factory whose
        signature has a ``registry`` parameter is given this registry, so a
        restorer built on others (``pnp`` and its denoiser) finds them where
        it was itself found, not in the process-wide registry. The restorer
        gets ``plugin_name`` and ``plugin_version`` from the plugin that
        registered it.
        """
        specs = self._load()
        if name not in specs and "+" in name:
            parts = [p.strip() for p in name.split("+")]
            if all(parts):
                return self.pipeline(*parts, params=params)
        spec = self.get(name)
        restorer = self._build_pipeline(spec, params) if spec.steps else self._build(spec, params)
        _stamp(restorer, spec.plugin, self.version_of(spec.plugin))
        return restorer

    def _build(self, spec: RestorerSpec, params: dict) -> Restorer:
        """``spec``'s factory called with the checked ``params`` (and this registry when it takes one)."""
        values = resolve_params(spec.params, params, spec.name)
        factory = spec.resolve_factory()
        if _takes_registry(factory):
            values["registry"] = self
        try:
            with plugin_code(f"restorer {spec.name!r} of plugin {spec.plugin!r} (building it)"):
                restorer = factory(**values)
        except PluginExit as exc:
            raise PluginError(str(exc)) from None
        if not isinstance(restorer, Restorer):
            raise PluginError(f"restorer {spec.name!r} of plugin {spec.plugin!r} built a "
                              f"{type(restorer).__name__}, not a restorekit.Restorer")
        return restorer

    def _build_pipeline(self, spec: RestorerSpec, params: dict) -> Pipeline:
        """A named pipeline: each step built by name here, its fixed parameters under the user's."""
        names = [n for n, _ in spec.steps]
        routed = split_step_params(names, params, spec.name)
        steps = [self.create(n, **{**fixed, **extra}) for (n, fixed), extra in zip(spec.steps, routed)]
        return Pipeline(steps, name=spec.name, tasks=spec.tasks or steps[0].tasks)

    def pipeline(self, *steps: str | Restorer, params: dict | None = None, name: str = "") -> Pipeline:
        """Chain restorers given by name (or as objects) into a :class:`Pipeline`."""
        names = [s if isinstance(s, str) else s.name for s in steps]
        routed = split_step_params(names, params or {}, name or "+".join(names))
        built = [self.create(s, **p) if isinstance(s, str) else s for s, p in zip(steps, routed)]
        return Pipeline(built, name=name)

    def op_checks(self, plugin: str | None = None) -> list[tuple[str, Any]]:
        """``(plugin name, spec)`` for each op check the plugins register (``register_op_checks``).

        Only ``plugin``'s when given. The specs are :class:`restorekit.testing.OpCheckSpec` objects
        (checked when they run); a plugin whose hook raises is recorded in :attr:`failures`.
        """
        return self.collect("register_op_checks", plugin)


def _warn_unmarked_hooks(manager: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """One warning per function named like a hook but not marked ``@hookimpl`` (pluggy ignores it silently)."""
    import warnings

    from .errors import RestorekitWarning

    for hook in _known_hooks():
        function = getattr(plugin, hook, None)
        if not callable(function) or manager.parse_hookimpl_opts(plugin, hook) is not None:
            continue
        try:
            where = inspect.getsourcefile(function) or "<plugin>", inspect.getsourcelines(function)[1]
        except (OSError, TypeError):
            where = "<plugin>", 0
        warnings.warn_explicit(
            f"plugin {name!r}: {hook}() is not marked @hookimpl, so restorekit ignores it; decorate it with "
            f"@restorekit.hookimpl (from restorekit import hookimpl)", RestorekitWarning, where[0], where[1])


def _stamp(restorer: Restorer, plugin: str, version: str) -> None:
    """Record on ``restorer`` the plugin that registered it (interface: plugin_name, plugin_version)."""
    try:
        restorer.plugin_name = plugin
        restorer.plugin_version = version
    except AttributeError:  # a restorer with read-only attributes of those names keeps its own
        pass


def _takes_registry(factory: Any) -> bool:
    """Whether ``factory`` declares a parameter named ``registry`` (then the registry passes itself)."""
    try:
        return "registry" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False


def _spec_problem(obj: Any) -> str:
    """Why a registered object cannot be a restorer spec, or ``""``."""
    spec = _as_spec(obj)
    return spec if isinstance(spec, str) else ""


def _as_spec(obj: Any) -> RestorerSpec | str:
    """The spec of a registered object, or why it cannot be one."""
    if isinstance(obj, RestorerSpec):
        return obj
    if isinstance(obj, type) and issubclass(obj, Restorer):
        try:
            return RestorerSpec.from_class(obj)
        except Exception as exc:  # noqa: BLE001 - e.g. tasks that are not a set of strings
            return f"its class attributes do not describe a restorer ({type(exc).__name__}: {exc})"
    return "it is neither a restorekit.Restorer subclass nor a RestorerSpec"


def _unknown_message(name: str, specs: dict, failures: Iterable[PluginFailure]) -> str:
    import difflib

    msg = f"no restorer named {name!r}"
    close = difflib.get_close_matches(name, list(specs), n=3)
    if close:
        msg += f"; did you mean {', '.join(map(repr, close))}?"
    msg += f" Known: {', '.join(specs) or 'none'}. Run 'restorekit list' to see them all"
    failed = list(dict.fromkeys(f.plugin for f in failures))
    if failed:
        msg += f" (plugins that failed to load: {', '.join(failed)}; see 'restorekit plugins')"
    return msg


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, created (and plugins loaded) on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry()
    return _DEFAULT
