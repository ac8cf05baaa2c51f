"""restorekit.learned: one base for the learned restorers (parameters, weights, device, gray, dtype, clipping)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import restorekit
from restorekit.errors import InputError, ParameterError, WeightsError
from restorekit.learned import LearnedRestorer, kernel_sha256, parse_tile


class _Scale(LearnedRestorer):
    """A weightless 'network' (a 3x3 conv stack) for testing the base without files."""

    name = "scale-test"
    tasks = frozenset({"denoise"})
    default_weights = "none"
    params = (restorekit.Param("gain", 1.0, "output gain"),)

    def build_network(self, arch):
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.Conv2d(8, 3, 3, padding=1))
        torch.manual_seed(0)
        for m in net:
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.normal_(m.weight, std=0.2)
        net.channels = 3
        return net

    def load_network(self, weights):
        return self.build_network({}), {"arch": {}, "metadata": {}}

    def run_network(self, net, x, degradation):
        return net(x) * self.config["gain"] + 0.5


def test_the_plugin_restorer_modules_import_no_torch():
    code = ("import sys, restorekit_plugins.dncnn.restorer, restorekit_plugins.unet.restorer, "
            "restorekit_plugins.mlp_inpaint.restorer, restorekit.learned; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_one_parameter_table_common_params_merged_in():
    names = [p.name for p in _Scale.params]
    assert names == ["weights", "device", "tile", "max_memory", "gain"]
    reg = restorekit.registry.default_registry()
    for name in ("dncnn", "unet", "unet-wiener", "mlp-inpaint"):
        spec = reg.get(name)
        cls = spec.resolve_factory()
        assert spec.params == cls.params  # read from the class: no second declaration to drift
        assert [p.name for p in spec.params].count("weights") == 1
    assert "gray_weights" in [p.name for p in reg.get("dncnn").params]
    assert "force" in [p.name for p in reg.get("unet").params]
    assert "force" not in [p.name for p in reg.get("unet-wiener").params]
    assert "tile" not in [p.name for p in reg.get("mlp-inpaint").params]  # a fixed 28x28 network


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_a_clear_error(device):
    with pytest.raises(ParameterError, match=r"'device' of 'scale-test'.*no CUDA GPU.*use cpu"):
        _Scale(device=device)


def test_a_bad_device_name_is_a_clear_error():
    with pytest.raises(ParameterError, match="unknown device 'gpu0'; use cpu, cuda"):
        _Scale(device="gpu0")
    with pytest.raises(ParameterError, match="not supported; use cpu or cuda"):
        _Scale(device="meta")


def test_unknown_shipped_name_lists_the_shipped_ones():
    with pytest.raises(WeightsError, match=r"no shipped weights named 'dncnn-colour' \(shipped: dncnn-color.*dncnn-gray\)"):
        restorekit.create("dncnn", weights="dncnn-colour")


def test_dtype_device_clip_and_gray_through_the_colour_network():
    r = _Scale()
    x = torch.rand(2, 3, 20, 24, dtype=torch.float64)
    out = r(x)
    assert out.dtype == torch.float64 and out.shape == x.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert float((out == 0).float().mean() + (out == 1).float().mean()) > 0  # something was clipped
    gray = x[:, :1]
    out_gray = r(gray)
    expected = (r.net(gray.float().expand(-1, 3, -1, -1)) + 0.5).mean(1, keepdim=True).clamp(0, 1)
    assert out_gray.shape == gray.shape and torch.allclose(out_gray.float(), expected, atol=1e-6)
    with pytest.raises(InputError, match="got 2 channels.*alpha"):
        r(torch.rand(1, 2, 20, 20))
    assert _Scale(gain=0.0)(x).unique().tolist() == [0.5]  # own parameters reach run_network


def test_no_gradients_are_recorded():
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    assert not _Scale()(x).requires_grad


def test_measured_receptive_field_of_a_conv_stack():
    r = _Scale()
    del r.net.channels  # a network that does not state its receptive field
    assert r.receptive_field(r.net) == 5  # two 3x3 convolutions


def test_tile_parameter_values():
    assert parse_tile("0") == 0 and parse_tile(256) == 256
    for bad in ("-1", "2.5", "x", True):
        with pytest.raises(ValueError):
            parse_tile(bad)
    with pytest.raises(ParameterError, match="'tile'"):
        _Scale(tile=-3)
    with pytest.raises(ParameterError, match="max_memory"):
        _Scale(max_memory="lots")


def test_kernel_hash_matches_the_unet_training_record():
    from restorekit.kernels import load_kernel

    k = load_kernel("course")
    assert kernel_sha256(k) == "d2c893d9d16929a966b7f5c2bc28b7c46eab90d4f536ac28b9098179dccc71c7"
    assert kernel_sha256(k.numpy()) == kernel_sha256(k)  # any array type, same values
    assert kernel_sha256(k.flip(0)) != kernel_sha256(k)
