"""wiener+unet: a pipeline registered by name, preferred over 'a+b' composition, and better than Wiener alone."""

from __future__ import annotations

import pytest
import torch

import restorekit
from restorekit import hookimpl
from restorekit.degrade import Blur, Compose, Noise
from restorekit.registry import Registry
from restorekit.restorer import Pipeline, Restorer, pipeline_spec


class _Add(Restorer):
    name = "add"
    tasks = frozenset({"denoise"})
    output_range = None  # an arithmetic test double: its values leave [0, 1]

    def restore(self, image, degradation=None):
        return image + 1


class _Double(Restorer):
    name = "double"
    tasks = frozenset({"denoise"})
    output_range = None  # an arithmetic test double: its values leave [0, 1]

    def restore(self, image, degradation=None):
        return image * 2


class _Plugin:
    @hookimpl
    def register_restorers(self, register):
        register(_Add)
        register(_Double)
        # Registered under the name an 'a+b' composition would parse, but with the steps reversed.
        register(pipeline_spec("add+double", ["double", "add"], tasks={"denoise"}))


def test_a_registered_name_wins_over_a_plus_b_composition():
    reg = Registry(entry_points=False)
    reg.add_plugin(_Plugin(), name="test-plugin")
    x = torch.ones(1, 1, 2, 2)
    assert torch.equal(reg.create("add+double")(x), x * 2 + 1)  # the registered pipeline: double, then add
    assert torch.equal(reg.create("double+add")(x), x * 2 + 1)  # composition: double, then add
    assert torch.equal(reg.pipeline("add", "double")(x), (x + 1) * 2)


def _needs_wiener():
    if "wiener" not in restorekit.registry.default_registry().names():
        pytest.skip("the wiener plugin is not registered")


def test_wiener_unet_is_registered_as_a_pipeline_of_wiener_and_unet_wiener():
    spec = restorekit.registry.default_registry().get("wiener+unet")
    assert spec.is_pipeline and spec.plugin == "wiener_unet"
    assert [name for name, _ in spec.steps] == ["wiener", "unet-wiener"]
    assert dict(spec.steps)["wiener"] == {"snr": 100.0}
    assert spec.tasks == frozenset({"deblur"})
    _needs_wiener()
    built = restorekit.create("wiener+unet")
    assert isinstance(built, Pipeline) and [s.name for s in built.steps] == ["wiener", "unet-wiener"]
    assert built.steps[0].config["snr"] == 100.0
    assert restorekit.create("wiener+unet", **{"wiener.snr": 50}).steps[0].config["snr"] == 50.0


def test_wiener_unet_beats_wiener_alone_on_a_photo(monkeypatch, tmp_path):
    _needs_wiener()
    from skimage import data, transform

    from restorekit.kernels import load_kernel

    monkeypatch.setenv("RESTOREKIT_DATA", str(tmp_path / "no-data"))
    img = transform.resize(data.coffee()[100:340, 150:390], (96, 96), anti_aliasing=True)
    x = torch.from_numpy(img).float().permute(2, 0, 1)[None].clamp(0, 1)
    d = Compose(Blur(load_kernel("course")), Noise(0.02))
    y = d.apply(x, seed=0)

    def psnr(z):
        return float(10 * torch.log10(1 / (z.clamp(0, 1) - x).square().mean()))

    wiener = restorekit.create("wiener", snr=100)(y, d)
    both = restorekit.create("wiener+unet")(y, d)
    assert psnr(both) > psnr(wiener) + 2.0
