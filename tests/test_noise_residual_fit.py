"""The colour residual fit of the Poisson-Gaussian estimate (issue 14, session 18): Laplacian residuals
across the local colour, a line through bins of their squares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import restorekit
from restorekit.degrade import PoissonGaussian
from restorekit.estimate.noise import _LAPLACIAN, _residual_fit


def _colour_ramp(size: int = 192) -> torch.Tensor:
    # Every channel linear in position, in different directions: the Laplacian leaves the noise alone.
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([0.02 + 0.9 * xx, 0.05 + 0.6 * yy, 0.1 + 0.4 * (xx + yy) / 2])[None]


def _shaded(size: int = 192, seed: int = 0) -> torch.Tensor:
    # Strong fine shading texture (a photo's commonest: it scales R, G and B alike) on a smooth colour.
    g = torch.Generator().manual_seed(seed)
    shade = 0.35 + 0.6 * torch.rand(size, size, generator=g)
    return (_colour_ramp(size) * shade).clamp(0, 1)


@pytest.mark.parametrize("gain, sigma, within", [(0.01, 0.01, 0.06), (0.02, 0.02, 0.04), (0.05, 0.03, 0.04)])
def test_unbiased_where_the_image_is_locally_linear(gain, sigma, within):
    # 20 draws on a 256x256 ramp: the read noise scatters by 5-11% from draw to draw (measured), so the mean
    # over the draws is within 2.5% of the truth unless the fit is biased.
    ramp = _colour_ramp(256)
    found = np.array([_residual_fit(PoissonGaussian(gain, sigma).apply(ramp, seed=s)[0].double().numpy())
                      for s in range(20)])
    assert found[:, 0].mean() == pytest.approx(gain, rel=0.02)
    assert found[:, 1].mean() == pytest.approx(sigma, rel=within)
    # Its own standard error is the spread from draw to draw (20 draws: that spread is itself known to ~16%;
    # measured 1.02-1.19 times it, where the least squares' error without RESIDUAL_ERROR_SCALE is 0.68-0.79).
    assert found[:, 2].mean() == pytest.approx(found[:, 1].std() / sigma, rel=0.25)


@pytest.mark.parametrize("gain, sigma", [(0.01, 0.02), (0.02, 0.02)])
def test_sees_through_shading_texture(gain, sigma):
    y = PoissonGaussian(gain, sigma).apply(_shaded(), seed=3)[0].double().numpy()
    # The texture is stronger than the noise in a channel's residual ...
    from scipy.ndimage import convolve

    mask = np.asarray(_LAPLACIAN)
    texture = convolve(_shaded()[0, 0].double().numpy(), mask)[1:-1, 1:-1].std() / 6
    assert texture > 1.1 * np.sqrt(gain * 0.3 + sigma**2)
    # ... and across the colour it is gone.
    found_gain, found_sigma, error = _residual_fit(y)
    assert found_gain == pytest.approx(gain, rel=0.1)
    assert found_sigma == pytest.approx(sigma, rel=0.15) and 0 < error < 0.15
    est = restorekit.estimate_noise(y, model="poisson-gaussian")
    # Plain Python values, so an estimate goes into JSON as it is (the benchmark writes them there).
    assert type(est.uncertain) is bool and all(type(e) is float for e in est.read_noise_errors)


def test_clipped_pixels_are_left_out():
    # A third of the image saturated at 1 (a sky, a lamp) has no noise there; taken as data it would pull the
    # bright bins' variance to zero and the line with them.
    x = _colour_ramp()
    y = PoissonGaussian(0.02, 0.02).apply(x, seed=0)
    y[..., :64] = 1.0
    gain, sigma, _ = _residual_fit(y[0].double().numpy())
    assert gain == pytest.approx(0.02, rel=0.1) and sigma == pytest.approx(0.02, rel=0.15)


def test_only_for_colour_images_large_enough():
    rng = np.random.default_rng(0)
    assert _residual_fit(rng.random((1, 64, 64))) is None
    assert _residual_fit(rng.random((4, 64, 64))) is None
    assert _residual_fit(rng.random((3, 12, 12))) is None  # 100 pixels: too few for three bins


def test_estimate_noise_combines_the_two_fits_on_colour_images(monkeypatch):
    from restorekit.estimate import noise

    y = PoissonGaussian(0.02, 0.02).apply(_colour_ramp(), seed=0)
    real = noise._residual_fit
    monkeypatch.setattr(noise, "_residual_fit", lambda item: None if real(item) is None else (0.08, 0.08, 0.05))
    monkeypatch.setattr(noise, "_stabilised_fit", lambda item, gain, sigma, patch: (0.02, 0.02))
    est = restorekit.estimate_noise(y, model="poisson-gaussian")
    assert est.gain == pytest.approx(0.04) and est.sigma == pytest.approx(0.04)  # geometric means
    gray = restorekit.estimate_noise(y[:, :1], model="poisson-gaussian")
    assert gray.gain == pytest.approx(0.02) and gray.sigma == pytest.approx(0.02)  # no colour: the first alone


def test_a_blue_image_is_fitted_without_warnings():
    # Blue is the axis the directions across the colour are built from; a colour near it must still give
    # two directions (the ring mean is at least 1e-3 in every channel), and clipped pixels none.
    import warnings

    x = torch.zeros(1, 3, 96, 96)
    x[:, 2] = torch.linspace(0.2, 0.9, 96)[None, :]
    y = PoissonGaussian(0.02, 0.02).apply(x, seed=0)
    y[:, :2] = 0.0  # exactly black red and green: the ring mean's colour is (0, 0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = _residual_fit(y[0].double().numpy())
    assert found is None  # every pixel touches a clipped value: nothing to fit, no NaN
    y = PoissonGaussian(0.02, 0.02).apply(x, seed=0)
    y[:, :2] = 1e-4 * (1 + torch.rand(1, 2, 96, 96, generator=torch.Generator().manual_seed(0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gain, sigma, error = _residual_fit(y[0].double().numpy())
    assert np.isfinite(gain) and np.isfinite(sigma) and gain > 0 and error > 0


def _with_fits(monkeypatch, first: float, second: float, error: float = 0.05) -> None:
    from restorekit.estimate import noise

    real = noise._residual_fit
    monkeypatch.setattr(noise, "_residual_fit", lambda item: None if real(item) is None else (0.02, second, error))
    monkeypatch.setattr(noise, "_stabilised_fit", lambda item, gain, sigma, patch: (0.02, first))


def test_fits_far_apart_make_the_read_noise_uncertain(monkeypatch):
    y = PoissonGaussian(0.02, 0.02).apply(_colour_ramp(), seed=0)
    _with_fits(monkeypatch, 0.02, 0.08)
    est = restorekit.estimate_noise(y, model="poisson-gaussian")
    assert est.read_noise_fits == ((0.02, 0.08),) and est.disagreement == pytest.approx(4.0)
    assert est.uncertain
    assert est.describe().endswith("; read noise uncertain: its two fits read 0.0200 and 0.0800")
    _with_fits(monkeypatch, 0.02, 0.022)  # 10% apart: no note
    est = restorekit.estimate_noise(y, model="poisson-gaussian")
    assert not est.uncertain and est.uncertainty_note() == "" and "uncertain" not in est.describe()
    gray = restorekit.estimate_noise(y[:, :1], model="poisson-gaussian")  # one fit: nothing to compare
    assert gray.read_noise_fits == (None,) and gray.disagreement == 1.0 and not gray.uncertain
    assert gray.read_noise_errors == (None,) and gray.read_noise_error == 0.0


def test_a_residual_fit_unsure_of_itself_makes_the_read_noise_uncertain(monkeypatch):
    from restorekit.estimate.noise import PG_READ_NOISE_ERROR

    y = PoissonGaussian(0.02, 0.02).apply(_colour_ramp(), seed=0)
    _with_fits(monkeypatch, 0.02, 0.021, error=0.3)  # the fits agree, but the second is loose
    est = restorekit.estimate_noise(y, model="poisson-gaussian")
    assert est.read_noise_errors == (0.3,) and est.uncertain
    assert est.describe().endswith("; read noise uncertain: its residual fit's standard error is 30%")
    _with_fits(monkeypatch, 0.01, 0.03, error=0.3)  # both reasons, in one note
    assert restorekit.estimate_noise(y, model="poisson-gaussian").uncertainty_note() == (
        "read noise uncertain: its two fits read 0.0100 and 0.0300; its residual fit's standard error is 30%")
    _with_fits(monkeypatch, 0.02, 0.021, error=PG_READ_NOISE_ERROR)  # the limit itself is not uncertain
    assert not restorekit.estimate_noise(y, model="poisson-gaussian").uncertain


def test_the_batch_names_its_worst_image(monkeypatch):
    from restorekit.estimate.noise import PG_DISAGREEMENT, NoiseEstimate

    est = NoiseEstimate(sigma=0.02, sigmas=(0.02, 0.02, 0.02), model="poisson-gaussian", gain=0.01,
                        gains=(0.01,) * 3, read_noise_fits=((0.02, 0.021), None, (0.03, 0.015)),
                        read_noise_errors=(0.3, None, 0.1))
    assert est.disagreement == pytest.approx(2.0) and est.read_noise_error == 0.3 and est.uncertain
    assert est.uncertainty_note() == ("read noise uncertain: its two fits read 0.0150 and 0.0300; its residual "
                                      "fit's standard error is 30%")
    at_limit = NoiseEstimate(sigma=0.02, sigmas=(0.02,), model="poisson-gaussian", gain=0.01, gains=(0.01,),
                             read_noise_fits=((0.02, 0.02 * PG_DISAGREEMENT),))
    assert not at_limit.uncertain  # the limit itself is not uncertain
    assert not restorekit.estimate_noise(_colour_ramp(64)).uncertain  # Gaussian: one estimate, never flagged


def test_command_line_says_when_the_read_noise_is_uncertain(tmp_path, monkeypatch, capsys):
    from restorekit.cli.main import main

    noisy, out = tmp_path / "noisy.npy", tmp_path / "out.npy"
    np.save(noisy, PoissonGaussian(0.02, 0.02).apply(_colour_ramp(64), seed=0)[0].permute(1, 2, 0).numpy())
    _with_fits(monkeypatch, 0.01, 0.03)
    assert main(["restore", str(noisy), "-o", str(out), "--method", "ffdnet", "--noise", "pg:auto"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"{noisy}: noise Poisson-Gaussian gain ")
    assert line.endswith("(restorekit.estimate_noise); read noise uncertain: its two fits read 0.0100 and 0.0300")
