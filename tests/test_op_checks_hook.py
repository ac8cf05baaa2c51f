"""The register_op_checks hook: plugins register op checks; `restorekit gradcheck --plugin NAME` runs them."""

from __future__ import annotations

import types

import pytest
import torch

from restorekit import hookimpl, registry
from restorekit.cli.main import main
from restorekit.registry import Registry
from restorekit.testing import OpCheckSpec, Sample


def _samples(dtype, device):
    g = torch.Generator().manual_seed(0)
    yield Sample("2x3", (torch.randn(2, 3, generator=g, dtype=torch.float64).to(device=device, dtype=dtype),))


def _wrong_tanh(x):
    return torch.tanh(x) + 1e-3 * x


def _plugin(name: str, op, **fields):
    @hookimpl
    def register_op_checks(register):
        register(OpCheckSpec(name=name, op=op, reference=torch.tanh, samples=_samples, devices=("cpu",), **fields))

    return types.SimpleNamespace(register_op_checks=register_op_checks)


def _raising_plugin():
    @hookimpl
    def register_op_checks(register):
        raise RuntimeError("broken op-check registration")

    return types.SimpleNamespace(register_op_checks=register_op_checks)


@pytest.fixture
def reg(monkeypatch):
    r = Registry(entry_points=False, strict=False)
    r.add_plugin(_plugin("good::tanh", torch.tanh), name="goodplug")
    r.add_plugin(_plugin("bad::tanh", _wrong_tanh), name="badplug")
    r.add_plugin(_raising_plugin(), name="brokenplug")
    r.add_plugin(types.SimpleNamespace(), name="nochecks")
    monkeypatch.setattr(registry, "_DEFAULT", r)
    return r


def test_registry_collects_op_checks_per_plugin(reg):
    found = reg.op_checks()
    assert [(p, s.name) for p, s in found] == [("goodplug", "good::tanh"), ("badplug", "bad::tanh")]
    assert [s.name for _, s in reg.op_checks("badplug")] == ["bad::tanh"]
    assert any(f.plugin == "brokenplug" and "broken op-check registration" in f.error for f in reg.failures)


def test_gradcheck_plugin_passes(reg, capsys):
    assert main(["gradcheck", "--plugin", "goodplug", "-v"]) == 0
    out = capsys.readouterr().out
    assert "ok   good::tanh" in out and "gradcheck" in out and "0 failed" in out and "bad::tanh" not in out


def test_gradcheck_plugin_failure_shows_worst_elements(reg, capsys):
    assert main(["gradcheck", "--plugin", "badplug", "--quick"]) == 1
    out = capsys.readouterr().out
    assert "FAIL bad::tanh" in out and "of 6 elements differ" in out and "worst: [" in out


def test_gradcheck_plugin_errors(reg, capsys):
    assert main(["gradcheck", "--plugin", "nosuch"]) == 2
    assert "no plugin of that name is loaded" in capsys.readouterr().err
    assert main(["gradcheck", "--plugin", "nochecks"]) == 2
    err = capsys.readouterr().err
    assert "registers no op checks" in err and "goodplug" in err
    assert main(["gradcheck", "--plugin", "brokenplug"]) == 2
    assert "broken op-check registration" in capsys.readouterr().err


def test_gradcheck_without_plugin_runs_every_plugins_checks(reg, capsys):
    assert main(["gradcheck", "--quick"]) == 1  # badplug fails
    out = capsys.readouterr().out
    assert "warning: plugin 'brokenplug' failed" in out and "FAIL bad::tanh" in out


def test_an_unusable_spec_is_a_clear_error(monkeypatch, capsys):
    r = Registry(entry_points=False, strict=False)
    r.add_plugin(_plugin("odd::tanh", torch.tanh, options={"gradchek": False}), name="oddplug")
    monkeypatch.setattr(registry, "_DEFAULT", r)
    assert main(["gradcheck", "--plugin", "oddplug"]) == 2
    assert "unknown options ['gradchek']" in capsys.readouterr().err


def test_restorekit_ops_are_registered_through_the_hook():
    """The built-in mlp_inpaint plugin registers restorekit's own ops' checks (one path for all)."""
    names = [s.name for p, s in Registry().op_checks() if p == "mlp_inpaint"]
    assert names == ["restorekit::linear", "restorekit::relu", "restorekit::linear_relu", "FullyConnectedNet dW1,db1"]
