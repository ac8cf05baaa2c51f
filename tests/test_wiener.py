"""The wiener plugin: recovers blurred photos, snr='auto' beats snr=100 at sigma 0.02, batches, devices, errors."""

from __future__ import annotations

import pytest
import torch

import restorekit
from restorekit.degrade import Blur, Compose, Mask, Noise
from restorekit.errors import InputError, ParameterError
from restorekit.kernels import load_kernel
from restorekit.registry import Registry


def _photo(name: str = "coffee", size: int = 128) -> torch.Tensor:
    """A crop of a scikit-image photo as a (1, C, size, size) float32 tensor in [0, 1]."""
    from skimage import data, transform

    img = getattr(data, name)()
    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    small = transform.resize(crop, (size, size), anti_aliasing=True)
    t = torch.from_numpy(small).float()
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    return t.clamp(0, 1).contiguous()


def _psnr(z: torch.Tensor, x: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (z - x).square().mean()))


@pytest.fixture(scope="module")
def kernel():
    return load_kernel("course")


def wiener(**params):
    return Registry().create("wiener", **params)


@pytest.mark.parametrize("name", ["coffee", "camera"])
def test_recovers_a_blurred_photo_with_a_psnr_gain(name, kernel):
    x = _photo(name)
    d = Compose(Blur(kernel), Noise(0.005))
    y = d.apply(x, seed=1)
    restored = wiener()(y, d)
    assert restored.shape == x.shape and restored.dtype == x.dtype
    assert _psnr(restored, x) > _psnr(y.clamp(0, 1), x) + 3.0


def test_snr_100_is_the_course_formula(kernel):
    """X = conj(H) Y / (|H|^2 + 1/snr), circular blur, computed here with numpy from scratch."""
    import numpy as np

    x = _photo("camera", 64)
    d = Compose(Blur(kernel), Noise(0.01))
    y = d.apply(x, seed=0)
    k = kernel.numpy()
    padded = np.zeros((64, 64))
    padded[:7, :7] = k
    otf = np.fft.fft2(np.roll(padded, (-3, -3), axis=(0, 1)))
    expected = np.real(np.fft.ifft2(np.conj(otf) * np.fft.fft2(y[0, 0].numpy()) / (np.abs(otf) ** 2 + 0.01)))
    got = wiener(snr=100, clip=False)(y, d)[0, 0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    clipped = wiener(snr=100)(y, d)[0, 0].numpy()
    np.testing.assert_allclose(clipped, np.clip(expected, 0, 1), atol=1e-5)


@pytest.mark.parametrize("name", ["coffee", "astronaut", "camera"])
def test_snr_auto_beats_snr_100_at_sigma_002(name, kernel):
    x = _photo(name)
    d = Compose(Blur(kernel), Noise(0.02))
    y = d.apply(x, seed=3)
    fixed = _psnr(wiener(snr=100)(y, d), x)
    auto = _psnr(wiener(snr="auto")(y, d), x)
    assert auto >= fixed + 1.0, (auto, fixed)


def test_snr_auto_is_not_worse_at_low_noise_and_without_noise(kernel):
    x = _photo("coffee")
    for sigma in (0.0, 0.005):
        d = Compose(Blur(kernel), Noise(sigma)) if sigma else Blur(kernel)
        y = d.apply(x, seed=0)
        auto = wiener(snr="auto")(y, d)
        assert torch.isfinite(auto).all()
        assert _psnr(auto, x) >= _psnr(wiener(snr=100)(y, d), x)


def test_batched_result_equals_one_image_at_a_time(kernel):
    x = torch.cat([_photo("coffee", 64), _photo("astronaut", 64)])
    d = Compose(Blur(kernel), Noise(0.02))
    y = d.apply(x, seed=0)
    for snr in (100, "auto"):
        together = wiener(snr=snr)(y, d)
        apart = torch.cat([wiener(snr=snr)(y[i : i + 1], d) for i in range(2)])
        torch.testing.assert_close(together, apart, atol=1e-5, rtol=0)


def test_gray_and_colour_give_the_same_per_channel_result(kernel):
    colour = _photo("coffee", 64)
    d = Compose(Blur(kernel), Noise(0.01))
    y = d.apply(colour, seed=0)
    for snr in (100, "auto"):
        whole = wiener(snr=snr)(y, d)
        assert whole.shape == (1, 3, 64, 64)
        for c in range(3):
            torch.testing.assert_close(wiener(snr=snr)(y[:, c : c + 1], d), whole[:, c : c + 1], atol=1e-5, rtol=0)


def test_float64_input_stays_float64(kernel):
    x = _photo("camera", 32).double()
    d = Blur(kernel)
    assert wiener()(d.apply(x), d).dtype == torch.float64


def test_reflect_blur_restores_without_ringing_at_the_borders(kernel):
    """A photo blurred with mirrored borders: treating it as circular rings at the edges, the mirror does not."""
    x = _photo("astronaut", 96)
    real = Compose(Blur(kernel, boundary="reflect"), Noise(0.002))
    y = real.apply(x, seed=0)
    assumed_circular = Compose(Blur(kernel), Noise(0.002))
    band = torch.ones(96, 96, dtype=torch.bool)
    band[8:-8, 8:-8] = False

    def border_psnr(z):
        return float(10 * torch.log10(1 / (z - x)[..., band].square().mean()))

    for snr in (100, "auto"):
        mirrored = wiener(snr=snr)(y, real)
        circular = wiener(snr=snr)(y, assumed_circular)
        assert border_psnr(mirrored) > border_psnr(circular) + 3.0
        assert border_psnr(mirrored) > _psnr(y.clamp(0, 1), x)


def test_flat_image_gives_finite_output(kernel):
    x = torch.full((1, 1, 32, 32), 0.4)
    d = Compose(Blur(kernel), Noise(0.02))
    out = wiener(snr="auto")(d.apply(x, seed=0), d)
    assert torch.isfinite(out).all()
    assert abs(float(out.mean()) - 0.4) < 0.02


@pytest.mark.parametrize("degradation", [None, Noise(0.1), Mask.lower_half(16, 16)])
def test_no_blur_kernel_is_a_clear_error(degradation):
    with pytest.raises(InputError, match="needs the blur kernel.*Blur"):
        wiener()(torch.rand(1, 1, 16, 16), degradation)


@pytest.mark.parametrize("bad", [-1, 0, "loud", float("nan")])
def test_bad_snr_is_a_parameter_error(bad):
    with pytest.raises(ParameterError, match="snr"):
        wiener(snr=bad)


def test_snr_parses_strings_and_the_spec_matches_the_class():
    assert wiener(snr="AUTO").config["snr"] == "auto"
    assert wiener(snr="50").config["snr"] == 50.0
    spec = Registry().get("wiener")
    assert spec.plugin == "wiener" and spec.tasks == frozenset({"deblur"})
    from restorekit_plugins.wiener.restorer import Wiener

    assert spec.params == Wiener.params


def test_step_parameter_in_a_pipeline(kernel):
    pipe = restorekit.pipeline("wiener", **{"wiener.snr": "auto"})
    assert pipe.steps[0].config["snr"] == "auto"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(kernel):
    x = torch.cat([_photo("coffee", 64), _photo("astronaut", 64)])
    for boundary in ("circular", "reflect"):
        d = Compose(Blur(kernel, boundary=boundary), Noise(0.02))
        y = d.apply(x, seed=0)
        for snr in (100, "auto"):
            cpu = wiener(snr=snr)(y, d)
            gpu = wiener(snr=snr)(y.cuda(), d)
            assert gpu.is_cuda
            torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)


