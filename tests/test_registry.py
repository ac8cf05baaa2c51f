"""The plugin registry: plugins by hand and by entry point, broken plugins reported, strict mode, duplicates."""

from __future__ import annotations

import subprocess
import sys
import types
from importlib import metadata

import pytest
import torch

import restorekit.registry as registry_module
from restorekit import Param, RestorerSpec, hookimpl
from restorekit.errors import DuplicateRestorerError, ParameterError, PluginError, UnknownRestorerError
from restorekit.registry import STRICT_ENV, Registry
from restorekit.restorer import Restorer


class Halve(Restorer):
    """Multiplies the image by a factor."""

    name = "halve"
    tasks = frozenset({"denoise"})
    params = (Param("factor", 0.5, "the factor"),)

    def restore(self, image, degradation=None):
        return image * self.config["factor"]


class GoodPlugin:
    @hookimpl
    def register_restorers(self, register):
        register(Halve)
        register(RestorerSpec(name="lazy-halve", tasks={"denoise"}, params=Halve.params, factory=f"{__name__}:Halve",
                              summary="lazy"))


class RaisingPlugin:
    @hookimpl
    def register_restorers(self, register):
        raise RuntimeError("the plugin's own bug")


class InvalidPlugin:
    @hookimpl
    def register_restorers(self, register):
        register(RestorerSpec(name="bad tasks", tasks={"sharpen"}, factory=Halve))
        register(object())
        register(RestorerSpec(name="fine", tasks={"deblur"}, factory=Halve))


class TwinPlugin:
    @hookimpl
    def register_restorers(self, register):
        register(Halve)


def _registry(*plugins, strict=False):
    reg = Registry(entry_points=False, strict=strict)
    for name, plugin in plugins:
        reg.add_plugin(plugin, name=name)
    return reg


def test_a_plugin_added_by_hand_is_used_and_removed():
    reg = _registry(("good", GoodPlugin()))
    assert reg.names() == ["halve", "lazy-halve"]
    assert reg.get("halve").plugin == "good" and reg.get("lazy-halve").summary == "lazy"
    x = torch.ones(1, 1, 2, 2)
    assert torch.equal(reg.create("lazy-halve", factor=0.25)(x), x * 0.25)
    assert reg.names("deblur") == [] and reg.names("denoise") == ["halve", "lazy-halve"]
    reg.remove_plugin("good")
    assert reg.names() == []


def test_parameters_are_checked_by_name():
    reg = _registry(("good", GoodPlugin()))
    with pytest.raises(ParameterError, match="unknown parameter 'factr' of 'halve'; it takes: factor"):
        reg.create("halve", factr=2)
    with pytest.raises(ParameterError, match="'factor' of 'halve' got 'big'"):
        reg.create("halve", factor="big")


def test_broken_plugins_are_reported_while_others_keep_working():
    reg = _registry(("good", GoodPlugin()), ("raising", RaisingPlugin()), ("invalid", InvalidPlugin()))
    assert reg.names() == ["fine", "halve", "lazy-halve"]
    failures = {(f.plugin, f.error) for f in reg.failures}
    assert any(p == "raising" and "the plugin's own bug" in e for p, e in failures)
    assert any(p == "invalid" and "must be a non-empty subset" in e for p, e in failures)
    assert any(p == "invalid" and "neither a restorekit.Restorer subclass nor a RestorerSpec" in e for p, e in failures)
    with pytest.raises(UnknownRestorerError, match="plugins that failed to load: .*raising"):
        reg.get("missing")


def _fake_entry_points(monkeypatch, extra):
    real = metadata.entry_points(group="restorekit.plugins")

    def entry_points(group):
        assert group == "restorekit.plugins"
        return list(real) + extra

    monkeypatch.setattr(registry_module, "metadata", types.SimpleNamespace(entry_points=entry_points))


