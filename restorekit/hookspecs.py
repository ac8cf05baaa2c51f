"""The plugin contract: one pluggy hook through which plugins hand over restorers.

A plugin is any module (or object) with a function decorated by
:data:`hookimpl` named ``register_restorers``. restorekit calls it with a
``register`` callback; the plugin calls ``register(...)`` once for each
restorer it provides, passing either a :class:`restorekit.restorer.Restorer`
subclass or a :class:`restorekit.restorer.RestorerSpec` (the lazy form, whose
``factory`` may be a ``"module:attribute"`` string so that heavy imports wait
until the restorer is first built).

Plugins are found through the entry-point group ``restorekit.plugins``;
restorekit's own plugins are declared there too, so both take one path::

    # in the plugin's setup.py / pyproject.toml
    entry_points={"restorekit.plugins": ["myplugin = my_package.plugin"]}

    # my_package/plugin.py
    from restorekit import hookimpl

    @hookimpl
    def register_restorers(register):
        register(MyRestorer)
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "restorekit"
ENTRY_POINT_GROUP = "restorekit.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_restorers(register):  # pragma: no cover - a specification only
    """Register the plugin's restorers by calling ``register(obj)`` for each.

    ``obj`` is a :class:`~restorekit.restorer.Restorer` subclass or a
    :class:`~restorekit.restorer.RestorerSpec`. Pipelines are registered as
    specs built with :func:`restorekit.restorer.pipeline_spec`.
    """


@hookspec
def register_trainers(register):  # pragma: no cover - a specification only
    """Optional: register the plugin's trainers for ``restorekit train NAME``.

    Call ``register(TrainerSpec(name=..., run="package.module:function",
    summary=...))`` (see :mod:`restorekit.training.trainers`); ``run`` receives
    a :class:`~restorekit.training.trainers.TrainRequest` with the command's
    common options and the plugin's own options (after ``--``) and returns an
    exit status. Plugins without trainers simply do not implement this hook.
    """
