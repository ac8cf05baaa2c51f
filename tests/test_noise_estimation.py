"""restorekit.estimate_noise: Gaussian sigma from the image alone (PCA of patches, Chen et al. 2015)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import restorekit
from restorekit.degrade import Noise
from restorekit.errors import InputError


def _photo(name: str = "astronaut", size: int = 256) -> torch.Tensor:
    import skimage.data as data

    image = getattr(data, name)()
    x = torch.from_numpy(image[:size, :size].astype(np.float32) / 255)
    return x.permute(2, 0, 1)[None] if x.dim() == 3 else x[None, None]


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1, 0.2])
def test_within_ten_percent_on_textured_colour_photos(name, sigma):
    y = Noise(sigma).apply(_photo(name), seed=1)
    assert restorekit.estimate_noise(y).sigma == pytest.approx(sigma, rel=0.10)


@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.2])
def test_within_ten_percent_on_a_gray_photo(sigma):
    # Gray patches have a third of the dimensions: the cameraman's grass reads as noise below
    # sigma 0.05 (+20% at 0.02, +66% at 0.01, measured; benchmarks/RESULTS.md).
    y = Noise(sigma).apply(_photo("camera"), seed=1)
    assert restorekit.estimate_noise(y).sigma == pytest.approx(sigma, rel=0.10)


def test_far_closer_than_the_wavelet_estimate_on_texture():
    from skimage.restoration import estimate_sigma

    y = Noise(0.02).apply(_photo("astronaut"), seed=0)
    ours = abs(restorekit.estimate_noise(y).sigma / 0.02 - 1)
    wavelet = abs(float(np.mean(estimate_sigma(y[0].numpy(), channel_axis=0))) / 0.02 - 1)
    assert ours < 0.1 < wavelet


def test_batch_per_image_and_per_channel():
    x = _photo("coffee", 128)
    batch = torch.cat([Noise(0.05).apply(x, seed=0), Noise(0.1).apply(x, seed=1)])
    est = restorekit.estimate_noise(batch, per_channel=True)
    assert est.sigmas == pytest.approx((0.05, 0.1), rel=0.1)
    assert est.sigma == pytest.approx(0.075, rel=0.1)
    assert len(est.per_channel) == 2 and len(est.per_channel[0]) == 3
    assert "sigma 0.07" in est.describe()


def test_numpy_and_2d_inputs():
    y = Noise(0.05).apply(_photo("camera"), seed=0)[0, 0].numpy()
    assert restorekit.estimate_noise(y).sigma == pytest.approx(0.05, rel=0.1)


@pytest.mark.parametrize("bad, match", [
    (torch.rand(1, 3, 10, 10), "at least 21 pixels"),
    (torch.full((1, 1, 64, 64), float("nan")), "NaN"),
    (torch.rand(1, 1, 64, 64) * 255, "0-255"),
    (torch.rand(2, 2, 2, 2, 2), "shape"),
])
def test_bad_input_is_one_clear_error(bad, match):
    with pytest.raises(InputError, match=match):
        restorekit.estimate_noise(bad)


@pytest.mark.data
def test_cbsd68_first_20_within_ten_percent():
    from restorekit.imageio import load_image
    from restorekit.kernels import default_data_root

    root = default_data_root()
    if root is None or not (root / "CBSD68").is_dir():
        pytest.skip("needs ../shared/data/CBSD68")
    files = sorted((root / "CBSD68").iterdir())[:20]
    worst = 0.0
    for i, f in enumerate(files):
        x = load_image(f)
        for sigma in (0.01, 0.05, 0.1, 0.2):
            worst = max(worst, abs(restorekit.estimate_noise(Noise(sigma).apply(x, seed=i)).sigma / sigma - 1))
    assert worst < 0.10


# ---------------------------------------------------------------- Poisson-Gaussian (issue 14)
@pytest.mark.parametrize("gain, sigma", [(0.01, 0.02), (0.05, 0.03)])
def test_poisson_gaussian_gain_within_fifteen_percent(gain, sigma):
    from restorekit.degrade import PoissonGaussian

    y = PoissonGaussian(gain, sigma).apply(_photo("astronaut", 384), seed=0)
    est = restorekit.estimate_noise(y, model="poisson-gaussian")
    assert est.model == "poisson-gaussian" and est.gains == (est.gain,)
    assert est.gain == pytest.approx(gain, rel=0.15)
    # The read noise is the intercept at black, an extrapolation: looser (benchmarks/RESULTS.md).
    assert est.sigma == pytest.approx(sigma, rel=0.5)
    assert "Poisson-Gaussian gain" in est.describe() and "Foi" in est.describe()
    assert type(est.degradation()).__name__ == "PoissonGaussian"


def test_poisson_gaussian_model_on_gaussian_noise_finds_little_gain():
    y = Noise(0.05).apply(_photo("astronaut", 384), seed=0)
    est = restorekit.estimate_noise(y, model="poisson-gaussian")
    # gain * mid-grey stays a small part of the variance: sigma carries the noise
    assert est.gain * 0.5 < 0.25 * 0.05**2
    assert est.sigma == pytest.approx(0.05, rel=0.15)


def test_unknown_model_is_one_clear_error():
    with pytest.raises(InputError, match="poisson-gaussian"):
        restorekit.estimate_noise(torch.rand(1, 1, 64, 64), model="poisson")


@pytest.mark.data
def test_cbsd68_first_20_poisson_gaussian_gain_within_fifteen_percent():
    from restorekit.degrade import PoissonGaussian
    from restorekit.imageio import load_image
    from restorekit.kernels import default_data_root

    root = default_data_root()
    if root is None or not (root / "CBSD68").is_dir():
        pytest.skip("needs ../shared/data/CBSD68")
    files = sorted((root / "CBSD68").iterdir())[:20]
    errors = []
    for i, f in enumerate(files):
        y = PoissonGaussian(0.02, 0.02).apply(load_image(f), seed=i)
        errors.append(abs(restorekit.estimate_noise(y, model="poisson-gaussian").gain / 0.02 - 1))
    assert float(np.mean(errors)) < 0.15


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    import io

    from PIL import Image

    array = (x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)  # PIL's default: 4:2:0 chroma
    out = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(out).permute(2, 0, 1)[None]


def test_jpeg_chroma_subsampling_does_not_collapse_the_estimate():
    # Without the luma fallback the colour PCA read 3-11% of the sigma on such images (benchmarks/RESULTS.md).
    y = _jpeg(Noise(0.05).apply(_photo("astronaut", 256), seed=0), 90)
    assert restorekit.estimate_noise(y).sigma == pytest.approx(0.05, rel=0.35)
    from restorekit.estimate.noise import _chroma_detail

    assert _chroma_detail(y[0].double().numpy()) < 0.08
    assert _chroma_detail(Noise(0.01).apply(_photo("astronaut", 256), seed=0)[0].double().numpy()) > 0.1


# ------------------------------------------- the read noise: line fit under texture (issue 14, item 2)
def test_quantile_line_follows_the_bins_that_texture_spared():
    from restorekit.estimate.noise import _quantile_line

    level = np.linspace(0.05, 0.95, 32)
    truth = 0.05 * level + 0.02**2
    texture = np.where(np.arange(32) % 3 == 0, 1.12, 1.0)  # a third of the bins read 12% high
    gain, offset = _quantile_line(level, truth * texture)
    assert gain == pytest.approx(0.05, rel=0.02)
    assert np.sqrt(offset) == pytest.approx(0.02, rel=0.05)
    # least squares through the same bins is pulled up by them
    design = np.stack([level, np.ones_like(level)], 1) / (truth * texture)[:, None]
    ls = np.linalg.lstsq(design, np.ones(32), rcond=None)[0]
    assert abs(np.sqrt(max(ls[1], 0)) / 0.02 - 1) > 0.10


def test_normalised_bin_variance_is_unbiased_on_a_wide_bin():
    # A dark bin spans black to mid-grey: the noise variance of its patches differs 15-fold. The
    # weak-texture threshold at the bin's mean variance drops the noisier patches as texture.
    from restorekit.estimate.noise import _bin_variance, _gradient_energy, _normalised_bin_variance

    rng = np.random.default_rng(0)
    expected = np.linspace(0.0004, 0.006, 6000)
    rows = rng.standard_normal((6000, 49)) * np.sqrt(expected)[:, None]
    rows -= rows.mean(axis=1, keepdims=True)
    truth = float(expected.mean())
    found = _normalised_bin_variance(rows, _gradient_energy(rows, 7), expected, 7)
    assert found == pytest.approx(truth, rel=0.03)
    assert _bin_variance(rows, 7) < 0.9 * truth


def test_poisson_gaussian_read_noise_within_fifteen_percent_on_a_smooth_ramp():
    # With intensities down to black the intercept is measured, not extrapolated far.
    from restorekit.degrade import PoissonGaussian

    ramp = torch.linspace(0, 1, 384)[None, :].expand(384, 384)
    wave = 0.05 * torch.sin(torch.arange(384.0) / 9)[:, None]
    x = (ramp + wave).clamp(0, 1)[None, None].expand(1, 3, 384, 384).contiguous()
    for gain, sigma in ((0.02, 0.02), (0.05, 0.02), (0.01, 0.01)):
        est = restorekit.estimate_noise(PoissonGaussian(gain, sigma).apply(x, seed=1), model="poisson-gaussian")
        assert est.gain == pytest.approx(gain, rel=0.15)
        assert est.sigma == pytest.approx(sigma, rel=0.15)


def test_jpeg_block_edges_are_not_read_as_noise():
    # A noise-free photo saved at quality 30 has strong 8x8 blocking; the estimate stays near zero
    # (measured 0.0013 here; the same crop before JPEG reads 0.006, its own fine texture).
    y = _jpeg(_photo("astronaut", 256), 30)
    assert restorekit.estimate_noise(y).sigma < 0.005


def test_poisson_gaussian_on_a_noise_free_flat_image_is_zero_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = restorekit.estimate_noise(torch.full((1, 3, 64, 64), 0.5), model="poisson-gaussian")
    assert est.gain == 0.0 and est.sigma < 1e-4


# ------------------------------- the read noise: the stabilised refinement (issue 14, session 16)
def test_refinement_sees_through_texture_alike_in_every_channel():
    # Fine texture of the noise's own size, the same in R, G and B: the per-channel bins of the line fit
    # read it as variance (+30% on the read noise, measured); the patches of all channels at once keep it
    # in their large eigenvalues.
    from restorekit.degrade import PoissonGaussian
    from restorekit.estimate.noise import _pg_fit

    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0.02, 0.98, 256)[None, :].expand(256, 256)
    x = (ramp + 0.02 * torch.randn(256, 256, generator=g)).clamp(0, 1)[None, None].expand(1, 3, 256, 256)
    for gain, sigma in ((0.01, 0.02), (0.02, 0.02)):
        y = PoissonGaussian(gain, sigma).apply(x.contiguous(), seed=1)
        line_gain, line_sigma = _pg_fit(y[0].double().numpy(), 7)
        assert line_sigma > 1.2 * sigma
        est = restorekit.estimate_noise(y, model="poisson-gaussian")
        assert est.sigma == pytest.approx(sigma, rel=0.1)
        assert est.gain == pytest.approx(gain, rel=0.1)


@pytest.mark.parametrize("gain, sigma", [(0.05, 0.02), (0.01, 0.01)])
def test_stabilised_variance_is_exact_at_low_counts(gain, sigma):
    from restorekit.degrade.vst import anscombe
    from restorekit.estimate.noise import _stabilised_variance

    levels = np.array([0.0, 0.025, 0.05, 0.1, 0.5])
    exact = _stabilised_variance(levels, gain, sigma)
    rng = np.random.default_rng(0)
    for level, want in zip(levels, exact):
        y = gain * rng.poisson(level / gain, 400_000) + sigma * rng.standard_normal(400_000)
        found = float(anscombe(torch.from_numpy(y), gain, sigma).var())
        assert found == pytest.approx(want, rel=0.02)
    assert exact[-1] == pytest.approx(1.0, abs=0.02)


def test_stabilised_variance_of_many_photons_is_one_without_summing_them():
    # A near-Gaussian image's line can have a tiny gain: 1.2 / 1e-7 photons must not be summed one by one.
    from restorekit.estimate.noise import _stabilised_variance

    found = _stabilised_variance(np.linspace(0, 1.2, 97), 1e-7, 0.02)
    assert found[1:] == pytest.approx(1.0) and 0.9 < found[0] <= 1.0