def test_an_entry_point_that_fails_to_import_is_reported(monkeypatch):
    broken = metadata.EntryPoint(name="broken", value="restorekit_no_such_module_x", group="restorekit.plugins")
    _fake_entry_points(monkeypatch, [broken])
    reg = Registry(strict=False)  # the recorded, non-strict behaviour, whatever CI sets
    assert "wiener" in reg.names()  # the built-in plugins still load
    failure = next(f for f in reg.failures if f.plugin == "broken")
    assert failure.target == "restorekit_no_such_module_x" and "ModuleNotFoundError" in failure.error
    assert "Traceback" in failure.details
    assert all(p.name != "broken" for p in reg.plugins)


def test_entry_point_plugins_carry_their_distribution():
    reg = Registry()
    reg.names()  # plugins load on the first query
    info = next(p for p in reg.plugins if p.name == "wiener")
    assert info.distribution == "restorekit" and info.version


def test_strict_mode_from_the_environment_turns_failures_into_errors(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    reg = Registry(entry_points=False)
    reg.add_plugin(GoodPlugin(), name="good")
    reg.add_plugin(RaisingPlugin(), name="raising")
    with pytest.raises(PluginError, match="plugin 'raising'.*the plugin's own bug"):
        reg.names()
    monkeypatch.setenv(STRICT_ENV, "0")
    assert _registry(("raising", RaisingPlugin())).names() == []


def test_strict_mode_for_a_failing_entry_point(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "yes")
    broken = metadata.EntryPoint(name="broken", value="restorekit_no_such_module_x", group="restorekit.plugins")
    _fake_entry_points(monkeypatch, [broken])
    with pytest.raises(PluginError, match="'broken'"):
        Registry().names()


def test_a_duplicate_name_fails_the_second_plugin_only():
    reg = _registry(("first-plugin", GoodPlugin()), ("second-plugin", TwinPlugin()), ("other", InvalidPlugin()))
    assert reg.names() == ["fine", "halve", "lazy-halve"]  # every other restorer keeps working
    assert reg.get("halve").plugin == "first-plugin"
    clash = next(f for f in reg.failures if f.plugin == "second-plugin")
    assert clash.target == "restorer 'halve'"
    assert "plugin 'second-plugin' registers it after plugin 'first-plugin'" in clash.error
    assert "RESTOREKIT_DISABLE_PLUGINS=second-plugin" in clash.error


def test_a_duplicate_name_is_an_error_in_strict_mode():
    reg = _registry(("first-plugin", GoodPlugin()), ("second-plugin", TwinPlugin()), strict=True)
    with pytest.raises(DuplicateRestorerError, match="plugin 'second-plugin' registers it after plugin 'first-plugin'"):
        reg.names()


def test_a_plugin_registering_one_name_twice_fails_that_registration():
    class Twice:
        @hookimpl
        def register_restorers(self, register):
            register(Halve)
            register(Halve)

    reg = _registry(("twice", Twice()))
    assert reg.names() == ["halve"]
    assert "plugin 'twice' registers it twice" in reg.failures[0].error


def test_building_a_lazy_factory_that_fails_names_the_plugin():
    class Plugin:
        @hookimpl
        def register_restorers(self, register):
            register(RestorerSpec(name="ghost", tasks={"denoise"}, factory="restorekit_no_such_module_y:Ghost"))

    reg = _registry(("ghost-plugin", Plugin()))
    assert reg.names() == ["ghost"]  # registering does not import the factory
    with pytest.raises(PluginError, match="'ghost' of plugin 'ghost-plugin' could not load"):
        reg.create("ghost")


def test_a_factory_that_builds_no_restorer_is_refused():
    class Plugin:
        @hookimpl
        def register_restorers(self, register):
            register(RestorerSpec(name="liar", tasks={"denoise"}, factory=lambda: object()))

    with pytest.raises(PluginError, match="built a object, not a restorekit.Restorer"):
        _registry(("liar-plugin", Plugin())).create("liar")


def test_unknown_names_suggest_close_ones():
    reg = _registry(("good", GoodPlugin()))
    with pytest.raises(UnknownRestorerError, match="did you mean 'halve'"):
        reg.create("halv")


def test_import_restorekit_loads_no_plugin():
    code = (
        "import sys, restorekit; restorekit.Param; "
        "print(any(m.startswith('restorekit_plugins') for m in sys.modules), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


class StepOnly(Halve):
    """A restorer meant to follow another one."""

    name = "halve-step"
    standalone = False


class StepPlugin:
    @hookimpl
    def register_restorers(self, register):
        register(Halve)
        register(StepOnly)
        register(RestorerSpec(name="lazy-step", tasks={"denoise"}, params=Halve.params,
                              factory=f"{__name__}:Halve", standalone=False))


def test_pipeline_steps_are_listed_and_built_but_not_chosen_automatically(capsys, monkeypatch):
    from restorekit.bench import _method_list, run_benchmark
    from restorekit.cli import list_cmd

    reg = _registry(("steps", StepPlugin()))
    assert reg.names("denoise") == ["halve", "halve-step", "lazy-step"]
    assert reg.names("denoise", standalone_only=True) == ["halve"]
    assert reg.get("halve-step").standalone is False and reg.get("halve").standalone is True
    assert reg.get("lazy-step").describe()["standalone"] is False
    x = torch.ones(1, 1, 2, 2)
    assert torch.equal(reg.create("halve-step")(x), x * 0.5)
    assert _method_list(None, reg, "denoise") == ["halve"]
    assert _method_list("halve,lazy-step", reg, "denoise") == ["halve", "lazy-step"]  # named: it runs
    clean = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    result = run_benchmark({"a": clean}, "denoise", sigmas=[0.05], progress=False, registry=reg)
    assert result.methods() == ["halve"]

    monkeypatch.setattr(registry_module, "default_registry", lambda: reg)
    import argparse
    import json

    list_cmd.run(argparse.Namespace(task=None, json=True))
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)["restorers"]}
    assert listed["halve-step"]["standalone"] is False and listed["halve"]["standalone"] is True
    list_cmd.run(argparse.Namespace(task=None, json=False))
    text = capsys.readouterr().out
    assert "halve-step  [denoise]  (plugin: steps)  (pipeline step" in text
    assert "halve  [denoise]  (plugin: steps)\n" in text


