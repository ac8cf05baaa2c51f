"""Issue 16, bounds and silent wrong results: each case of the audit that failed before, as a test."""

from __future__ import annotations

import math

import numpy as np
import pytest

import restorekit
from restorekit import Param
from restorekit.cli.main import main
from restorekit.errors import ParameterError
from restorekit.registry import default_registry


@pytest.fixture(scope="module")
def small_png(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("bounds") / "in.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((24, 20, 3)) * 255).astype(np.uint8)).save(path)
    return path


# --------------------------------------------------------------------------- 1. numeric parameters are bounded
def _is_numeric(param: Param) -> bool:
    """A parameter is numeric when its default is a number or its parser turns '1' into one."""
    if isinstance(param.default, (int, float)) and not isinstance(param.default, bool):
        return True
    if param.parse is None:
        return False
    try:
        value = param.parse("1")
    except Exception:  # noqa: BLE001 - a parser that refuses '1' is not numeric
        return False
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_every_shipped_numeric_parameter_declares_an_upper_bound():
    registry = default_registry()
    specs = registry.specs()
    assert {"pnp", "nlmeans", "wiener", "dncnn"} <= {s.name for s in specs}
    unbounded = [f"{s.name}.{p.name}" for s in specs for p in s.params if _is_numeric(p) and p.high is None]
    assert unbounded == []


@pytest.mark.parametrize("value", [10**9, "1e9", "inf", float("inf")])
def test_pnp_iterations_beyond_the_ceiling_are_refused_in_one_line(value):
    with pytest.raises(ParameterError, match=r"parameter 'iterations' of 'pnp' got .*(<= 1000|whole number)"):
        restorekit.create("pnp", iterations=value)


def test_nlmeans_patch_distance_is_bounded():
    with pytest.raises(ParameterError, match=r"'patch_distance' of 'nlmeans' got 1000: must be >= 0 and <= 50"):
        restorekit.create("nlmeans", patch_distance=1000)


def test_a_parameter_without_high_gets_the_default_ceiling_and_refuses_infinity():
    p = Param("n", 3, low=1)
    assert p.convert(int(restorekit.restorer.DEFAULT_HIGH)) == 10**6
    with pytest.raises(ParameterError, match=r"must be <= 1e\+06 \(the ceiling"):
        p.convert(10**9)
    with pytest.raises(ParameterError, match="finite"):
        Param("h", 0.5, high=math.inf).convert("inf")


@pytest.mark.parametrize("value", ["1e9", "inf"])
def test_cli_refuses_huge_iterations_with_exit_2_and_one_line(small_png, tmp_path, capsys, value):
    code = main(["restore", str(small_png), "-o", str(tmp_path / "out.png"), "--method", "pnp",
                 "--kernel", "course", "--sigma", "0.01", "--param", f"iterations={value}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "parameter 'iterations' of 'pnp'" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_list_prints_defaults_as_a_user_types_them(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "--param iterations=auto  (" in out and "--param sigma_start=auto  (" in out
    assert "--param clip=true  (" in out and "--param solver=auto  (" in out
    assert "=None" not in out and "0.19215686274509805" not in out


# --------------------------------------------------------------------------- 2. an edited arch with a re-hashed sidecar
def test_an_edited_arch_with_a_recomputed_hash_is_stopped_before_it_is_built(tmp_path):
    import json

    import torch

    from restorekit.errors import WeightsError
    from restorekit.weights import checked_sha256, load_model, save_model, sidecar_path

    def build(arch):
        return torch.nn.Sequential(*[torch.nn.Linear(8, 8) for _ in range(arch["hidden_layers"])])

    path = tmp_path / "tiny.pt"
    save_model(build({"hidden_layers": 2}), path, arch={"hidden_layers": 2}, metadata={})
    model, _ = load_model(path, build)  # the honest sidecar loads
    assert len(model) == 2
    info = json.loads(sidecar_path(path).read_text())
    info["arch"]["hidden_layers"] = 10**9
    info["sha256"] = checked_sha256(info["file_sha256"], info["arch"], info["metadata"].get("trained_for"))
    sidecar_path(path).write_text(json.dumps(info))
    with pytest.raises(WeightsError, match=r"builds a network of more than .* while the \.pt holds 144"):
        load_model(path, build)


# --------------------------------------------------------------------------- 6. a kernel file that does not sum to 1
def test_a_kernel_file_not_summing_to_1_is_normalised_with_one_warning(tmp_path):
    import warnings

    import torch

    from restorekit.errors import InputError, RestorekitWarning
    from restorekit.kernels import gaussian_kernel, load_kernel

    k = gaussian_kernel(1.0).numpy()
    np.save(tmp_path / "scaled.npy", 2.5 * k)
    np.save(tmp_path / "exact.npy", k)
    np.save(tmp_path / "negative.npy", -k)
    with pytest.warns(RestorekitWarning, match=r"sums to 2\.5, not 1: it was divided by its sum"):
        got = load_kernel(tmp_path / "scaled.npy")
    assert torch.allclose(got, torch.from_numpy(k)) and abs(float(got.sum()) - 1) < 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(load_kernel(tmp_path / "exact.npy"), torch.from_numpy(k))
    with pytest.raises(InputError, match=r"sums to -1: a blur kernel's weights are >= 0 and sum to 1"):
        load_kernel(tmp_path / "negative.npy")


def test_restore_says_in_one_line_that_it_normalised_the_kernel(small_png, tmp_path, capsys):
    from restorekit.kernels import gaussian_kernel

    np.save(tmp_path / "scaled.npy", 2.5 * gaussian_kernel(1.0).numpy())
    code = main(["restore", str(small_png), "-o", str(tmp_path / "out.png"), "--method", "wiener",
                 "--kernel", str(tmp_path / "scaled.npy"), "--sigma", "0.01"])
    err = capsys.readouterr().err
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("restorekit: warning: kernel file") and "not 1" in err


# --------------------------------------------------------------------------- 7. the Python API: scales and order
def test_noise_on_the_0_255_scale_is_refused_with_the_fix():
    from restorekit.degrade import Noise
    from restorekit.errors import InputError

    with pytest.raises(InputError, match=r"noise sigma 25 is above 1: .* write 0\.09804"):
        Noise(25)
    assert Noise(1).sigma == 1.0 and Noise("0.1").sigma == 0.1


def test_compose_refuses_noise_before_an_operator_instead_of_reordering():
    import torch

    from restorekit.degrade import Blur, Compose, Downsample, Mask, Noise
    from restorekit.errors import InputError

    k = torch.ones(3, 3) / 9
    with pytest.raises(InputError, match=r"adds noise before Blur: .* put the noise last: Compose\(Blur\(\.\.\.\), "
                                         r"Noise\(\.\.\.\)\)"):
        Compose(Noise(0.1), Blur(k))
    with pytest.raises(InputError, match="adds noise before Downsample"):
        Compose(Compose(Blur(k), Noise(0.1)), Downsample(2))
    assert Compose(Blur(k), Mask.lower_half(4, 4), Noise(0.1)).sigma == pytest.approx(0.1)
    assert Compose(Noise(0.0), Blur(k)).sigma == 0.0  # no noise drawn: nothing to reorder


@pytest.mark.parametrize("method", ["dncnn", "wiener", "pnp"])
def test_restorers_refuse_a_0_255_image_with_the_fix(method):
    import torch

    from restorekit.degrade import Blur, Compose, Noise
    from restorekit.errors import InputError
    from restorekit.kernels import load_kernel

    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    d = Noise(0.05) if method == "dncnn" else Compose(Blur(load_kernel("box:3")), Noise(0.01))
    with pytest.raises(InputError, match=r"\[0, 1\] scale: for a 0-255 image pass image / 255"):
        restorekit.create(method)(x * 255, d)


def test_a_noisy_input_slightly_outside_0_1_is_still_accepted():
    import torch

    from restorekit.checks import check_unit_range

    g = torch.Generator().manual_seed(0)
    y = torch.rand(1, 3, 64, 64, generator=g) + 0.6 * torch.randn(1, 3, 64, 64, generator=g)
    assert float(y.max()) > 3.1
    check_unit_range(y, sigma=0.6)  # up to 1 + 8 * 0.6: a sigma-0.6 draw, not a 0-255 image
    check_unit_range(torch.rand(1, 1, 8, 8) * 2.9)  # no sigma known (a blind denoiser): up to 3 passes
    with pytest.raises(restorekit.errors.InputError, match="values from"):
        check_unit_range(y)  # the same values without the sigma that explains them


def test_a_meta_tensor_gets_one_clear_error():
    import torch

    from restorekit.degrade import Noise
    from restorekit.errors import InputError

    with pytest.raises(InputError, match="'meta' device, which holds shapes but no values"):
        restorekit.create("wiener")(torch.empty(1, 1, 8, 8, device="meta"), Noise(0.01))


# --------------------------------------------------------------------------- 5. an output far outside [0, 1]
class Times10(restorekit.Restorer):
    """A broken plugin: multiplies by 10."""

    name = "times10"
    tasks = frozenset({"denoise"})

    def restore(self, image, degradation=None):
        return image * 10


class Overshoot(restorekit.Restorer):
    name = "overshoot"
    tasks = frozenset({"denoise"})

    def restore(self, image, degradation=None):
        return image * 1.05


def test_an_output_far_outside_its_range_is_refused_not_written():
    import torch

    from restorekit.errors import RestorerFailedError

    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.5
    with pytest.raises(RestorerFailedError, match=r"'times10' .* far outside its output range \[0, 1\]"):
        Times10()(x)
    assert torch.equal(Overshoot()(x), x * 1.05)  # a small overshoot passes unchanged


def test_cli_restore_refuses_to_write_a_x10_output(small_png, tmp_path, capsys, monkeypatch):
    import restorekit.registry as registry_module
    from restorekit import hookimpl
    from restorekit.registry import Registry

    class Plugin:
        @hookimpl
        def register_restorers(self, register):
            register(Times10)

    reg = Registry(entry_points=False, strict=False, disabled=())
    reg.add_plugin(Plugin(), name="broken")
    monkeypatch.setattr(registry_module, "default_registry", lambda: reg)
    out = tmp_path / "out.png"
    assert main(["restore", str(small_png), "-o", str(out), "--method", "times10"]) == 2
    assert "far outside its output range" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------- 4. plugin isolation
PLUGINS = {
    "printer_plugin": (
        "print('hello from the printer plugin')\n"
        "from restorekit import hookimpl\n\n\n"
        "@hookimpl\n"
        "def register_restorers(register):\n"
        "    print('registering')\n"
    ),
    "exit_at_import": "import os\nos._exit(0)\n",
    "exit_in_restore": (
        "import os\n\nimport restorekit\nfrom restorekit import hookimpl\n\n\n"
        "class ExitRestorer(restorekit.Restorer):\n"
        "    name = 'exit-restorer'\n"
        "    tasks = frozenset({'denoise'})\n\n"
        "    def restore(self, image, degradation=None):\n"
        "        os._exit(0)\n\n\n"
        "@hookimpl\n"
        "def register_restorers(register):\n"
        "    register(ExitRestorer)\n"
    ),
    "unmarked_hook": (
        "import restorekit\n\n\n"
        "class Same(restorekit.Restorer):\n"
        "    name = 'unmarked-same'\n"
        "    tasks = frozenset({'denoise'})\n\n"
        "    def restore(self, image, degradation=None):\n"
        "        return image\n\n\n"
        "def register_restorers(register):\n"
        "    register(Same)\n"
    ),
}


@pytest.fixture(scope="module")
def bad_plugins(tmp_path_factory):
    """A folder of installed-looking plugins (a module and its dist-info entry point each) for PYTHONPATH."""
    root = tmp_path_factory.mktemp("plugins")
    for module, code in PLUGINS.items():
        (root / f"{module}.py").write_text(code)
        info = root / f"{module}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[restorekit.plugins]\n{module} = {module}\n")
    return root


def _run(args, plugins, timeout=300):
    import os
    import subprocess
    import sys

    path = os.pathsep.join(p for p in (str(plugins), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    env.pop("RESTOREKIT_STRICT_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "restorekit", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_plugin_prints_and_exits_keep_json_valid_and_are_reported(bad_plugins):
    import json

    for command in (["plugins", "--json"], ["list", "--json"]):
        done = _run(command, bad_plugins)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)  # the plugin's print() went to stderr
        assert "hello from the printer plugin" in done.stderr and "registering" in done.stderr
        failed = {f["plugin"]: f["error"] for f in data["failed"]}
        assert "exit_at_import" in failed and "called os._exit(0)" in failed["exit_at_import"]
        assert "register_restorers() is not marked @hookimpl" in done.stderr
        assert "decorate it with @restorekit.hookimpl" in done.stderr


def test_os_exit_in_restore_is_an_error_and_check_fails_it(bad_plugins, small_png, tmp_path):
    out = tmp_path / "out.png"
    done = _run(["restore", small_png, "-o", out, "--method", "exit-restorer"], bad_plugins)
    assert done.returncode == 2 and "called os._exit(0)" in done.stderr and not out.exists()
    done = _run(["check", "exit-restorer", "--check", "gray"], bad_plugins)
    assert done.returncode == 1 and "FAIL check_gray" in done.stdout and "os._exit" in done.stdout


def test_check_all_fails_a_plugin_that_exits_at_import(bad_plugins):
    done = _run(["check", "--all", "--check", "declared_params"], bad_plugins)
    assert done.returncode == 1
    assert "plugin exit_at_import (exit_at_import):\n  FAIL  PluginExit" in done.stdout


def test_os_exit_outside_plugin_code_and_in_a_forked_child_is_the_real_one():
    import os

    from restorekit.isolation import PluginExit, plugin_code

    assert os._exit.__name__ == "_exit"  # restored after every block
    with plugin_code("plugin 'x'"):
        pid = os.fork()
        if pid == 0:  # the child: os._exit must end it, not raise
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        with pytest.raises(PluginExit, match="plugin 'x' called os._exit"):
            os._exit(0)
    assert os.waitstatus_to_exitcode(status) == 7
    assert os._exit.__name__ == "_exit"


def test_overlapping_plugin_blocks_in_threads_restore_stdout():
    import sys
    import threading

    from restorekit.isolation import plugin_code

    before = sys.stdout
    entered, release = threading.Event(), threading.Event()

    def other():
        with plugin_code("plugin 'b'"):
            entered.set()
            release.wait(10)

    with plugin_code("plugin 'a'"):
        assert sys.stdout is sys.stderr
        thread = threading.Thread(target=other)
        thread.start()
        entered.wait(10)
    assert sys.stdout is sys.stderr  # 'b' still runs: print() still goes to stderr
    release.set()
    thread.join(10)
    assert sys.stdout is before
