"""The bicubic restorer: plain interpolation by the degradation's scale, registered by the interp plugin."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from restorekit.degrade import Compose, Downsample, Noise
from restorekit.errors import InputError
from restorekit.metrics import psnr
from restorekit_plugins.interp.restorer import Bicubic


def _smooth(h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_is_torch_interpolation_clamped(scale):
    d = Compose(Downsample(scale), Noise(0.02))
    y = d.apply(_smooth(24 * scale, 24 * scale), seed=1)
    out = Bicubic()(y, d)
    expected = F.interpolate(y, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
    assert out.shape == (1, 3, 24 * scale, 24 * scale)
    assert torch.equal(out, expected)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_bicubic_puts_pixels_back_where_the_default_downsampling_took_them():
    """Upsampling undoes the block-centred bicubic downsampling of a smooth image far better than a shifted grid."""
    x = _smooth(96, 96)
    d = Downsample(2)
    out = Bicubic()(d.forward(x), d)
    shifted = torch.roll(out, shifts=(1, 1), dims=(-2, -1))
    inner = (..., slice(8, -8), slice(8, -8))
    assert psnr(out[inner], x[inner]) > psnr(shifted[inner], x[inner]) + 5


def test_bicubic_keeps_float64():
    d = Downsample(2)
    y = d.forward(_smooth().double())
    assert Bicubic()(y, d).dtype == torch.float64


@pytest.mark.parametrize("degradation", [None, Noise(0.1)], ids=["none", "noise-only"])
def test_bicubic_needs_a_downsampling_degradation(degradation):
    with pytest.raises(InputError, match="upsamples by the degradation's scale.*--scale S"):
        Bicubic()(torch.rand(1, 3, 16, 16), degradation)


def test_bicubic_is_registered_for_superresolve():
    from restorekit.registry import default_registry

    registry = default_registry()
    if "bicubic" not in registry.names():
        pytest.skip("the interp plugin's entry point is not installed yet (pip install -e .)")
    assert registry.names("superresolve")
    assert "bicubic" in registry.names("superresolve")
    d = Downsample(2)
    out = registry.create("bicubic")(d.forward(_smooth()), d)
    assert out.shape == (1, 3, 48, 64)
