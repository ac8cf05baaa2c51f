"""The example plugin package examples/restorekit-skimage, found through its entry point like any third party's."""

from __future__ import annotations

from importlib import metadata

import pytest
import torch

from restorekit.degrade import Blur, Compose, Noise
from restorekit.errors import InputError
from restorekit.kernels import load_kernel
from restorekit.registry import Registry

DENOISERS = ["tv", "wavelet", "nlmeans"]
DEBLURRERS = ["unsupervised-wiener", "richardson-lucy"]
INSTALL_HINT = "install the example plugin: pip install --no-build-isolation -e examples/restorekit-skimage"


def _photo(size: int = 64, gray: bool = False) -> torch.Tensor:
    from skimage import data, transform

    img = transform.resize(data.astronaut()[30:330, 100:400], (size, size), anti_aliasing=True)
    t = torch.from_numpy(img).float().permute(2, 0, 1)[None].clamp(0, 1)
    return t.mean(1, keepdim=True) if gray else t


def _psnr(z, x):
    return float(10 * torch.log10(1 / (z - x).square().mean()))


@pytest.fixture(scope="module")
def registry():
    eps = [ep for ep in metadata.entry_points(group="restorekit.plugins") if ep.value == "restorekit_skimage"]
    assert eps, f"no 'restorekit.plugins' entry point points to restorekit_skimage; {INSTALL_HINT}"
    return Registry()  # a fresh registry: entry points only, nothing added by hand


def test_found_through_its_entry_point(registry):
    names = registry.names()
    for name in DENOISERS + DEBLURRERS:
        assert name in names
        assert registry.get(name).plugin == "skimage"
    info = next(p for p in registry.plugins if p.name == "skimage")
    assert info.distribution == "restorekit-skimage" and info.version == "0.1.0"
    assert not [f for f in registry.failures if f.plugin == "skimage"]


def test_names_do_not_clash_with_the_built_ins(registry):
    ours = {s.name for s in registry.specs() if s.plugin == "skimage"}
    builtin = {s.name for s in registry.specs() if s.plugin != "skimage"}
    assert ours and not ours & builtin
    assert registry.get("wiener").plugin == "wiener"


