"""The restorer contract enforced by Restorer.__call__: outputs checked, plugin exceptions named."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from restorekit import hookimpl
from restorekit.bench import run_benchmark
from restorekit.cli.main import main
from restorekit.degrade import Noise
from restorekit.errors import InputError, RestorekitError, RestorerFailedError
from restorekit.imageio import write_image
from restorekit.registry import Registry, default_registry
from restorekit.restorer import Pipeline, Restorer


class Returns(Restorer):
    """Returns whatever ``make(image)`` gives."""

    name = "returns"
    tasks = frozenset({"denoise"})

    def __init__(self, make=None, **params):
        super().__init__(**params)
        self.make = make

    def restore(self, image, degradation=None):
        return self.make(image)


class Raises(Restorer):
    name = "contract-test-raises"
    tasks = frozenset({"denoise"})
    plugin_name = "contract-plugin"
    plugin_version = "9.8.7"

    def restore(self, image, degradation=None):
        raise ValueError("boom inside the plugin\nsecond line")


class Upscales(Restorer):
    name = "upscales"
    tasks = frozenset({"superresolve"})

    def restore(self, image, degradation=None):
        return torch.nn.functional.interpolate(image, scale_factor=degradation.scale, mode="nearest")


class Clean(Restorer):
    name = "contract-test-clean"
    tasks = frozenset({"denoise"})

    def restore(self, image, degradation=None):
        return image.clamp(0, 1)


def image(n=2, c=3, h=6, w=5, dtype=torch.float32):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0)).to(dtype)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda x: x.half(), "returned torch.float16 for a torch.float32 input"),
        (lambda x: (x * 255).to(torch.uint8), "returned torch.uint8"),
        (lambda x: x[..., :-1], "returned shape (2, 3, 6, 4) for an input of shape (2, 3, 6, 5)"),
        (lambda x: x[0], "returned shape (3, 6, 5)"),
        (lambda x: x.numpy(), "returned a ndarray, not a torch.Tensor"),
        (lambda x: x * float("nan"), "NaN or Inf"),
        (lambda x: torch.empty_like(x, device="meta"), "on meta for an input on cpu"),
    ],
)
def test_an_invalid_output_is_one_error_naming_the_restorer(make, reason):
    with pytest.raises(RestorerFailedError, match="restorer 'returns'") as info:
        Returns(make)(image())
    assert reason in str(info.value)
    assert f"({Returns.__module__}.Returns)" in str(info.value), "without a plugin, the class is named"
    assert isinstance(info.value, RestorekitError)


def test_a_valid_output_passes_through_unchanged():
    x = image()
    out = torch.zeros_like(x)
    assert Returns(lambda _: out)(x) is out


def test_an_exception_in_plugin_code_names_plugin_and_version_and_is_chained():
    with pytest.raises(RestorerFailedError) as info:
        Raises()(image())
    message = str(info.value)
    assert message == ("restorer 'contract-test-raises' of plugin 'contract-plugin' 9.8.7 failed: "
                       "ValueError: boom inside the plugin")
    assert isinstance(info.value.__cause__, ValueError)


def test_restorekit_errors_and_ctrl_c_pass_through():
    def refuse(x):
        raise InputError("too small; pad it")

    with pytest.raises(InputError, match="too small"):
        Returns(refuse)(image())

    def interrupt(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Returns(interrupt)(image())


def test_the_output_of_a_downsampling_degradation_is_scaled():
    x = image(h=4, w=3)
    down = SimpleNamespace(scale=2)
    assert Upscales()(x, down).shape == (2, 3, 8, 6)
    with pytest.raises(RestorerFailedError, match=r"expected \(2, 3, 8, 6\)"):
        Clean()(x, down)


def test_a_pipeline_names_its_failing_step():
    pipe = Pipeline([Clean(), Returns(lambda x: x.double())], name="two-steps")
    with pytest.raises(RestorerFailedError, match="restorer 'returns'.*float64"):
        pipe(image())
    with pytest.raises(RestorerFailedError, match="restorer 'contract-test-raises'"):
        Pipeline([Clean(), Raises()])(image())


def test_a_superresolution_pipeline_may_clean_after_upscaling():
    x = image(h=4, w=3)
    down = SimpleNamespace(scale=2)
    assert Pipeline([Upscales(), Clean()])(x, down).shape == (2, 3, 8, 6)
    assert Pipeline([Clean(), Upscales()])(x, down).shape == (2, 3, 8, 6)
    with pytest.raises(RestorerFailedError, match=r"restorer 'upscales'.*expected \(2, 3, 8, 6\)"):
        Pipeline([Upscales(), Upscales()])(x, down)
    with pytest.raises(RestorerFailedError, match=r"restorer 'same'"):
        Pipeline([Clean(), Clean()], name="same")(x, down)


# --------------------------------------------------------------------------- CLI and bench
@hookimpl
def register_restorers(register):
    register(Raises)
    register(Clean)


@pytest.fixture
def failing_plugin():
    registry = default_registry()
    registry.add_plugin(SimpleNamespace(register_restorers=register_restorers), name="contract-test")
    yield registry
    registry.remove_plugin("contract-test")


def test_restore_with_a_failing_plugin_exits_2_with_one_line(failing_plugin, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RESTOREKIT_DEBUG", raising=False)
    src = tmp_path / "in.npy"
    write_image(src, torch.rand(1, 1, 8, 8))
    code = main(["restore", str(src), "-o", str(tmp_path / "out.npy"), "--method", "contract-test-raises"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: restorer 'contract-test-raises'" in err and "ValueError: boom inside the plugin" in err
    assert "--debug" in err and "Traceback" not in err
    assert not (tmp_path / "out.npy").exists()

    code = main(["--debug", "restore", str(src), "-o", str(tmp_path / "out.npy"), "--method", "contract-test-raises"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" in err and "raise ValueError" in err

    monkeypatch.setenv("RESTOREKIT_DEBUG", "1")
    code = main(["restore", str(src), "-o", str(tmp_path / "out.npy"), "--method", "contract-test-raises"])
    assert code == 2 and "Traceback" in capsys.readouterr().err


def test_bench_marks_a_failing_method_and_reports_the_others():
    registry = Registry(entry_points=False)
    registry.add_plugin(SimpleNamespace(register_restorers=register_restorers), name="contract-test")
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    result = run_benchmark(x, "denoise", ["contract-test-raises", "contract-test-clean"], sigmas=[0.05, 0.1],
                           progress=False, registry=registry)
    assert result.methods() == ["contract-test-clean"]
    assert [r.sigma for r in result.rows] == [0.05, 0.1]
    (failed,) = result.skipped
    assert failed.failed and failed.method == "contract-test-raises" and "ValueError: boom" in failed.reason
    table = result.to_markdown()
    assert "| | contract-test-raises | failed: failed on image0: restorer 'contract-test-raises'" in table
    assert "second line" not in table and "Not run" not in table
    assert result.to_dict()["skipped"][0]["failed"] is True


def test_a_degradation_without_scale_is_scale_one():
    assert Clean()(image(), Noise(0.1)).shape == image().shape
