"""PSNR and SSIM: known values, layouts, batches and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from restorekit.errors import InputError
from restorekit.metrics import psnr, ssim


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_psnr_known_values():
    ref = torch.zeros(1, 1, 8, 8)
    assert psnr(ref + 0.1, ref) == pytest.approx(20.0)
    assert psnr(ref + 0.01, ref) == pytest.approx(40.0)
    assert psnr(ref + 25.5, ref, data_range=255) == pytest.approx(20.0)


def test_psnr_matches_the_formula():
    x, ref = _rand(1, 3, 12, 10, seed=1), _rand(1, 3, 12, 10, seed=2)
    mse = float(((x - ref) ** 2).mean())
    assert psnr(x, ref) == pytest.approx(10 * math.log10(1 / mse))


def test_psnr_is_averaged_per_image_over_the_batch():
    ref = torch.zeros(2, 1, 8, 8)
    x = ref.clone()
    x[0] += 0.1  # 20 dB
    x[1] += 0.01  # 40 dB; the PSNR of the pooled MSE would be ~23 dB
    assert psnr(x, ref) == pytest.approx(30.0)


def test_layouts_and_array_types_agree():
    x, ref = _rand(1, 3, 16, 16, seed=3), _rand(1, 3, 16, 16, seed=4)
    value = psnr(x, ref)
    assert psnr(x[0], ref[0]) == pytest.approx(value)
    assert psnr(x.numpy(), ref.numpy()) == pytest.approx(value)
    assert psnr(x.float(), ref) == pytest.approx(value, abs=1e-4)
    gray = _rand(16, 16, seed=5)
    assert psnr(gray, gray * 0.9) == pytest.approx(psnr(gray[None, None], gray[None, None] * 0.9))


def test_identical_images_give_infinite_psnr():
    x = _rand(1, 1, 8, 8)
    assert psnr(x, x) == math.inf


def test_ssim_identical_is_one():
    x = _rand(2, 3, 24, 24)
    assert ssim(x, x) == pytest.approx(1.0)


def test_ssim_matches_scikit_image_gaussian_ssim():
    ref = _rand(1, 3, 32, 40, seed=6)
    x = (ref + 0.1 * _rand(1, 3, 32, 40, seed=7)).clamp(0, 1)
    expected = structural_similarity(
        ref[0].numpy(), x[0].numpy(), channel_axis=0, data_range=1.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    assert ssim(x, ref) == pytest.approx(expected)
    expected_gray = structural_similarity(
        ref[0, 0].numpy(), x[0, 0].numpy(), data_range=1.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    assert ssim(x[:, :1], ref[:, :1]) == pytest.approx(expected_gray)


def test_ssim_falls_as_noise_grows():
    ref = torch.linspace(0, 1, 48 * 48, dtype=torch.float64).reshape(1, 1, 48, 48)
    noise = torch.randn(1, 1, 48, 48, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    values = [ssim(ref + s * noise, ref) for s in (0.01, 0.05, 0.2)]
    assert values[0] > values[1] > values[2]
    assert values[0] < 1.0


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(InputError, match=r"estimate has shape \(1, 3, 8, 8\) but the reference has shape \(1, 1, 8, 8\)"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(InputError, match="same size"):
        ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 17))


def test_channel_last_arrays_get_a_hint():
    with pytest.raises(InputError, match="moveaxis"):
        psnr(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)))


def test_bad_values_and_arguments():
    bad = torch.zeros(1, 1, 16, 16)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN or Inf"):
        psnr(bad, torch.zeros(1, 1, 16, 16))
    with pytest.raises(InputError, match="data_range"):
        psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), data_range=0)
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(InputError, match=r"\(N, C, H, W\)"):
        psnr(torch.zeros(1, 1, 1, 4, 4), torch.zeros(1, 1, 1, 4, 4))
    with pytest.raises(InputError, match="empty"):
        psnr(torch.zeros(1, 1, 0, 4), torch.zeros(1, 1, 0, 4))
