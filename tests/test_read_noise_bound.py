"""benchmarks/bench_noise_estimation.py: the Cramer-Rao bound on the read noise of Poisson-Gaussian noise."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def _oracle_sigmas(oracle, clean, gain, sigma, draws, seed=0):
    """The bench's oracle (knows the clean image) on ``draws`` draws of the bound's Gaussian model."""
    rng = np.random.default_rng(seed)
    spread = np.sqrt(gain * clean + sigma**2)
    return np.array([oracle(clean, clean + rng.standard_normal(clean.shape) * spread, gain, sigma)[1]
                     for _ in range(draws)])


@pytest.mark.parametrize("gain, sigma", [(0.02, 0.02), (0.05, 0.03)])
def test_the_bound_is_what_the_efficient_oracle_reaches(load_benchmark, gain, sigma):
    bench = load_benchmark("bench_noise_estimation")
    clean = np.linspace(0, 1, 64 * 64).reshape(64, 64) ** 2  # more dark pixels than bright, as photos
    relative_sd, p_within = bench.read_noise_bound(clean, gain, sigma)
    found = _oracle_sigmas(bench.read_noise_oracle, clean, gain, sigma, draws=2000) / sigma - 1
    assert found.std() == pytest.approx(relative_sd, rel=0.15)
    assert np.mean(np.abs(found) <= 0.15) == pytest.approx(p_within, abs=0.05)


def test_the_bound_tightens_with_more_pixels_and_more_read_noise(load_benchmark):
    bound = load_benchmark("bench_noise_estimation").read_noise_bound
    small = np.linspace(0, 1, 1000)
    large = np.linspace(0, 1, 4000)
    assert bound(large, 0.02, 0.02)[0] == pytest.approx(bound(small, 0.02, 0.02)[0] / 2, rel=0.02)
    assert bound(small, 0.05, 0.03)[0] < bound(small, 0.05, 0.02)[0]
    assert bound(large, 0.02, 0.05)[1] > 0.99


def test_the_oracle_reads_poisson_gaussian_draws_it_was_not_started_on(load_benchmark):
    from restorekit.degrade import PoissonGaussian

    oracle = load_benchmark("bench_noise_estimation").read_noise_oracle
    clean = torch.linspace(0, 1, 3 * 256 * 256).reshape(1, 3, 256, 256) ** 2
    noisy = PoissonGaussian(0.02, 0.03).apply(clean, seed=0)
    # Started 2x off in both, it still lands on the draw's own parameters.
    gain, sigma = oracle(clean.numpy(), noisy.numpy(), 0.04, 0.06)
    assert gain == pytest.approx(0.02, rel=0.02) and sigma == pytest.approx(0.03, rel=0.03)
    # No read noise at all: the fitted sigma^2 is near zero or below, and the oracle says 0 rather than failing.
    noisy = PoissonGaussian(0.02, 0.0).apply(clean, seed=1)
    assert oracle(clean.numpy(), noisy.numpy(), 0.02, 0.01)[1] < 0.003


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
    # The oracle column scores the very draws the estimates were scored on (seed = the image's index).
    from restorekit.degrade import PoissonGaussian

    oracle = [bench.read_noise_oracle(x.numpy(), PoissonGaussian(0.02, 0.02).apply(x, seed=i).numpy(), 0.02, 0.02)[1]
              for i, x in enumerate(images)]
    within = sum(abs(s / 0.02 - 1) <= 0.15 for s in oracle)
    assert row.split("|")[9].strip().startswith(f"{within}/4 (")
    assert bench.RECORDS["poisson_gaussian"][0]["oracle_sigma_errors"] == pytest.approx([s / 0.02 - 1 for s in oracle])
    assert bench.RECORDS["poisson_gaussian"][0]["uncertain"] == [True, True, False, False]
