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
