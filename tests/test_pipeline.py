"""Pipelines: restorekit.pipeline, 'a+b' names, step parameters, and registered pipeline names winning."""

from __future__ import annotations

import pytest
import torch

import restorekit
from restorekit import Param, hookimpl, pipeline_spec
from restorekit.degrade import Blur, Compose, Noise
from restorekit.errors import InputError, ParameterError, UnknownRestorerError
from restorekit.kernels import load_kernel
from restorekit.registry import Registry
from restorekit.restorer import Pipeline, Restorer


class Add(Restorer):
    name = "add"
    tasks = frozenset({"denoise"})
    output_range = None  # an arithmetic test double: its values leave [0, 1]
    params = (Param("amount", 1.0, "what to add"),)

    def restore(self, image, degradation=None):
        return image + self.config["amount"]


class Scale(Restorer):
    name = "scale"
    tasks = frozenset({"deblur"})
    output_range = None  # an arithmetic test double: its values leave [0, 1]
    params = (Param("factor", 2.0, "what to multiply by"),)

    def restore(self, image, degradation=None):
        return image * self.config["factor"]


class SeesDegradation(Restorer):
    name = "sees"
    tasks = frozenset({"denoise"})
    output_range = None  # an arithmetic test double: its values leave [0, 1]

    def restore(self, image, degradation=None):
        return image + degradation.sigma


class Plugin:
    @hookimpl
    def register_restorers(self, register):
        register(Add)
        register(Scale)
        register(SeesDegradation)
        # The name an 'a+b' composition would read as add-then-scale, registered with the steps reversed.
        register(pipeline_spec("add+scale", ["scale", "add"], tasks={"denoise"}))
        register(pipeline_spec("add-three", [("add", {"amount": 3.0}), "scale"]))


@pytest.fixture()
def reg():
    r = Registry(entry_points=False)
    r.add_plugin(Plugin(), name="pipeline-test")
    return r


X = torch.ones(1, 1, 2, 2)


def test_a_plus_b_is_a_pipeline_in_order(reg):
    pipe = reg.create("scale+add")
    assert isinstance(pipe, Pipeline) and [s.name for s in pipe.steps] == ["scale", "add"]
    assert torch.equal(pipe(X), X * 2 + 1)
    assert pipe.name == "scale+add" and pipe.tasks == frozenset({"deblur"})  # the first step's tasks


def test_step_parameters_are_routed_by_step_name(reg):
    pipe = reg.create("scale+add", **{"scale.factor": 3, "add.amount": "0.5"})
    assert torch.equal(pipe(X), X * 3 + 0.5)
    twice = reg.pipeline("add", "add", params={"add.amount": 2})
    assert torch.equal(twice(X), X + 4)


def test_bad_step_parameters_are_clear_errors(reg):
    with pytest.raises(ParameterError, match="must name its step, e.g. scale.factor=3"):
        reg.create("scale+add", factor=3)
    with pytest.raises(ParameterError, match="names step 'wiener'; its steps are: scale, add"):
        reg.create("scale+add", **{"wiener.snr": 3})
    with pytest.raises(ParameterError, match="unknown parameter 'gain' of 'add'"):
        reg.create("scale+add", **{"add.gain": 3})


def test_a_registered_pipeline_name_wins_over_a_plus_b(reg):
    registered = reg.create("add+scale")
    assert [s.name for s in registered.steps] == ["scale", "add"]
    assert torch.equal(registered(X), X * 2 + 1)
    assert torch.equal(reg.pipeline("add", "scale")(X), (X + 1) * 2)
    assert reg.get("add+scale").plugin == "pipeline-test" and reg.get("add+scale").is_pipeline


def test_registered_pipeline_fixed_step_params_can_be_overridden(reg):
    assert torch.equal(reg.create("add-three")(X), (X + 3) * 2)
    assert torch.equal(reg.create("add-three", **{"add.amount": 1})(X), (X + 1) * 2)
    assert reg.create("add-three").tasks == frozenset({"denoise"})


def test_every_step_receives_the_degradation(reg):
    pipe = reg.pipeline("sees", "sees")
    assert torch.allclose(pipe(X, Noise(0.25)), X + 0.5)


