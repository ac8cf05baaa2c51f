"""The plug-and-play restorer ``pnp``: deblurring, inpainting and super-resolution with registered denoisers."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import restorekit
from restorekit import Restorer, hookimpl
from restorekit.degrade import Blur, Compose, Downsample, Mask, Noise
from restorekit.errors import InputError, ParameterError, RestorekitError, RestorekitWarning
from restorekit.kernels import load_kernel
from restorekit.metrics import psnr
from restorekit.registry import default_registry
from restorekit_plugins.pnp import ensemble, schedule, solvers
from restorekit_plugins.pnp.params import DEFAULT_HOLD, DEFAULT_ITERATIONS
from restorekit_plugins.pnp.restorer import PnPRestorer

BLIND = "is blind"


def scene(size: int = 48, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """A piecewise-smooth test image: gradients, two rectangles and a disc, (1, C, size, size) in [0, 1]."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = 0.25 + 0.35 * xx
    base = torch.where((yy > 0.2) & (yy < 0.55) & (xx > 0.15) & (xx < 0.5), torch.tensor(0.85), base)
    base = torch.where((xx - 0.7) ** 2 + (yy - 0.65) ** 2 < 0.04, torch.tensor(0.1), base)
    rgb = torch.stack([base, 0.8 * base + 0.1, 1 - 0.7 * base])[:channels]
    return rgb[None].clamp(0, 1).contiguous()


def photo(size: int = 48) -> torch.Tensor:
    """A natural image (scikit-image's astronaut, her face and shoulder), (1, 3, size, size) in [0, 1]."""
    from skimage import data, transform

    crop = transform.resize(data.astronaut()[30:222, 150:342] / 255.0, (size, size), anti_aliasing=True)
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float().clamp(0, 1).contiguous()


class Smoother(Restorer):
    """A noise-level-aware stand-in denoiser: Gaussian smoothing of width sigma * 10; records what it gets."""

    name = "test-smoother"
    tasks = frozenset({"denoise"})
    uses_noise_level = True
    calls: list = []

    def restore(self, image, degradation=None):
        sigma = float(degradation.sigma)
        Smoother.calls.append((sigma, tuple(image.shape), image.device.type))
        width = max(sigma * 10, 0.3)
        taps = torch.arange(-3, 4, dtype=image.dtype, device=image.device)
        g = torch.exp(-taps**2 / (2 * width**2))
        g = g / g.sum()
        c = image.shape[1]
        out = F.conv2d(F.pad(image, (3, 3, 0, 0), mode="replicate"), g.view(1, 1, 1, 7).repeat(c, 1, 1, 1), groups=c)
        out = F.conv2d(F.pad(out, (0, 0, 3, 3), mode="replicate"), g.view(1, 1, 7, 1).repeat(c, 1, 1, 1), groups=c)
        return out


class NotADenoiser(Restorer):
    name = "test-sharpener"
    tasks = frozenset({"deblur"})

    def restore(self, image, degradation=None):
        return image


class TestPlugin:
    @hookimpl
    def register_restorers(self, register):
        register(Smoother)
        register(NotADenoiser)
        register(restorekit.pipeline_spec("test-smoother-twice", ["test-smoother", "test-smoother"]))


@pytest.fixture()
def smoother():
    reg = default_registry()
    reg.add_plugin(TestPlugin(), name="pnp-test-plugin")
    Smoother.calls = []
    yield "test-smoother"
    reg.remove_plugin("pnp-test-plugin")


def quiet_pnp(**params) -> PnPRestorer:
    """``pnp`` built with the blind-denoiser warning silenced (tests that are not about it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RestorekitWarning)
        return restorekit.create("pnp", progress=False, **params)


# --------------------------------------------------------------------------- restoring
def test_deblur_with_dncnn_beats_the_blurred_input():
    x = photo(48)
    d = Compose(Blur(load_kernel("gaussian:1.6:9")), Noise(0.01))
    y = d.apply(x, seed=0)
    out = quiet_pnp(denoiser="dncnn")(y, d)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert psnr(out, x) > psnr(y.clamp(0, 1), x) + 3


def test_inpaint_half_missing_with_tv_from_the_example_package():
    """A third party's denoiser, found through its entry point, works in pnp unchanged."""
    assert restorekit.registry.default_registry().get("tv").plugin != "pnp"
    x = scene(40)
    d = Compose(Mask.random(40, 40, 0.5, seed=1), Noise(0.0))
    y = d.apply(x, seed=0)
    out = quiet_pnp(denoiser="tv", iterations=12)(y, d)
    assert psnr(out, x) > psnr(y, x) + 10
    assert psnr(out, x) > 25