def test_registering_imports_no_scikit_image():
    """The hook hands over lazy specs: skimage is imported only when a restorer is built."""
    import subprocess
    import sys

    code = (
        "import sys, restorekit_skimage; from restorekit.registry import Registry; "
        "r = Registry(entry_points=False); r.add_plugin(restorekit_skimage, name='skimage'); r.names(); "
        "print('skimage' in sys.modules, 'restorekit_skimage.restorers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("name", DENOISERS)
@pytest.mark.parametrize("gray", [False, True])
def test_denoisers_remove_noise(registry, name, gray):
    x = _photo(gray=gray)
    d = Noise(0.1)
    y = d.apply(x, seed=0)
    out = registry.create(name)(y, d)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert _psnr(out, x) > _psnr(y, x) + 3


def test_sigma_is_estimated_without_a_degradation(registry):
    x = _photo()
    y = Noise(0.1).apply(x, seed=0)
    assert _psnr(registry.create("nlmeans")(y), x) > _psnr(y, x) + 3
    assert registry.create("tv", weight=0.08)(y).shape == x.shape


@pytest.mark.parametrize("name", DEBLURRERS)
@pytest.mark.parametrize("boundary", ["circular", "reflect"])
def test_deblurrers_sharpen(registry, name, boundary):
    x = _photo(96)
    d = Compose(Blur(load_kernel("course"), boundary=boundary), Noise(0.005))
    y = d.apply(x, seed=0)
    out = registry.create(name)(y, d)
    assert out.shape == x.shape
    assert _psnr(out, x) > _psnr(y, x) + 3


@pytest.mark.parametrize("name", DEBLURRERS)
def test_deblurrers_need_the_kernel(registry, name):
    with pytest.raises(InputError, match="needs the blur kernel"):
        registry.create(name)(torch.rand(1, 1, 16, 16), Noise(0.01))


def test_four_channels_are_refused(registry):
    with pytest.raises(InputError, match="alpha"):
        registry.create("tv")(torch.rand(1, 4, 16, 16), Noise(0.1))


def test_bm3d_is_left_out_when_its_package_is_missing(monkeypatch):
    import restorekit_skimage

    monkeypatch.setattr(restorekit_skimage, "bm3d_available", lambda: False)
    names = Registry().names()
    assert "bm3d" not in names and "tv" in names


@pytest.mark.parametrize("gray", [True, False])
def test_bm3d_with_the_true_sigma(registry, gray):
    pytest.importorskip("bm3d")
    x = _photo(48, gray=gray)
    d = Noise(0.1)
    y = d.apply(x, seed=0)
    out = registry.create("bm3d")(y, d)
    assert out.shape == x.shape
    assert _psnr(out, x) > _psnr(y, x) + 5


# --------------------------------------------------------------------------- biharmonic inpainting
def test_biharmonic_fills_the_masked_half_and_needs_a_mask():
    import restorekit
    from restorekit.degrade import Compose, Mask, Noise
    from restorekit.errors import InputError
    from restorekit.metrics import psnr

    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    clean = torch.stack([0.2 + 0.6 * xx, 0.5 + 0.3 * torch.sin(3 * yy), 0.3 + 0.4 * xx * yy])[None]
    gray = clean[:, :1]
    deg = Compose(Mask.lower_half(32, 32), Noise(0.0))
    restorer = restorekit.create("biharmonic")
    for image in (clean, gray):
        masked = deg.apply(image, seed=0)
        out = restorer(masked, deg)
        assert out.shape == image.shape
        assert psnr(out, image) > psnr(masked, image) + 10
        assert torch.equal(out[..., :16, :], masked[..., :16, :].clamp(0, 1))  # observed pixels kept
    # a mask that differs per channel is filled channel by channel
    per_channel = torch.ones(1, 3, 32, 32)
    per_channel[:, 0, 16:] = 0
    per_channel[:, 2, :, :8] = 0
    mixed = Mask(per_channel)
    out = restorer(mixed.apply(clean), mixed)
    assert psnr(out, clean) > psnr(mixed.apply(clean), clean) + 10
    with pytest.raises(InputError, match="no mask"):
        restorer(clean, Noise(0.01))
    with pytest.raises(InputError, match="no mask"):
        restorer(clean)


# --------------------------------------------------------------------------- declared ranges and the audit's cases
def test_every_declaration_is_valid_and_the_wavelet_choices_are_pywavelets():
    import restorekit_skimage

    for name, (tasks, params, _, _) in restorekit_skimage.RESTORERS.items():
        spec_params = {p.name: p for p in params}
        for p in params:
            assert p.problems() == [], (name, p.name)
        if name == "wavelet":
            import pywt

            assert spec_params["wavelet"].allowed() == tuple(pywt.wavelist(kind="discrete"))
            assert "db1" in spec_params["wavelet"].allowed()


@pytest.mark.parametrize("name, params, reason", [
    ("tv", {"max_num_iter": -5}, "'max_num_iter' of 'tv' got -5: must be >= 1"),
    ("wavelet", {"wavelet": "db99"}, "'wavelet' of 'wavelet' got 'db99': choose one of its"),
    ("unsupervised-wiener", {"seed": -1}, "'seed' of 'unsupervised-wiener' got -1: must be >= 0"),
    ("richardson-lucy", {"num_iter": -1}, "'num_iter' of 'richardson-lucy' got -1: must be >= 1"),
    ("nlmeans", {"h_factor": "nan"}, "'h_factor' of 'nlmeans' got 'nan': must be a number, not NaN"),
    ("nlmeans", {"h_factor": 0}, "must be > 0"),
    ("nlmeans", {"patch_size": -3}, "'patch_size' of 'nlmeans' got -3: must be >= 1"),
    ("nlmeans", {"patch_size": 2.5}, "must be an integer, not the float 2.5"),
    ("nlmeans", {"patch_distance": -1}, "must be >= 0"),
])
def test_out_of_range_parameters_are_refused_before_scikit_image_runs(registry, name, params, reason):
    from restorekit.errors import ParameterError

    with pytest.raises(ParameterError, match=reason):
        registry.create(name, **params)


def test_bm3d_profiles_are_those_the_installed_package_has(registry):
    pytest.importorskip("bm3d")
    from restorekit.errors import ParameterError

    with pytest.raises(ParameterError, match="choose one of 'np', 'vn', 'vn_old', 'high', 'deb'"):
        registry.create("bm3d", profile="lc")


@pytest.mark.parametrize("size", [1, 2, 8])
@pytest.mark.parametrize("channels", [1, 3])
def test_bm3d_refuses_images_below_its_measured_minimum(registry, size, channels):
    pytest.importorskip("bm3d")
    with pytest.raises(InputError, match=rf"'bm3d' needs an image of at least 9x9 pixels .*got {size}x{size}"):
        registry.create("bm3d")(torch.rand(1, channels, size, size), Noise(0.1))
    with pytest.raises(InputError, match="at least 12x12"):
        registry.create("bm3d", profile="vn")(torch.rand(1, channels, 11, 40), Noise(0.1))


@pytest.mark.slow
def test_bm3d_runs_at_its_minimum_size_in_a_subprocess():
    """9x9 is the smallest image the 'np' profile restores; 8x8 crashed the interpreter (run apart)."""
    pytest.importorskip("bm3d")
    import subprocess
    import sys

    code = ("import torch, restorekit; from restorekit.degrade import Noise; "
            "print(tuple(restorekit.create('bm3d')(torch.rand(1, 1, 9, 9), Noise(0.1)).shape))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "(1, 1, 9, 9)", out.stderr


@pytest.mark.parametrize("size, kernel", [(1, 7), (2, 7), (1, 1), (2, 1), (5, 7)])
def test_unsupervised_wiener_refuses_images_smaller_than_its_prior_or_kernel(registry, size, kernel):
    k = torch.ones(kernel, kernel) / kernel**2
    d = Compose(Blur(k), Noise(0.01))
    need = max(3, kernel)
    with pytest.raises(InputError, match=rf"at least {need}x{need} pixels .*got {size}x{size}"):
        registry.create("unsupervised-wiener")(torch.rand(1, 1, size, size), d)


def test_unsupervised_wiener_restores_a_3x3_image(registry):
    d = Compose(Blur(torch.ones(3, 3) / 9), Noise(0.01))
    assert registry.create("unsupervised-wiener")(torch.rand(1, 3, 3, 3), d).shape == (1, 3, 3, 3)


def test_biharmonic_refuses_a_mask_hiding_every_pixel_and_handles_tiny_images(registry):
    from restorekit.degrade import Mask

    restorer = registry.create("biharmonic")
    for shape in [(1, 1), (2, 2), (16, 16)]:
        hidden = Mask(torch.zeros(*shape))
        with pytest.raises(InputError, match="the mask hides every pixel of image 0, so 'biharmonic' has nothing"):
            restorer(torch.rand(1, 1, *shape), hidden)
    per_channel = torch.ones(1, 3, 4, 4)
    per_channel[:, 1] = 0
    with pytest.raises(InputError, match="hides every pixel of channel 1 of image 0"):
        restorer(torch.rand(1, 3, 4, 4), Mask(per_channel))
    one_missing = torch.ones(2, 2)
    one_missing[1, 1] = 0
    x = torch.rand(1, 3, 2, 2)
    out = restorer(x, Mask(one_missing))
    assert out.shape == x.shape and torch.equal(out[..., 0, 0], x[..., 0, 0])
    assert torch.equal(restorer(torch.full((1, 1, 1, 1), 0.5), Mask(torch.ones(1, 1))), torch.full((1, 1, 1, 1), 0.5))


# --------------------------------------------------------------------------- the same cases through the CLI
def _cli(capsys, *argv):
    from restorekit.cli.main import main

    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("method, params, fragment", [
    ("nlmeans", ["patch_size=-3"], "parameter 'patch_size' of 'nlmeans' got '-3': must be >= 1"),
    ("tv", ["max_num_iter=-5"], "parameter 'max_num_iter' of 'tv' got '-5': must be >= 1"),
    ("wavelet", ["wavelet=nope"], "parameter 'wavelet' of 'wavelet' got 'nope': choose one of its"),
    ("nlmeans", ["h_factor=nan"], "must be a number, not NaN"),
])
def test_cli_refuses_out_of_range_parameters_with_one_line(registry, tmp_path, capsys, method, params, fragment):
    from restorekit.imageio import write_image

    image = tmp_path / "in.png"
    write_image(image, torch.rand(1, 3, 16, 16))
    argv = ["restore", image, "-o", tmp_path / "out.png", "--method", method, "--sigma", "0.1"]
    code, err = _cli(capsys, *argv, *[a for p in params for a in ("--param", p)])
    assert code == 2 and len(err) == 1 and err[0].startswith("restorekit restore: error: "), err
    assert fragment in err[0]
    assert not (tmp_path / "out.png").exists()


def test_cli_refuses_bm3d_on_an_8x8_image_instead_of_crashing(registry, tmp_path, capsys):
    pytest.importorskip("bm3d")
    from restorekit.imageio import write_image

    image = tmp_path / "tiny.png"
    write_image(image, torch.rand(1, 1, 8, 8))
    code, err = _cli(capsys, "restore", image, "-o", tmp_path / "out.png", "--method", "bm3d", "--sigma", "0.1")
    assert code == 2 and any("'bm3d' needs an image of at least 9x9 pixels" in line for line in err), err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("name", ["tv", "wavelet", "nlmeans", "bm3d"])
def test_denoisers_that_read_the_noise_level_declare_it(name):
    """pnp steers these through Noise(sigma_k), so it must not warn that they are blind."""
    import restorekit

    assert restorekit.registry.default_registry().get(name).resolve_factory().uses_noise_level is True