def _data_root():
    import os
    from pathlib import Path

    env = os.environ.get("RESTOREKIT_DATA", "").strip()
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return root if (root / "CBSD68").is_dir() else None


@pytest.mark.data
@pytest.mark.skipif(_data_root() is None, reason="needs ../shared/data/CBSD68 (or RESTOREKIT_DATA)")
def test_reproduces_the_course_wiener_figures_on_cbsd68(kernel):
    """CBSD68 first 20, course kernel, SNR 100, outputs clipped to [0, 1]: about 32.2, 28.1, 22.8 dB."""
    from restorekit.imageio import list_images, load_image
    from restorekit.metrics import psnr

    images = [load_image(p) for p in list_images(_data_root() / "CBSD68")[:20]]
    blur = Blur(kernel)
    blurred = [blur.forward(x) for x in images]
    restorer = wiener(snr=100)
    for sigma, course in ((0.005, 32.2), (0.01, 28.1), (0.02, 22.8)):
        d = Compose(blur, Noise(sigma))
        # Noise(sigma).apply(blur(x), seed) draws exactly what d.apply(x, seed) does, without re-blurring.
        scores = [psnr(restorer(Noise(sigma).apply(b, seed=i), d), x) for i, (x, b) in enumerate(zip(images, blurred))]
        assert abs(sum(scores) / len(scores) - course) <= 0.3, (sigma, sum(scores) / len(scores))


def test_states_its_memory_need_and_refuses_more_than_the_budget(kernel):
    from restorekit_plugins.wiener.restorer import memory_need

    x = torch.rand(1, 3, 256, 320)
    reflect = Compose(Blur(kernel, boundary="reflect"), Noise(0.01))
    circular = Compose(Blur(kernel), Noise(0.01))
    assert memory_need(x.shape, "reflect", True) > 4 * memory_need(x.shape, "circular", False)
    budget = memory_need(x.shape, "circular", True) + 1
    assert restorekit.create("wiener", snr="auto", max_memory=budget)(x, circular).shape == x.shape
    with pytest.raises(InputError, match=r"'wiener' needs about .* MiB for 1x3x256x320 \(FFTs over the mirrored "
                                         r"510x638 grid, snr=auto\), more than max_memory.*--boundary circular"):
        restorekit.create("wiener", snr="auto", max_memory=budget)(x, reflect)
    with pytest.raises(ParameterError, match="max_memory"):
        restorekit.create("wiener", max_memory="a lot")


def test_memory_need_bounds_the_measured_peak():
    """The stated need is not below what one call really takes (peak RSS growth, measured in a subprocess)."""
    import subprocess
    import sys

    code = (
        "import os, resource, torch; torch.set_num_threads(1)\n"
        "from restorekit.degrade import Blur, Compose, Noise\n"
        "from restorekit.kernels import load_kernel\n"
        "from restorekit_plugins.wiener.restorer import Wiener, memory_need\n"
        "d = Compose(Blur(load_kernel('course'), boundary='reflect'), Noise(0.01)); r = Wiener(snr='auto')\n"
        "x = torch.rand(1, 3, 768, 768); r(x[..., :64, :64], d)\n"
        "def kib(key):\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key)) * 1024\n"
        # Reset the peak (VmHWM) to the current RSS first: an earlier transient peak (imports, plugin
        # loading) would otherwise be counted as this call's.
        "open('/proc/self/clear_refs', 'w').write('5'); rss = kib('VmRSS:')\n"
        "r(x, d); peak = kib('VmHWM:')\n"
        "print(peak - rss, memory_need(x.shape, 'reflect', True))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}).stdout.split()
    used, stated = int(out[0]), int(out[1])
    assert used <= stated
