"""Poisson-Gaussian noise (issue 14): the model, its sigma map, the Anscombe path and the noise spec."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import restorekit
from restorekit.degrade import (Blur, Compose, Noise, PoissonGaussian, anscombe, inverse_anscombe, parse_noise,
                                vst_denoise)
from restorekit.errors import InputError


def _photo(size: int = 128, name: str = "astronaut") -> torch.Tensor:
    import skimage.data as data

    x = torch.from_numpy(getattr(data, name)()[:size, :size].astype(np.float32) / 255)
    return x.permute(2, 0, 1)[None]


def test_exported_from_restorekit_and_degrade():
    assert restorekit.PoissonGaussian is PoissonGaussian
    assert isinstance(PoissonGaussian(0.01, 0.01), Noise)


def test_draw_has_the_model_variance_and_is_seeded():
    x = torch.cat([torch.full((1, 1, 128, 128), v) for v in (0.1, 0.8)])
    pg = PoissonGaussian(0.02, 0.01)
    y = pg.apply(x, seed=3)
    assert torch.equal(y, pg.apply(x, seed=3)) and not torch.equal(y, pg.apply(x, seed=4))
    for i, v in enumerate((0.1, 0.8)):
        assert float(y[i].mean()) == pytest.approx(v, abs=0.005)
        assert float(y[i].var()) == pytest.approx(0.02 * v + 0.01**2, rel=0.05)
    assert float(y.min()) < 0  # not clipped, like Noise


def test_gain_zero_is_gaussian_and_bad_values_are_refused():
    x = torch.full((1, 1, 64, 64), 0.5)
    assert float(PoissonGaussian(0.0, 0.05).apply(x, seed=0).std()) == pytest.approx(0.05, rel=0.05)
    for bad in (-0.1, 2.0, float("nan"), True):
        with pytest.raises(InputError, match="gain"):
            PoissonGaussian(bad, 0.01)


def test_sigma_map_and_scalar_sigma():
    x = torch.cat([torch.full((1, 3, 64, 64), 0.2), torch.full((1, 3, 64, 64), 0.9)], dim=-1)
    pg = PoissonGaussian(0.02, 0.01)
    y = pg.apply(x, seed=0)
    m = pg.sigma_map(y)
    assert m.shape == y.shape
    assert float(m[..., 10:54, 10:54].mean()) == pytest.approx(math.sqrt(0.02 * 0.2 + 1e-4), rel=0.03)
    assert float(m[..., 10:54, 74:118].mean()) == pytest.approx(math.sqrt(0.02 * 0.9 + 1e-4), rel=0.03)
    assert pg.sigma == pytest.approx(math.sqrt(0.02 * 0.5 + 1e-4))  # unbound: mid-grey
    bound = pg.observe(y)
    assert bound.sigma == pytest.approx(float(m.pow(2).mean().sqrt()), rel=0.02)  # the RMS of the map
    c = Compose(Blur(torch.ones(3, 3) / 9), pg)
    assert c.sigma_map(y).shape == y.shape and Compose(Blur(torch.ones(3, 3) / 9), Noise(0.1)).sigma_map(y) is None
    assert c.describe()["parts"][1] == {"type": "PoissonGaussian", "gain": 0.02, "sigma": 0.01}


def test_compose_keeps_the_closed_form_data_step():
    k = torch.ones(5, 5) / 25
    y, z = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    a = Compose(Blur(k), PoissonGaussian(0.02, 0.01)).prox(y, z, 0.1)
    b = Compose(Blur(k), Noise(0.05)).prox(y, z, 0.1)
    assert torch.allclose(a, b, atol=1e-6)


def test_anscombe_stabilises_and_the_inverse_is_unbiased():
    for level in (0.02, 0.1, 0.5):
        x = torch.full((1, 1, 256, 256), level)
        y = PoissonGaussian(0.01, 0.01).apply(x, seed=1)
        d = anscombe(y, 0.01, 0.01)
        assert float(d.std()) == pytest.approx(1.0, abs=0.1)
        assert float(inverse_anscombe(d.mean(), 0.01, 0.01)) == pytest.approx(level, rel=0.03, abs=1e-3)
    # the algebraic inverse is biased at low counts; this one is not
    x = torch.full((1, 1, 256, 256), 0.02)
    d = anscombe(PoissonGaussian(0.01, 0.0).apply(x, seed=2), 0.01, 0.0).mean()
    algebraic = 0.01 * ((float(d) / 2) ** 2 - 3 / 8)
    assert abs(float(inverse_anscombe(d, 0.01, 0.0)) - 0.02) < abs(algebraic - 0.02)


def test_vst_denoise_with_a_gaussian_denoiser_beats_the_noisy_input():
    from skimage.restoration import denoise_tv_chambolle

    x = _photo()
    y = PoissonGaussian(0.02, 0.01).apply(x, seed=0)

    def tv(z, s):
        return torch.from_numpy(denoise_tv_chambolle(z[0].numpy(), weight=2 * s, channel_axis=0))[None].float()

    out = vst_denoise(tv, y, 0.02, 0.01)
    assert float(((out - x) ** 2).mean()) < 0.5 * float(((y - x) ** 2).mean())


def test_each_kind_of_denoiser_meets_poisson_gaussian_noise_its_way():
    from restorekit.degrade.vst import route
    from restorekit.metrics import psnr

    x = _photo()
    pg = PoissonGaussian(0.02, 0.01)
    y = pg.apply(x, seed=0)
    one = Noise(pg.observe(y).sigma)  # the same RMS sigma, no map
    for name in ("dncnn", "ffdnet"):  # blind: as it is; a map reader: the map
        restorer = restorekit.create(name)
        assert route(restorer, pg) is None
        assert float(((restorer(y, pg) - x) ** 2).mean()) < 0.3 * float(((y - x) ** 2).mean()), name
    assert psnr(restorekit.create("ffdnet")(y, pg), x) > psnr(restorekit.create("ffdnet")(y, one), x)
    nlmeans = restorekit.create("nlmeans")  # one sigma read: through the Anscombe transform
    assert route(nlmeans, pg) is not None and route(nlmeans, Compose(Blur(torch.ones(3, 3) / 9), pg)) is None
    assert psnr(nlmeans(y, pg), x) > psnr(nlmeans(y, one), x) + 0.3


def test_parse_noise_specs():
    assert isinstance(parse_noise("0.05"), Noise) and parse_noise("0.05").sigma == 0.05
    pg = parse_noise("pg:0.02,0.01")
    assert (pg.gain, pg.read_sigma) == (0.02, 0.01)
    for bad, match in (("pg:0.02", "pg:GAIN,SIGMA"), ("pg:a,b", "numbers"), ("pg:3,0.01", "gain"),
                       ("loud", "noise spec"), ("25", "above 1")):
        with pytest.raises(InputError, match=match):
            parse_noise(bad)


def test_pnp_weights_its_data_step_by_the_noise_map():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from plugins.pnp.restorer import noise_weight, weighted_prox

    k = torch.ones(5, 5) / 25
    y, z = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    assert noise_weight(Compose(Blur(k), Noise(0.05)), y) is None
    pg = Compose(Blur(k), PoissonGaussian(0.02, 0.01))
    w = noise_weight(pg, y)
    assert w.shape == y.shape and float(w.mean()) > 0.9
    # a uniform weight is the ordinary data step
    same = weighted_prox(pg, y, z, 0.1, torch.ones_like(y), 200)
    assert torch.allclose(same, pg.prox(y, z, 0.1), atol=1e-4)


def test_pnp_given_the_poisson_gaussian_model_beats_one_sigma():
    from restorekit.kernels import load_kernel
    from restorekit.metrics import psnr

    x = _photo(name="chelsea")  # measured: +0.32 dB here (and +5.6 dB on coffee, +0.09 dB on astronaut)
    k = load_kernel("course")
    pg = PoissonGaussian(0.01, 0.01)
    y = Compose(Blur(k), pg).apply(x, seed=0)
    pnp = restorekit.create("pnp", iterations=24, progress=False)
    a = psnr(pnp(y, Compose(Blur(k), pg)), x)
    b = psnr(pnp(y, Compose(Blur(k), Noise(pg.observe(y).sigma))), x)  # the same RMS sigma, no map
    print(f"pnp PSNR: Poisson-Gaussian model {a:.2f} dB, one sigma {b:.2f} dB")
    assert a > b + 0.1


def test_command_line_degrades_restores_and_benches_with_pg(tmp_path, capsys):
    from restorekit.cli.main import main

    clean = tmp_path / "photo.npy"
    np.save(clean, _photo(64)[0].permute(1, 2, 0).numpy())
    noisy, out = tmp_path / "noisy.npy", tmp_path / "out.npy"
    assert main(["degrade", str(clean), "-o", str(noisy), "--noise", "pg:0.02,0.01"]) == 0
    y = np.load(noisy)
    assert 0.05 < float((y - np.load(clean)).std()) < 0.2
    assert main(["restore", str(noisy), "-o", str(out), "--method", "dncnn", "--noise", "pg:0.02,0.01"]) == 0
    assert float(((np.load(out) - np.load(clean)) ** 2).mean()) < float(((y - np.load(clean)) ** 2).mean())
    capsys.readouterr()
    assert main(["restore", str(noisy), "-o", str(out), "--method", "ffdnet"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"{noisy}: noise sigma ") and line.endswith("estimated (restorekit.estimate_noise)")
    assert main(["restore", str(noisy), "-o", str(out), "--method", "ffdnet", "--noise", "pg:auto"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"{noisy}: noise Poisson-Gaussian gain ") and line.endswith("(restorekit.estimate_noise)")
    assert main(["bench", "--data", str(clean), "--task", "denoise", "--methods", "dncnn", "--noise",
                 "pg:0.02,0.01", "--no-progress"]) == 0
    assert "Poisson-Gaussian noise of gain 0.02" in capsys.readouterr().out
    assert main(["degrade", str(clean), "-o", str(out), "--noise", "pg:0.02"]) == 2
    assert "pg:GAIN,SIGMA" in capsys.readouterr().err


def test_classical_denoisers_estimate_with_restorekit_estimate_noise(monkeypatch):
    import restorekit.estimate.noise as module

    calls = []
    real = module.estimate_noise
    monkeypatch.setattr(module, "estimate_noise", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = _photo(64)
    y = Noise(0.05).apply(x, seed=0)
    for name in ("tv", "nlmeans", "wavelet", "ffdnet", "drunet"):
        calls.clear()
        restorekit.create(name)(y)
        assert calls, f"{name} with sigma=auto and no degradation did not call restorekit.estimate_noise"