def test_the_shipped_unet_wiener_is_a_pipeline_step():
    from restorekit.registry import default_registry

    reg = default_registry()
    if "unet-wiener" not in reg.names():
        pytest.skip("the built-in plugins are not installed")
    assert reg.get("unet-wiener").standalone is False
    assert "unet-wiener" not in reg.names("denoise", standalone_only=True)
    assert "dncnn" in reg.names("denoise", standalone_only=True)
    from restorekit.bench import _method_list

    auto = _method_list(None, reg, "denoise")  # what `restorekit demo` and `bench --task denoise` run
    assert "unet-wiener" not in auto and "dncnn" in auto
    assert _method_list("unet-wiener", reg, "denoise") == ["unet-wiener"]  # named explicitly: it runs


# --------------------------------------------------------------------------- isolation and control
def _only_entry_points(monkeypatch, tmp_path, modules: dict[str, str]):
    """Entry points (and nothing else) for modules written to ``tmp_path``: name -> source."""
    for name, source in modules.items():
        (tmp_path / f"rk_test_{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [metadata.EntryPoint(name=n, value=f"rk_test_{n}", group="restorekit.plugins") for n in modules]
    monkeypatch.setattr(registry_module, "metadata", types.SimpleNamespace(entry_points=lambda group: eps))


GOOD_MODULE = f"""
from restorekit import hookimpl
from {__name__} import Halve

@hookimpl
def register_restorers(register):
    register(Halve)
"""


@pytest.mark.parametrize("raises, shown", [
    ("import sys; sys.exit(3)", "SystemExit: 3"),
    ("raise SystemExit('bye')", "SystemExit: bye"),
    ("raise MemoryError('huge')", "MemoryError: huge"),
    ("import no_such_module_rk_z", "ModuleNotFoundError"),
])
def test_anything_raised_at_import_fails_only_that_plugin(monkeypatch, tmp_path, raises, shown):
    _only_entry_points(monkeypatch, tmp_path, {"bad": raises, "good": GOOD_MODULE})
    reg = Registry(strict=False, disabled=())
    assert reg.names() == ["halve"]
    (failure,) = reg.failures
    assert failure.plugin == "bad" and shown in failure.error
    assert [p.name for p in reg.plugins] == ["good"]


def test_ctrl_c_at_import_still_interrupts(monkeypatch, tmp_path):
    _only_entry_points(monkeypatch, tmp_path, {"bad": "raise KeyboardInterrupt", "good": GOOD_MODULE})
    with pytest.raises(KeyboardInterrupt):
        Registry(strict=False, disabled=()).names()


def test_sys_exit_inside_the_hook_fails_only_that_plugin():
    class Exiting:
        @hookimpl
        def register_restorers(self, register):
            raise SystemExit(1)

    reg = _registry(("exits", Exiting()), ("good", GoodPlugin()))
    assert reg.names() == ["halve", "lazy-halve"]
    assert reg.failures[0].plugin == "exits" and reg.failures[0].target == "register_restorers"


def test_disabled_plugins_are_not_imported_and_listed(monkeypatch, tmp_path):
    _only_entry_points(monkeypatch, tmp_path, {"bad": "raise RuntimeError('never imported')", "good": GOOD_MODULE})
    monkeypatch.setenv(registry_module.DISABLE_ENV, " bad , typo")
    reg = Registry(strict=True)  # strict: the disabled plugin is no failure
    assert reg.names() == ["halve"] and reg.failures == []
    assert [p.name for p in reg.disabled] == ["bad"] and reg.unknown_disabled == ["typo"]
    assert "rk_test_bad" not in sys.modules
    assert Registry(strict=False, disabled=["good", "bad"]).names() == []


def test_plugin_api_version_mismatch_is_a_failure(monkeypatch, tmp_path):
    from restorekit.hookspecs import PLUGIN_API_VERSION

    _only_entry_points(monkeypatch, tmp_path, {
        "future": "RESTOREKIT_PLUGIN_API = '99'\n" + GOOD_MODULE,
        "current": f"RESTOREKIT_PLUGIN_API = ({PLUGIN_API_VERSION!r}, '2')\n"
                   + GOOD_MODULE.replace("register(Halve)", "register(Halve.__mro__[0]) if False else None"),
        "junk": "RESTOREKIT_PLUGIN_API = 1.5\n",
    })
    reg = Registry(strict=False, disabled=())
    assert reg.names() == []  # the future plugin's hook was never called
    errors = {f.plugin: f.error for f in reg.failures}
    assert set(errors) == {"future", "junk"}
    assert f"written for restorekit plugin API 99, but this restorekit provides {PLUGIN_API_VERSION}" in errors["future"]
    assert "must be a version string" in errors["junk"]
    assert [p.name for p in reg.plugins] == ["current"]


def test_an_unknown_hook_name_is_a_failure():
    class Typo:
        @hookimpl
        def register_restorer(self, register):  # missing the final 's'
            register(Halve)

    reg = _registry(("typo", Typo()), ("good", GoodPlugin()))
    assert reg.names() == ["halve", "lazy-halve"]
    assert "implements unknown hook register_restorer; restorekit's hooks are" in reg.failures[0].error


def test_plugins_record_their_hooks_and_built_restorers_their_plugin():
    module = types.ModuleType("rk_versioned")
    module.__version__ = "2.3"
    module.register_restorers = GoodPlugin().register_restorers
    module.register_restorers = hookimpl(lambda register: register(Halve))
    reg = _registry(("versioned", module))
    assert reg.plugins[0].hooks == ("register_restorers",) and reg.plugins[0].version == "2.3"
    restorer = reg.create("halve")
    assert (restorer.plugin_name, restorer.plugin_version) == ("versioned", "2.3")


def test_builtin_plugins_load_first_so_a_third_party_clash_fails_the_third_party(monkeypatch):
    clash = metadata.EntryPoint(name="aaa-clash", value="restorekit_plugins.wiener", group="restorekit.plugins")
    _fake_entry_points(monkeypatch, [clash])
    reg = Registry(strict=False, disabled=())
    assert reg.get("wiener").plugin == "wiener"
    assert any(f.plugin == "aaa-clash" for f in reg.failures)


# ------------------------------------------------------- one helper for every hook; the registry that builds
class TrainersPlugin:
    @hookimpl
    def register_trainers(self, register):
        register("first")
        register(42)


class BrokenTrainersPlugin:
    @hookimpl
    def register_trainers(self, register):
        register("lost")
        raise SystemExit(3)


def test_collect_gathers_one_hook_in_load_order_and_records_failures():
    reg = _registry(("broken", BrokenTrainersPlugin()), ("good", TrainersPlugin()), ("plain", GoodPlugin()))
    found = reg.collect("register_trainers", check=lambda obj: "" if isinstance(obj, str) else "not a string")
    assert found == [("good", "first")]  # the broken plugin's "lost" is dropped with it; 42 is refused
    failures = {(f.plugin, f.target): f.error for f in reg.failures}
    assert failures[("broken", "register_trainers")].startswith("SystemExit")
    assert failures[("good", "register_trainers")] == "registered 42: not a string"
    assert reg.collect("register_trainers", plugin="good", check=None) == [("good", "first"), ("good", 42)]
    assert reg.collect("register_op_checks") == []


def test_collect_raises_in_strict_mode():
    reg = _registry(("broken", BrokenTrainersPlugin()), strict=True)
    with pytest.raises(PluginError, match="plugin 'broken' .register_trainers. failed: SystemExit"):
        reg.collect("register_trainers")


class NeedsRegistry(Restorer):
    """Builds its inner restorer by name in the registry that builds it."""

    name = "outer"
    tasks = frozenset({"denoise"})
    params = (Param("inner", "halve", "the restorer inside"),)

    def __init__(self, registry=None, **params):
        super().__init__(**params)
        self.registry = registry
        self.inner = registry.create(self.config["inner"]) if registry is not None else None

    def restore(self, image, degradation=None):
        return self.inner(image, degradation)


class OuterPlugin:
    @hookimpl
    def register_restorers(self, register):
        register(NeedsRegistry)


def test_a_factory_that_takes_registry_is_given_the_one_building_it():
    one = _registry(("good", GoodPlugin()), ("outer", OuterPlugin()))
    two = _registry(("outer", OuterPlugin()))
    built = one.create("outer")
    assert built.registry is one and built.inner.name == "halve" and built.inner.plugin_name == "good"
    x = torch.ones(1, 1, 2, 2)
    assert torch.equal(built(x), x * 0.5)
    # The other registry has no 'halve': the inner name is looked up there, not in the process-wide one.
    with pytest.raises(UnknownRestorerError, match="no restorer named 'halve'"):
        two.create("outer")
    # A factory without a registry parameter is called with the parameters only.
    assert one.create("halve", factor=0.25).config == {"factor": 0.25}


def test_named_pipelines_are_built_by_the_registry_step_by_step():
    from restorekit import pipeline_spec

    class PipePlugin:
        @hookimpl
        def register_restorers(self, register):
            register(pipeline_spec("twice", ["halve", ("halve", {"factor": 0.25})]))

    reg = _registry(("good", GoodPlugin()), ("pipe", PipePlugin()))
    pipe = reg.create("twice", **{"halve.factor": 0.5})
    assert [s.config["factor"] for s in pipe.steps] == [0.5, 0.5]  # the user's value over the fixed one
    assert pipe.plugin_name == "pipe" and all(s.plugin_name == "good" for s in pipe.steps)
    assert not hasattr(RestorerSpec, "build")  # the spec describes; the registry builds
