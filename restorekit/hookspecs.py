"""The plugin contract: the pluggy hooks through which plugins hand restorekit what they provide.

A plugin is any module (or object) with functions decorated by
:data:`hookimpl` and named after the hooks below. Each hook receives a
``register`` callback; the plugin calls it once for each thing it provides.
A plugin implements only the hooks it needs.

================================  ==========================================================
hook                              what the plugin registers
================================  ==========================================================
:func:`register_restorers`        restorers and named pipelines (``restorekit list``)
:func:`register_trainers`         trainers for ``restorekit train NAME``
:func:`register_op_checks`        checks of compiled ops for ``restorekit gradcheck --plugin NAME``
================================  ==========================================================

Plugins are found through the entry-point group ``restorekit.plugins``;
restorekit's own plugins are declared there too, so both take one path::

    # in the plugin's pyproject.toml
    [project.entry-points."restorekit.plugins"]
    myplugin = "my_package.plugin"

    # my_package/plugin.py
    from restorekit import hookimpl

    RESTOREKIT_PLUGIN_API = "1"      # optional: the plugin API this plugin was written for

    @hookimpl
    def register_restorers(register):
        register(MyRestorer)

**The plugin API version.** A plugin may declare the version of this
contract it was written for with a module (or object) attribute
``RESTOREKIT_PLUGIN_API`` (:data:`PLUGIN_API_ATTRIBUTE`): a string such as
``"1"``, or a tuple of the versions it supports. restorekit provides
:data:`PLUGIN_API_VERSION`; a plugin that declares none of it is reported as
failed (``restorekit plugins``) without its hooks being called, so an old
plugin cannot misbehave under a changed contract. A plugin that declares
nothing is assumed to fit the current version. The version changes only
when a hook's signature or meaning changes incompatibly; new hooks do not
change it.

**Isolation.** Each plugin is imported, checked and called in its own
``try``: anything it raises (``SystemExit`` included; Ctrl-C still
interrupts) marks that plugin failed while the others keep working, and a
restorer name that another plugin already registered fails only the
second registration. ``RESTOREKIT_STRICT_PLUGINS=1`` turns failures into
errors; ``RESTOREKIT_DISABLE_PLUGINS=a,b`` skips plugins by name without
importing them. See :mod:`restorekit.registry`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Union

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .restorer import Restorer, RestorerSpec

# TrainerSpec (restorekit.training.trainers) and OpCheckSpec (restorekit.testing.ops) are named in
# strings only: those modules sit to the right of the registry, which imports this module, and
# importing them here (even for type checkers) would close a circle (tests/test_import_graph.py).

PROJECT_NAME = "restorekit"
ENTRY_POINT_GROUP = "restorekit.plugins"

#: The version of the plugin contract this restorekit provides (see the module docstring).
PLUGIN_API_VERSION = "1"
#: The module or object attribute through which a plugin declares the plugin API it needs.
PLUGIN_API_ATTRIBUTE = "RESTOREKIT_PLUGIN_API"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: What ``register_restorers``'s callback accepts.
RestorerLike = Union["type[Restorer]", "RestorerSpec"]


@hookspec
def register_restorers(register: Callable[[RestorerLike], None]) -> None:  # pragma: no cover - a specification
    """Register the plugin's restorers and named pipelines.

    Parameters
    ----------
    register : callable
        ``register(obj) -> None``, called once per restorer. ``obj`` is a
        :class:`~restorekit.restorer.Restorer` subclass (its class
        attributes ``name``, ``tasks``, ``params`` and ``summary`` describe
        it) or a :class:`~restorekit.restorer.RestorerSpec`, the lazy form
        whose ``factory`` may be a ``"module:attribute"`` string so that heavy
        imports wait until the restorer is first built. A named pipeline is
        a spec made by :func:`restorekit.restorer.pipeline_spec`.

    Notes
    -----
    Each registration is checked when it is made: the name (no spaces,
    unique across plugins), the tasks (a subset of
    :data:`restorekit.restorer.TASKS`), the parameter declarations (unique
    names, defaults inside their bounds and choices). A pipeline's steps
    must name registered restorers and its fixed step parameters must be
    valid for them; its tasks, when not given, are its first step's. A
    registration that fails a check is reported as a failure of this
    plugin (``restorekit plugins``); the plugin's other registrations
    still count.

    Examples
    --------
    >>> from restorekit import Param, Restorer, RestorerSpec, hookimpl, pipeline_spec
    >>> class Median(Restorer):
    ...     name = "median"
    ...     tasks = frozenset({"denoise"})
    ...     params = (Param("size", 3, "window side in pixels", low=1, high=31),)
    ...     def restore(self, image, degradation=None):
    ...         return image
    >>> @hookimpl
    ... def register_restorers(register):
    ...     register(Median)
    ...     register(RestorerSpec(name="lazy-median", tasks={"denoise"}, params=Median.params,
    ...                           factory="my_package.median:Median"))
    ...     register(pipeline_spec("median+wiener", ["median", ("wiener", {"snr": "auto"})],
    ...                            tasks={"deblur"}))
    """


@hookspec
def register_trainers(  # pragma: no cover - a specification
    register: Callable[["restorekit.training.trainers.TrainerSpec"], None],
) -> None:
    """Register the plugin's trainers, run by ``restorekit train NAME``.

    Parameters
    ----------
    register : callable
        ``register(spec) -> None``, called once per trainer with a
        :class:`~restorekit.training.trainers.TrainerSpec`. Its ``run`` is a
        callable or a ``"module:attribute"`` string (imported only when the
        trainer runs) returning an exit status: best a function made with
        :func:`restorekit.training.options.trainer`, whose options dataclass
        is its command line (``restorekit train NAME --help``) and which gets
        ``(options, run)``; a plain function gets a
        :class:`~restorekit.training.trainers.TrainRequest` (the command's
        common options, the rest in ``request.extra``).

    Notes
    -----
    Optional: plugins without trainers do not implement this hook. A
    registration that is not a ``TrainerSpec`` is reported as a failure of
    the plugin.

    Examples
    --------
    >>> from restorekit import hookimpl
    >>> @hookimpl
    ... def register_trainers(register):
    ...     from restorekit.training.trainers import TrainerSpec
    ...     register(TrainerSpec(name="mynet", run="my_package.train:run_request",
    ...                          summary="MyNet on image folders"))
    """


@hookspec
def register_op_checks(  # pragma: no cover - a specification
    register: Callable[["restorekit.testing.OpCheckSpec"], None],
) -> None:
    """Register the checks of the plugin's compiled ops, run by ``restorekit gradcheck --plugin NAME``.

    Parameters
    ----------
    register : callable
        ``register(spec) -> None``, called once per op with a
        :class:`~restorekit.testing.OpCheckSpec`: a name, the op, a trusted
        reference implementation and a ``samples(dtype, device)`` function
        (each may be a ``"module:attribute"`` string, imported only when the
        checks run), plus an optional ``setup`` (e.g. the loader of the
        plugin's extension), devices, dtypes and options of
        :func:`restorekit.testing.check_op`.

    Notes
    -----
    Optional: plugins without compiled ops do not implement this hook.
    ``restorekit gradcheck`` without ``--plugin`` runs every plugin's op
    checks; restorekit's own ops are registered through this hook too (by
    the built-in ``mlp_inpaint`` plugin, which is built on them). In a test
    suite the same checks run with :func:`restorekit.testing.check_op` or
    :func:`restorekit.testing.parametrize_op_checks`.

    Examples
    --------
    >>> from restorekit import hookimpl
    >>> @hookimpl
    ... def register_op_checks(register):
    ...     from restorekit.testing import OpCheckSpec
    ...     register(OpCheckSpec(name="myplugin::scale", op="torch.ops.myplugin.scale.default",
    ...                          reference="my_package.reference:scale",
    ...                          samples="my_package.reference:samples",
    ...                          setup="my_package:load_extension"))
    """
