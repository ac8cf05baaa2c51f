"""``restorekit plugins [--json]`` and the plugin parts of ``restorekit list --json``."""

from __future__ import annotations

import json

import pytest

import restorekit.registry as registry_module
from restorekit import Param, hookimpl, pipeline_spec
from restorekit.cli.main import main
from restorekit.registry import Registry
from restorekit.restorer import Restorer


class Blend(Restorer):
    """Blends the image with gray."""

    name = "blend"
    tasks = frozenset({"denoise"})
    params = (Param("weight", 0.5, "how much gray", low=0.0, high=1.0),
              Param("mode", "mean", "what gray", choices=("mean", "half")))

    def restore(self, image, degradation=None):
        return image


class Plugin:
    __version__ = "1.2"

    @hookimpl
    def register_restorers(self, register):
        register(Blend)
        register(pipeline_spec("blend-twice", [("blend", {"weight": 0.25}), "blend"]))

    @hookimpl
    def register_trainers(self, register):
        from restorekit.training.trainers import TrainerSpec

        register(TrainerSpec(name="blend-trainer", run=lambda request: 0, summary="trains nothing"))


class Broken:
    @hookimpl
    def register_restorers(self, register):
        raise SystemExit(4)


@pytest.fixture()
def registry(monkeypatch):
    reg = Registry(entry_points=False, strict=False, disabled=())
    reg.add_plugin(Plugin(), name="blend-plugin")
    reg.add_plugin(Broken(), name="broken-plugin")
    monkeypatch.setattr(registry_module, "default_registry", lambda: reg)
    return reg


def test_plugins_json_lists_versions_hooks_registrations_and_failures(registry, capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    plugin = next(p for p in data["plugins"] if p["name"] == "blend-plugin")
    assert plugin["version"] == "1.2"
    assert plugin["hooks"] == ["register_restorers", "register_trainers"]
    assert plugin["restorers"] == ["blend", "blend-twice"] and plugin["trainers"] == ["blend-trainer"]
    assert plugin["op_checks"] == []
    assert data["failed"] == [{"plugin": "broken-plugin", "target": "register_restorers", "error": "SystemExit: 4"}]
    assert data["plugin_api"] == "1" and data["disabled"] == []


def test_plugins_text_names_failures_and_the_fix(registry, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "blend-plugin  (added by hand 1.2;" in out and "restorers: blend, blend-twice" in out
    assert "broken-plugin (register_restorers): SystemExit: 4" in out
    assert "RESTOREKIT_DISABLE_PLUGINS=NAME" in out


def test_plugins_shows_disabled_ones(monkeypatch, capsys):
    reg = Registry(entry_points=False, strict=False, disabled=("broken-plugin", "nonesuch"))
    reg.add_plugin(Plugin(), name="blend-plugin")
    reg.add_plugin(Broken(), name="broken-plugin")
    monkeypatch.setattr(registry_module, "default_registry", lambda: reg)
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "disabled by RESTOREKIT_DISABLE_PLUGINS (1):\n  broken-plugin" in out
    assert "names no installed plugin: nonesuch" in out and "no plugin failed" in out


def test_strict_mode_makes_the_command_fail_with_exit_2(monkeypatch, capsys):
    reg = Registry(entry_points=False, strict=True, disabled=())
    reg.add_plugin(Broken(), name="broken-plugin")
    monkeypatch.setattr(registry_module, "default_registry", lambda: reg)
    assert main(["plugins"]) == 2
    assert "error: plugin 'broken-plugin' (register_restorers) failed: SystemExit: 4" in capsys.readouterr().err


def test_list_json_gives_parameter_types_and_pipeline_step_params(registry, capsys):
    assert main(["list", "--json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)["restorers"]}
    weight, mode = listed["blend"]["params"]
    assert weight == {"name": "weight", "default": 0.5, "type": "float", "help": "how much gray",
                      "low": 0.0, "high": 1.0, "closed": "both", "allow_nan": False}
    assert mode["type"] == "str" and mode["choices"] == ["mean", "half"]
    pipe = listed["blend-twice"]
    assert pipe["tasks"] == ["denoise"]  # from its first step, not every task
    assert [(p["name"], p["default"]) for p in pipe["step_params"]] == [
        ("blend.weight", 0.25), ("blend.mode", "mean"), ("blend.weight", 0.5), ("blend.mode", "mean")]


def test_list_text_shows_types_and_ranges(registry, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "--param weight=0.5  (float >= 0.0 and <= 1.0)  how much gray" in out
    assert "--param mode=mean  (str, one of 'mean', 'half')" in out
    assert "--param blend.weight=0.25  (float >= 0.0 and <= 1.0)" in out