def test_pipeline_of_restorer_objects_and_errors(reg):
    pipe = reg.pipeline(Add(amount=5), "scale")
    assert torch.equal(pipe(X), (X + 5) * 2)
    with pytest.raises(ParameterError, match="at least one"):
        Pipeline([])
    with pytest.raises(UnknownRestorerError):
        reg.create("add+")
    with pytest.raises(UnknownRestorerError, match="'nope'"):
        reg.create("add+nope")


def test_restorekit_pipeline_with_wiener_and_step_params():
    kernel = load_kernel("course")
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(48, 48), mode="bilinear")
    d = Compose(Blur(kernel), Noise(0.02))
    y = d.apply(x, seed=0)
    pipe = restorekit.pipeline("wiener", **{"wiener.snr": "auto"})
    assert isinstance(pipe, Pipeline) and pipe.steps[0].config["snr"] == "auto"
    alone = restorekit.create("wiener", snr="auto")(y, d)
    assert torch.equal(pipe(y, d), alone)
    composed = restorekit.create("wiener+wiener", **{"wiener.snr": 50})
    assert [s.config["snr"] for s in composed.steps] == [50.0, 50.0]
    assert composed(y, d).shape == y.shape


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_batch_refuses_nan_and_inf(bad):
    from restorekit.checks import check_batch

    x = torch.rand(1, 3, 8, 8)
    x[0, 1, 4, 5] = bad
    with pytest.raises(InputError, match="NaN or Inf"):
        check_batch(x, "wiener")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_check_batch_accepts_finite_values_whose_sum_overflows(dtype):
    """The quick finite-sum test falls back to the element-wise one when the sum overflows."""
    from restorekit.checks import check_batch

    x = torch.full((1, 1, 4, 4), torch.finfo(dtype).max / 2, dtype=dtype)
    assert not torch.isfinite(x.sum())
    check_batch(x, "wiener")


# --------------------------------------------------------------------------- pipelines checked at registration
def test_a_pipeline_without_tasks_takes_its_first_steps_tasks_at_load_time(reg):
    assert reg.get("add-three").tasks == frozenset({"denoise"})
    assert "add-three" in reg.names("denoise") and "add-three" not in reg.names("deblur")


def test_pipelines_with_bad_steps_fail_and_the_rest_work():
    class Broken:
        @hookimpl
        def register_restorers(self, register):
            register(Add)
            register(pipeline_spec("to-nowhere", ["add", "ad"]))
            register(pipeline_spec("bad-fixed", [("add", {"amount": "lots"})]))
            register(pipeline_spec("unknown-fixed", [("add", {"gain": 1})]))
            register(pipeline_spec("loop-a", ["loop-b"]))
            register(pipeline_spec("loop-b", ["loop-a"]))
            register(pipeline_spec("on-broken", ["to-nowhere"]))
            register(pipeline_spec("fine", ["add", "add"]))

    r = Registry(entry_points=False, strict=False)
    r.add_plugin(Broken(), name="broken-pipes")
    assert r.names() == ["add", "fine"]
    errors = {f.target: f.error for f in r.failures}
    assert errors["pipeline 'to-nowhere'"] == "step 'ad' is not a registered restorer (did you mean 'add'?)"
    assert "'amount' of 'add' got 'lots'" in errors["pipeline 'bad-fixed'"]
    assert "unknown parameter 'gain' of 'add'" in errors["pipeline 'unknown-fixed'"]
    assert errors["pipeline 'loop-b'"] == "step 'loop-a' leads back to pipeline 'loop-b'"
    assert errors["pipeline 'loop-a'"] == "step 'loop-b' failed its own checks"
    assert errors["pipeline 'on-broken'"] == "step 'to-nowhere' failed its own checks"
    assert all(f.plugin == "broken-pipes" for f in r.failures)


def test_step_params_list_what_a_pipeline_lets_one_override(reg):
    params = {p.name: p.default for p in reg.step_params("add-three")}
    assert params == {"add.amount": 3.0, "scale.factor": 2.0}
    assert reg.step_params("add") == ()


def test_check_batch_lives_in_checks_and_restorer_re_exports_it():
    import restorekit.checks
    import restorekit.restorer

    assert restorekit.restorer.check_batch is restorekit.checks.check_batch
    assert "check_batch" in restorekit.checks.__all__
