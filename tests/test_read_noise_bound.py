"""benchmarks/bench_noise_estimation.py: the Cramer-Rao bound on the read noise of Poisson-Gaussian noise."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def _oracle_sigmas(clean, gain, sigma, draws, seed=0):
    """The efficient estimator that knows the clean image: (y - x)^2 regressed on x, weighted by 1 / v^2."""
    rng = np.random.default_rng(seed)
    x = clean.ravel()
    v = gain * x + sigma**2
    noise2 = (rng.standard_normal((draws, x.size)) * np.sqrt(v)) ** 2
    w = 1 / v**2
    design = np.stack([x, np.ones_like(x)], axis=1)
    normal = design.T @ (design * w[:, None])
    fits = np.linalg.solve(normal, (design * w[:, None]).T @ noise2.T)  # (2, draws)
    return np.sqrt(np.clip(fits[1], 0, None))


@pytest.mark.parametrize("gain, sigma", [(0.02, 0.02), (0.05, 0.03)])
def test_the_bound_is_what_the_efficient_oracle_reaches(load_benchmark, gain, sigma):
    bound = load_benchmark("bench_noise_estimation").read_noise_bound
    clean = np.linspace(0, 1, 64 * 64).reshape(64, 64) ** 2  # more dark pixels than bright, as photos
    relative_sd, p_within = bound(clean, gain, sigma)
    found = _oracle_sigmas(clean, gain, sigma, draws=2000) / sigma - 1
    assert found.std() == pytest.approx(relative_sd, rel=0.15)
    assert np.mean(np.abs(found) <= 0.15) == pytest.approx(p_within, abs=0.05)


def test_the_bound_tightens_with_more_pixels_and_more_read_noise(load_benchmark):
    bound = load_benchmark("bench_noise_estimation").read_noise_bound
    small = np.linspace(0, 1, 1000)
    large = np.linspace(0, 1, 4000)
    assert bound(large, 0.02, 0.02)[0] == pytest.approx(bound(small, 0.02, 0.02)[0] / 2, rel=0.02)
    assert bound(small, 0.05, 0.03)[0] < bound(small, 0.05, 0.02)[0]
    assert bound(large, 0.02, 0.05)[1] > 0.99


def test_one_intensity_cannot_separate_gain_from_read_noise(load_benchmark):
    bound = load_benchmark("bench_noise_estimation").read_noise_bound
    assert bound(np.full((32, 32), 0.4), 0.02, 0.02) == (float("inf"), 0.0)


def test_the_table_counts_misses_among_flagged_and_unflagged_estimates(load_benchmark, monkeypatch, capsys):
    import restorekit
    from restorekit.estimate.noise import NoiseEstimate

    bench = load_benchmark("bench_noise_estimation")
    # Four images read as: flagged and off by 40%, flagged but right, not flagged and off, not flagged and right.
    reads = iter([(0.028, (0.01, 0.03)), (0.02, (0.015, 0.03)), (0.012, (0.012, 0.012)), (0.02, None)])

    def fake(y, model):
        sigma, fits = next(reads)
        return NoiseEstimate(sigma=sigma, sigmas=(sigma,), model=model, gain=0.02, gains=(0.02,),
                             read_noise_fits=(fits,))

    monkeypatch.setattr(restorekit, "estimate_noise", fake)
    monkeypatch.setattr(bench, "RECORDS", {"poisson_gaussian": []})
    images = [torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    bench.poisson_gaussian(images, "0.02:0.02")
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row.startswith("| 0.02 | 0.02 |") and row.endswith("| 1/2 | 1/2 |")
    assert bench.RECORDS["poisson_gaussian"][0]["uncertain"] == [True, True, False, False]