def test_superresolve_x2_returns_the_large_image_and_beats_bicubic():
    x = photo(48)
    d = Compose(Downsample(2), Noise(0.0))
    y = d.apply(x, seed=0)
    assert y.shape[-2:] == (24, 24)
    out = quiet_pnp(denoiser="dncnn", iterations=8)(y, d)
    assert out.shape == x.shape
    bicubic = F.interpolate(y, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    assert psnr(out, x) > psnr(bicubic, x) + 1


def test_admm_restores_too_and_differs_from_hqs(smoother):
    x = scene(32)
    d = Compose(Blur(load_kernel("gaussian:1.2:7")), Noise(0.01))
    y = d.apply(x, seed=0)
    hqs = quiet_pnp(denoiser=smoother, iterations=6)(y, d)
    admm = quiet_pnp(denoiser=smoother, iterations=6, solver="admm")(y, d)
    assert psnr(admm, x) > psnr(y.clamp(0, 1), x) + 1
    assert not torch.allclose(admm, hqs)


def test_the_auto_solver_is_admm_for_inpainting_and_superresolution_and_hqs_for_deblurring(smoother):
    x = scene(32)
    tasks = {
        "deblur": Compose(Blur(load_kernel("gaussian:1.2:7")), Noise(0.01)),
        "inpaint": Compose(Mask.random(32, 32, 0.5, seed=0)),
        "superresolve": Compose(Downsample(2)),
    }
    auto = quiet_pnp(denoiser=smoother, iterations=4)
    assert auto.config["solver"] == "auto"
    for task, d in tasks.items():
        want = "hqs" if task == "deblur" else "admm"
        assert auto.task_of(d) == task and auto.solver_name(task) == want
        y = d.apply(x, seed=0)
        same = quiet_pnp(denoiser=smoother, iterations=4, solver=want)(y, d)
        other = quiet_pnp(denoiser=smoother, iterations=4, solver="admm" if want == "hqs" else "hqs")(y, d)
        out = auto(y, d)
        assert torch.equal(out, same), task
        assert not torch.allclose(out, other), task
    assert quiet_pnp(denoiser=smoother, solver="hqs").solver_name("inpaint") == "hqs"


def test_pnp_builds_a_learned_denoiser_with_its_low_noise_guard_off(monkeypatch):
    import restorekit.learned_denoiser as learned_denoiser

    pnp = quiet_pnp(iterations=3)
    assert pnp.denoiser.config["low_noise_guard"] == "off"
    alone = restorekit.create(pnp.config["denoiser"])
    assert alone.config["low_noise_guard"] == "auto"  # built alone it is guarded
    # so no SURE blend (a second network call each) at the levels where the guard would act (<= 0.02)
    blends = []
    real = learned_denoiser.sure_blend
    monkeypatch.setattr(learned_denoiser, "sure_blend", lambda *a, **k: blends.append(1) or real(*a, **k))
    x = scene(32)
    d = Compose(Blur(load_kernel("gaussian:1.2:7")), Noise(0.01))
    pnp(d.apply(x, seed=0), d)
    assert blends == []
    alone(d.apply(x, seed=0), Noise(0.01))  # the probe works: the guarded denoiser alone does blend
    assert blends == [1]


def test_a_batch_restores_like_its_images_one_by_one(smoother):
    x = torch.cat([scene(32), scene(32).flip(-1)])
    d = Compose(Blur(load_kernel("gaussian:1.2:7")), Noise(0.02))
    y = d.apply(x, seed=0)
    pnp = quiet_pnp(denoiser=smoother, iterations=4)
    both = pnp(y, d)
    one = torch.cat([pnp(y[:1], d), pnp(y[1:], d)])
    torch.testing.assert_close(both, one, atol=1e-5, rtol=0)


def test_gray_images_and_float64_are_kept(smoother):
    x = scene(32, channels=1).double()
    d = Compose(Blur(load_kernel("gaussian:1.0:5")), Noise(0.01))
    out = quiet_pnp(denoiser=smoother, iterations=3)(d.apply(x, seed=0), d)
    assert out.shape == x.shape and out.dtype == torch.float64
    assert float(out.min()) >= 0 and float(out.max()) <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_input_stays_on_the_gpu(smoother):
    x = scene(32).cuda()
    d = Compose(Blur(load_kernel("gaussian:1.2:7")), Noise(0.01))
    out = quiet_pnp(denoiser=smoother, iterations=3)(d.apply(x, seed=0), d)
    assert out.device.type == "cuda"
    assert {c[2] for c in Smoother.calls} == {"cuda"}


# --------------------------------------------------------------------------- parameters and schedule
def test_the_denoiser_gets_the_log_spaced_schedule_as_noise_degradations(smoother):
    d = Compose(Blur(load_kernel("gaussian:1.0:5")), Noise(0.02))
    quiet_pnp(denoiser=smoother, iterations=5)(d.apply(scene(32), seed=0), d)
    levels = [c[0] for c in Smoother.calls]
    assert len(levels) == 5
    assert levels[0] == pytest.approx(49 / 255) and levels[-1] == pytest.approx(0.02)
    ratios = [b / a for a, b in zip(levels, levels[1:])]
    assert ratios == pytest.approx([ratios[0]] * 4)


@pytest.mark.parametrize("degradation, task", [
    (Compose(Blur(torch.ones(3, 3) / 9), Noise(0.01)), "deblur"),
    (Compose(Mask.random(32, 32, 0.5), Noise(0.0)), "inpaint"),
    (Compose(Downsample(2), Noise(0.0)), "superresolve"),
])
def test_iterations_default_per_task(smoother, degradation, task):
    quiet_pnp(denoiser=smoother)(degradation.apply(scene(32), seed=0), degradation)
    assert len(Smoother.calls) == DEFAULT_ITERATIONS[task]  # x2: no hold (x3 and more: test below)
    assert DEFAULT_ITERATIONS["deblur"] < DEFAULT_ITERATIONS["superresolve"] <= DEFAULT_ITERATIONS["inpaint"]


def test_schedule_floors_and_penalties():
    assert schedule.end_level(0.0) == pytest.approx(0.6 / 255)
    assert schedule.end_level(0.0, scale=4) == pytest.approx(4 / 255)
    assert schedule.end_level(0.03) == pytest.approx(0.03)
    levels = schedule.noise_levels(8, 49 / 255, 0.01)
    assert levels[0] == pytest.approx(49 / 255) and levels[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(levels, levels[1:]))
    assert schedule.noise_levels(3, 0.1, 0.3) == [0.3] * 3  # noisier than the first level: constant
    rhos = schedule.penalties(levels, 0.01, 0.23)
    assert rhos[-1] == pytest.approx(0.23) and rhos[0] == pytest.approx(0.23 * (0.01 * 255 / 49) ** 2)
    assert schedule.penalties([0.01], 0.0)[0] > 0  # a noise-free measurement still gets a penalty


def test_sigma_end_and_rho_are_used(smoother):
    d = Compose(Blur(load_kernel("gaussian:1.0:5")), Noise(0.01))
    y = d.apply(scene(32), seed=0)
    quiet_pnp(denoiser=smoother, iterations=3, sigma_start=0.1, sigma_end=0.05)(y, d)
    assert [c[0] for c in Smoother.calls] == pytest.approx([0.1, math.sqrt(0.005), 0.05])
    weak = quiet_pnp(denoiser=smoother, iterations=3, rho=1e-4)(y, d)
    strong = quiet_pnp(denoiser=smoother, iterations=3, rho=100.0)(y, d)
    assert not torch.allclose(weak, strong)


def test_ensemble_cycles_the_eight_transforms(smoother):
    x = torch.rand(1, 3, 5, 7)
    outs = [ensemble.transform(x, i) for i in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    for i, o in enumerate(outs):
        assert torch.equal(ensemble.untransform(o, i), x)
    d = Compose(Blur(load_kernel("gaussian:1.0:5")), Noise(0.01))
    y = d.apply(scene(32)[..., :24], seed=0)  # 32 x 24: quarter turns swap height and width
    out = quiet_pnp(denoiser=smoother, iterations=4, ensemble=True)(y, d)
    assert out.shape == y.shape
    assert [c[1][-2:] for c in Smoother.calls] == [(32, 24), (24, 32), (32, 24), (24, 32)]
    Smoother.calls = []
    quiet_pnp(denoiser=smoother, iterations=4, ensemble=False)(y, d)
    assert {c[1][-2:] for c in Smoother.calls} == {(32, 24)}
    assert quiet_pnp(denoiser=smoother).config["ensemble"] is True  # the default: it costs nothing


def test_solvers_with_an_identity_denoiser_reach_the_data_step():
    """With a denoiser that changes nothing, HQS's fixed point is the data step's: z = prox(y, z, rho)."""
    y = torch.tensor([[[[0.2, 0.8]]]])

    def data_step(v, rho):  # argmin ||y - x||^2 + rho ||x - v||^2
        return (y + rho * v) / (1 + rho)

    for solve in (solvers.hqs, solvers.admm):
        out = solve(data_step, lambda v, k: v, torch.zeros_like(y), [1.0] * 60)
        torch.testing.assert_close(out, y, atol=1e-4, rtol=0)


def test_progress_bar_when_asked(smoother, capsys, monkeypatch):
    import restorekit_plugins.pnp.restorer as pnp_restorer

    monkeypatch.setattr(pnp_restorer, "PROGRESS_DELAY_S", 0.0)  # true: the bar once a run passes 2 s; this one is short
    d = Compose(Blur(load_kernel("gaussian:1.0:5")), Noise(0.01))
    y = d.apply(scene(32), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restorekit.create("pnp", denoiser=smoother, iterations=3, progress=True)(y, d)
    assert "pnp deblur" in capsys.readouterr().err
    restorekit.create("pnp", denoiser=smoother, iterations=3)(y, d)  # 'auto': not a terminal here
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- the blind-denoiser warning
def test_a_blind_denoiser_warns_once(recwarn):
    pnp = restorekit.create("pnp", denoiser="dncnn", iterations=2, progress=False)
    d = Compose(Blur(torch.ones(3, 3) / 9), Noise(0.01))
    y = d.apply(scene(32), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # not Python's once-per-place filter: pnp itself warns once
        pnp(y, d)
        pnp(y, d)
    blind = [w for w in recwarn.list if BLIND in str(w.message)]
    assert len(blind) == 1 and "'dncnn'" in str(blind[0].message)
    assert "uses_noise_level = True" in str(blind[0].message)  # names the attribute and how to declare it
    assert issubclass(blind[0].category, RestorekitWarning)  # shown on one line by restore and bench


def test_a_noise_level_aware_denoiser_does_not_warn(smoother, recwarn):
    d = Compose(Blur(torch.ones(3, 3) / 9), Noise(0.01))
    restorekit.create("pnp", denoiser=smoother, iterations=2)(d.apply(scene(32), seed=0), d)
    assert not [w for w in recwarn.list if BLIND in str(w.message)]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("params, words", [
    ({"denoiser": "no-such-denoiser"}, "no restorer named 'no-such-denoiser'"),
    ({"denoiser": "test-sharpener"}, "not denoise"),
    ({"denoiser": "test-smoother-twice"}, "pipeline"),
    ({"denoiser": "test-smoother+test-smoother"}, "pipeline"),
    ({"denoiser": "pnp"}, "itself"),
    ({"iterations": 0}, "iterations"),
    ({"iterations": -2}, "iterations"),
    ({"iterations": "2.5"}, "iterations"),
    ({"solver": "gradient"}, "admm"),
    ({"rho": 0}, "rho"),
    ({"sigma_start": 0}, "sigma_start"),
    ({"sigma_end": 2.0}, "sigma_end"),
])
def test_bad_parameters_are_one_line_errors(smoother, params, words):
    with pytest.raises(ParameterError) as info:
        restorekit.create("pnp", **params)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_mask_hiding_every_pixel_is_refused(smoother):
    d = Compose(Mask(torch.zeros(32, 32)), Noise(0.0))
    with pytest.raises(InputError, match="hides every pixel"):
        quiet_pnp(denoiser=smoother)(torch.zeros(1, 3, 32, 32), d)


def test_no_degradation_is_refused(smoother):
    with pytest.raises(RestorekitError, match="needs the degradation"):
        quiet_pnp(denoiser=smoother)(scene(32))


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "restorekit", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_refuses_a_non_denoiser_with_exit_2_and_writes_nothing(tmp_path):
    np.save(tmp_path / "blurred.npy", scene(32)[0].permute(1, 2, 0).numpy())
    result = _cli("restore", "blurred.npy", "-o", "out.npy", "--method", "pnp", "--kernel", "gaussian:1.0:5",
                  "--sigma", "0.01", "--param", "denoiser=wiener", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "not denoise" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.npy").exists()


def test_cli_deblurs_with_pnp(tmp_path):
    blurred = Compose(Blur(load_kernel("gaussian:1.0:5")), Noise(0.01)).apply(photo(32), seed=0)
    np.save(tmp_path / "blurred.npy", blurred[0].permute(1, 2, 0).numpy())
    result = _cli("restore", "blurred.npy", "-o", "out.npy", "--method", "pnp", "--kernel", "gaussian:1.0:5",
                  "--sigma", "0.01", "--param", "denoiser=dncnn", "--param", "iterations=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "out.npy").shape == (32, 32, 3)
    assert "warning: pnp: denoiser 'dncnn' is blind" in result.stderr  # one line, once
    assert result.stderr.count("is blind") == 1


def test_pnp_keeps_the_restorer_contract(smoother):
    from restorekit.testing import check_restorer

    results = check_restorer("pnp", denoiser=smoother, iterations=3)  # raises naming any failed check
    assert any(r.status == "passed" and "every_task" in r.check for r in results)


# --------------------------------------------------------------------------- the registry that builds pnp
def test_pnp_finds_its_denoiser_in_the_registry_that_builds_it():
    from restorekit.registry import Registry
    from restorekit_plugins import pnp as pnp_plugin

    with_smoother = Registry(entry_points=False)
    with_smoother.add_plugin(pnp_plugin, name="pnp")
    with_smoother.add_plugin(TestPlugin(), name="private")
    built = with_smoother.create("pnp", denoiser="test-smoother", iterations=2, progress=False)
    assert built.registry is with_smoother and type(built.denoiser) is Smoother
    assert "test-smoother" not in default_registry().names()  # never added to the process-wide one
    d = Compose(Blur(torch.ones(3, 3) / 9), Noise(0.01))
    assert built(d.apply(scene(32), seed=0), d).shape == (1, 3, 32, 32)
    # Another registry without that plugin does not find it, although the default one has dncnn etc.
    alone = Registry(entry_points=False)
    alone.add_plugin(pnp_plugin, name="pnp")
    with pytest.raises(ParameterError, match="no restorer named 'test-smoother'"):
        alone.create("pnp", denoiser="test-smoother")
    with pytest.raises(ParameterError, match="no restorer named 'drunet'"):
        alone.create("pnp")


# --------------------------------------------------------------------------- tile and max_memory
from restorekit.learned import parse_tile  # noqa: E402 - beside the class that uses them
from restorekit.tiling import parse_memory  # noqa: E402


class TilingSmoother(Smoother):
    """The smoother with the learned restorers' tile and max_memory parameters (recorded, not used)."""

    name = "test-tiling-smoother"
    params = (restorekit.Param("tile", 0, "tile side", parse=parse_tile, high=4096),
              restorekit.Param("max_memory", "auto", "budget", parse=parse_memory, high=2**40))


class TilingPlugin:
    @hookimpl
    def register_restorers(self, register):
        register(TilingSmoother)


@pytest.fixture()
def tiling_smoother(smoother):
    reg = default_registry()
    reg.add_plugin(TilingPlugin(), name="pnp-tiling-plugin")
    yield "test-tiling-smoother"
    reg.remove_plugin("pnp-tiling-plugin")


def test_tile_and_max_memory_reach_a_denoiser_that_tiles(tiling_smoother):
    built = quiet_pnp(denoiser=tiling_smoother, tile=64, max_memory="1GiB")
    assert built.denoiser.config == {"tile": 64, "max_memory": 1024**3}
    assert quiet_pnp(denoiser=tiling_smoother).denoiser.config == {"tile": 0, "max_memory": "auto"}


def test_tile_is_refused_for_a_denoiser_that_does_not_tile(smoother):
    with pytest.raises(ParameterError, match="does not restore in tiles") as info:
        quiet_pnp(denoiser=smoother, tile=64)
    assert "\n" not in str(info.value)


def test_precision_reaches_a_denoiser_that_takes_it_and_is_refused_for_one_that_does_not(smoother):
    assert quiet_pnp().denoiser.config["precision"] == "float32"
    assert quiet_pnp(precision="bfloat16").denoiser.config["precision"] == "bfloat16"
    for other in (smoother, "dncnn"):
        with pytest.raises(ParameterError, match="has no 'precision' parameter") as info:
            quiet_pnp(denoiser=other, precision="bfloat16")
        assert "\n" not in str(info.value)


def test_the_default_denoiser_gets_the_tile_of_pnp():
    built = quiet_pnp(tile=96, max_memory="300MiB")
    assert built.denoiser.config["tile"] == 96 and built.denoiser.config["max_memory"] == 300 * 1024**2


def test_max_memory_bounds_the_whole_image_data_step(smoother):
    from restorekit_plugins.pnp.restorer import data_step_memory

    d = Compose(Blur(torch.ones(3, 3) / 9), Noise(0.01))
    y = d.apply(scene(64), seed=0)
    need = data_step_memory((1, 3, 64, 64), "closed")
    with pytest.raises(InputError, match="data step works on the whole image .* more than max_memory") as info:
        quiet_pnp(denoiser=smoother, iterations=1, max_memory=need - 1)(y, d)
    assert "\n" not in str(info.value) and Smoother.calls == []  # refused before any iteration
    assert quiet_pnp(denoiser=smoother, iterations=1, max_memory=need)(y, d).shape == y.shape


def test_cli_tile_reaches_pnp_and_is_refused_for_a_blind_denoiser_that_does_not_tile(tmp_path):
    np.save(tmp_path / "blurred.npy", scene(32)[0].permute(1, 2, 0).numpy())
    result = _cli("restore", "blurred.npy", "-o", "out.npy", "--method", "pnp", "--kernel", "gaussian:1.0:5",
                  "--sigma", "0.01", "--tile", "64", "--param", "denoiser=tv", cwd=tmp_path)
    assert result.returncode == 2 and "does not restore in tiles" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.npy").exists()


# --------------------------------------------------------------------------- the reflect border's data step
def test_reflect_data_step_pads_and_crops_close_to_the_exact_one():
    from restorekit_plugins.pnp.datastep import circular_twin, padded_step

    kernel = load_kernel("gaussian:1.5:7")
    d = Compose(Blur(kernel, "reflect"), Noise(0.01))
    x = photo(48)
    y = d.apply(x, seed=0)
    z = Compose(Blur(kernel, "reflect")).forward(x)  # a blurry point to pull towards
    twin, margin = circular_twin(d)
    assert margin == 7 and all(p.boundary == "circular" for p in twin.parts())
    for rho in (0.01, 0.3):
        exact = d.prox(y, z, rho, iterations=500, tol=1e-10)
        fast = padded_step(d, y, (48, 48))(z, rho)
        assert fast.shape == exact.shape
        assert psnr(fast, exact) > 30  # they differ near the border only (36 dB at rho 0.01, 50 at 0.3)
        assert psnr(fast[..., 8:-8, 8:-8], exact[..., 8:-8, 8:-8]) > 55
    assert circular_twin(Compose(Blur(kernel), Noise(0.01))) is None  # circular: its own closed form
    assert circular_twin(Compose(Mask(torch.ones(48, 48)), Blur(kernel, "reflect"))) is None
    sr = Compose(Blur(kernel, "reflect"), Downsample(2, boundary="reflect"))
    twin, margin = circular_twin(sr)
    assert margin % 2 == 0 and twin.scale == 2


def test_pnp_on_the_reflect_border_caps_cg_or_pads_when_asked(smoother, monkeypatch):
    from restorekit.degrade import blur as blur_module

    d = Compose(Blur(load_kernel("gaussian:1.0:5"), "reflect"), Noise(0.01))
    y = d.apply(photo(32), seed=0)
    cg_calls = []
    real = blur_module.Blur._prox_cg
    monkeypatch.setattr(blur_module.Blur, "_prox_cg", lambda self, y, z, rho, iterations, tol: cg_calls.append(
        iterations) or real(self, y, z, rho, iterations, tol))
    capped = quiet_pnp(denoiser=smoother, iterations=3)(y, d)
    assert cg_calls == [20, 20, 20]  # cg_iterations, the default cap per data step
    exact = quiet_pnp(denoiser=smoother, iterations=3, cg_iterations=100)(y, d)
    assert cg_calls[3:] == [100, 100, 100]
    del cg_calls[:]
    fast = quiet_pnp(denoiser=smoother, iterations=3, reflect_step="pad")(y, d)
    assert cg_calls == []
    assert psnr(capped, exact) > 40 and psnr(fast, exact) > 35


def test_reflect_superresolution_pads_and_crops_too(smoother):
    d = Compose(Downsample(2, boundary="reflect"), Noise(0.0))
    x = photo(48)
    y = d.apply(x, seed=0)
    fast = quiet_pnp(denoiser=smoother, iterations=4, reflect_step="pad")(y, d)
    exact = quiet_pnp(denoiser=smoother, iterations=4, cg_iterations=100)(y, d)
    assert fast.shape == exact.shape == x.shape
    assert psnr(fast, exact) > 30 and abs(psnr(fast, x) - psnr(exact, x)) < 0.5


# --------------------------------------------------------------------------- issue 13: inpainting and x4 defaults
def test_noise_free_inpainting_keeps_the_observed_pixels_and_superresolution_meets_its_measurement(smoother):
    """``final_data_step`` (auto for a noise-free inpaint/superresolve): the result agrees with the measurement."""
    x = photo(48)
    mask = Compose(Mask.random(48, 48, 0.5, seed=3), Noise(0.0))
    y = mask.apply(x, seed=0)
    seen = mask.mask.expand_as(x) > 0
    out = quiet_pnp(denoiser=smoother, iterations=4)(y, mask)
    smoothed = quiet_pnp(denoiser=smoother, iterations=4, final_data_step=False)(y, mask)
    gap = (smoothed[seen] - y[seen]).abs().max()
    assert gap > 1e-2  # the denoiser's output alone moves them
    assert (out[seen] - y[seen]).abs().max() < 0.01 * gap  # the last data step (rho_k about 0.004) puts them back
    sr = Compose(Downsample(2), Noise(0.0))
    low = sr.apply(x, seed=0)
    # hold=0: the outputs averaged then come from a descent, which does not meet the measurement by itself
    met = quiet_pnp(denoiser=smoother, iterations=4, hold=0)(low, sr)
    off = quiet_pnp(denoiser=smoother, iterations=4, hold=0, final_data_step=False)(low, sr)
    assert (sr.forward(met) - low).abs().max() < 0.3 * (sr.forward(off) - low).abs().max()


def test_average_is_the_mean_of_the_last_denoiser_outputs():
    outputs = []

    def denoise(v, k):
        z = v + float(k + 1)
        outputs.append(z)
        return z

    x0 = torch.zeros(1, 1, 2, 2)
    for solve in (solvers.hqs, solvers.admm):
        outputs.clear()
        got = solve(lambda v, rho: v, denoise, x0, [1.0] * 5, average=3)
        assert torch.allclose(got, torch.stack(outputs[-3:]).mean(0))
        outputs.clear()
        assert torch.equal(solve(lambda v, rho: v, denoise, x0, [1.0] * 5), outputs[-1])  # default: the last


def test_inpainting_starts_from_the_biharmonic_fill_with_its_own_schedule(smoother):
    from skimage.restoration import inpaint_biharmonic

    x = photo(32)
    d = Compose(Mask.random(32, 32, 0.5, seed=2), Noise(0.0))
    y = d.apply(x, seed=0)
    pnp = quiet_pnp(denoiser=smoother)
    start = pnp.start(y, d, "inpaint")
    missing = (d.mask[0, 0] == 0).numpy()
    want = inpaint_biharmonic(y[0].permute(1, 2, 0).double().numpy(), missing, channel_axis=-1)
    assert torch.allclose(start[0], torch.from_numpy(want).permute(2, 0, 1).float(), atol=1e-5)
    levels, _ = pnp.schedule(d, "inpaint")
    assert levels[0] == pytest.approx(49 / 255) and levels[-1] == pytest.approx(2 / 255)
    assert len(levels) == DEFAULT_ITERATIONS["inpaint"]
    blur = Compose(Blur(torch.ones(3, 3) / 9), Noise(0.0))
    levels, _ = pnp.schedule(blur, "deblur")  # deblurring keeps DPIR's schedule
    assert levels[0] == pytest.approx(49 / 255) and levels[-1] == pytest.approx(0.6 / 255)


def test_superresolution_by_four_holds_its_last_level(smoother):
    d = Compose(Downsample(4), Noise(0.0))
    pnp = quiet_pnp(denoiser=smoother)
    levels, rhos = pnp.schedule(d, "superresolve")
    count, hold = DEFAULT_ITERATIONS["superresolve"], DEFAULT_HOLD["superresolve"]
    assert hold > 0 and len(levels) == len(rhos) == count + hold
    assert levels[0] == pytest.approx(49 / 255) and levels[count - 1] == pytest.approx(4 / 255)
    assert levels[count:] == [levels[count - 1]] * hold and rhos[count:] == [rhos[count - 1]] * hold
    assert all(a > b for a, b in zip(levels[:count], levels[1:count]))  # the descent itself is unchanged
    assert quiet_pnp(denoiser=smoother, hold=0).schedule(d, "superresolve")[0] == levels[:count]
    x2 = Compose(Downsample(2), Noise(0.0))  # x2 (measured lower with the hold) holds none unless asked
    assert len(pnp.schedule(x2, "superresolve")[0]) == count
    assert len(quiet_pnp(denoiser=smoother, hold=3).schedule(x2, "superresolve")[0]) == count + 3
    assert len(pnp.schedule(Compose(Downsample(3), Noise(0.0)), "superresolve")[0]) == count + hold  # x3 holds
    held, _ = quiet_pnp(denoiser=smoother, iterations=3, hold=2).schedule(
        Compose(Blur(torch.ones(3, 3) / 9), Noise(0.01)), "deblur")
    assert held == pytest.approx([49 / 255, math.sqrt(49 / 255 * 0.01), 0.01, 0.01, 0.01])
    assert DEFAULT_HOLD["deblur"] == 0 == DEFAULT_HOLD["inpaint"]


@pytest.mark.parametrize("bad", [-1, 1.5, "many", True])
def test_hold_must_be_a_count(bad, smoother):
    with pytest.raises(restorekit.errors.ParameterError, match="hold"):
        quiet_pnp(denoiser=smoother, hold=bad)


def test_deblurring_result_is_unchanged_by_the_inpainting_and_x4_defaults(smoother):
    d = Compose(Blur(load_kernel("gaussian:1.0:5")), Noise(0.0))
    y = d.apply(scene(32), seed=0)
    assert torch.equal(quiet_pnp(denoiser=smoother, iterations=4)(y, d),
                       quiet_pnp(denoiser=smoother, iterations=4, average=1, final_data_step=False)(y, d))


class MapReader(Restorer):
    """A stand-in denoiser that reads noise maps and records the map it is given (or None)."""

    name = "test-map-reader"
    tasks = frozenset({"denoise"})
    uses_noise_level = True
    reads_noise_map = True
    trained_for = None
    maps: list = []

    def restore(self, image, degradation=None):
        found = degradation.sigma_map(image)
        MapReader.maps.append((float(degradation.sigma), None if found is None else found.clone(), image.clone()))
        return image


class MapPlugin:
    @hookimpl
    def register_restorers(self, register):
        register(MapReader)


@pytest.fixture()
def map_readers():
    reg = default_registry()
    reg.add_plugin(MapPlugin(), name="pnp-map-plugin")
    MapReader.maps = []
    yield
    reg.remove_plugin("pnp-map-plugin")


def test_inpaint_map_gives_the_level_on_the_missing_pixels_only(map_readers):
    x = photo(24)[..., :16]  # 24 x 16: the quarter turns of the ensemble swap height and width
    d = Compose(Mask.random(24, 16, 0.5, seed=1), Noise(0.0))
    y = d.apply(x, seed=0)
    missing = (d.mask[:, :1] == 0).float()
    quiet_pnp(denoiser="test-map-reader", iterations=3, inpaint_map=True)(y, d)
    assert len(MapReader.maps) == 3
    for k, (sigma, found, image) in enumerate(MapReader.maps):
        assert found is not None
        want = sigma * ensemble.transform(missing, k)  # the map turned with the image it goes with
        assert torch.allclose(found, want.expand_as(found))
        # the zeros of the map sit on the observed pixels of the image as the denoiser sees it
        seen = ensemble.transform(d.mask[:, :1], k).expand_as(image) > 0
        assert torch.allclose(image[seen], ensemble.transform(y, k)[seen], atol=1e-3)
    # off: one level everywhere
    MapReader.maps = []
    quiet_pnp(denoiser="test-map-reader", iterations=2, inpaint_map=False)(y, d)
    assert all(found is None for _, found, _ in MapReader.maps)


def test_inpaint_map_is_off_by_default_and_stays_off_elsewhere(map_readers):
    x = photo(16)
    d = Compose(Mask.random(16, 16, 0.5, seed=1), Noise(0.0))
    y = d.apply(x, seed=0)
    quiet_pnp(denoiser="test-map-reader", iterations=2)(y, d)  # the default: one level everywhere
    assert MapReader.maps and all(found is None for _, found, _ in MapReader.maps)
    for other in (Compose(Mask.random(16, 16, 0.5, seed=1), Noise(0.02)),  # a noisy measurement: not exact
                  Compose(Blur(torch.ones(3, 3) / 9), Noise(0.0))):        # not inpainting
        MapReader.maps = []
        quiet_pnp(denoiser="test-map-reader", iterations=2, inpaint_map=True)(other.apply(x, seed=0), other)
        assert MapReader.maps and all(found is None for _, found, _ in MapReader.maps)
