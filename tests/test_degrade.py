"""Degradation operators: blur against direct spatial convolution, adjoints, noise statistics,
masks, composition, the regularised inverse, and clear errors for bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from restorekit.degrade import Blur, Compose, Degradation, Identity, Mask, Noise, check_kernel, psf2otf
from restorekit.errors import InputError


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _spatial_blur(x, kernel, boundary):
    """Reference: a true convolution (kernel flipped for F.conv2d) with the centre at (kh // 2, kw // 2).

    Output pixel i reads input pixels i - (kh - 1 - kh // 2) .. i + kh // 2, so the image is padded
    by kh - 1 - kh // 2 rows on top and kh // 2 below (likewise for columns).
    """
    kh, kw = kernel.shape
    pads = (kw - 1 - kw // 2, kw // 2, kh - 1 - kh // 2, kh // 2)
    padded = F.pad(x, pads, mode=boundary)
    c = x.shape[1]
    weight = kernel.flip(0, 1).to(x.dtype)[None, None].expand(c, 1, kh, kw)
    return F.conv2d(padded, weight, groups=c)


KERNEL_SHAPES = [(1, 1), (3, 3), (5, 5), (2, 2), (4, 4), (3, 4), (4, 1), (2, 5)]


# --------------------------------------------------------------------------- blur
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("boundary", ["circular", "reflect"])
def test_blur_matches_spatial_convolution(shape, boundary):
    x = _rand(2, 3, 12, 15, seed=1)
    kernel = _rand(*shape, seed=2) + 0.1
    got = Blur(kernel, boundary).forward(x)
    expected = _spatial_blur(x, kernel, boundary)
    assert got.shape == x.shape
    assert torch.allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 3), (4, 4), (2, 5)])
def test_blur_kernel_centre_is_kh_over_2(shape):
    """A delta at kernel index (a, b) moves the image by (a - kh // 2, b - kw // 2) (convolution, not correlation)."""
    x = _rand(1, 1, 9, 11, seed=3)
    kh, kw = shape
    for a, b in [(0, 0), (kh - 1, kw - 1), (kh // 2, kw // 2)]:
        delta = torch.zeros(shape, dtype=torch.float64)
        delta[a, b] = 1.0
        got = Blur(delta).forward(x)
        assert torch.allclose(got, torch.roll(x, shifts=(a - kh // 2, b - kw // 2), dims=(2, 3)), atol=1e-12)


def test_blur_keeps_dtype_and_float32_is_close():
    x = _rand(1, 1, 10, 10, seed=4, dtype=torch.float32)
    k = _rand(3, 3, seed=5)
    y = Blur(k).forward(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y.double(), _spatial_blur(x.double(), k, "circular"), atol=1e-5)


def test_psf2otf_of_a_centred_delta_is_one():
    delta = torch.zeros(5, 5, dtype=torch.float64)
    delta[2, 2] = 1
    otf = psf2otf(delta, (8, 10))
    assert otf.shape == (8, 6)
    assert torch.allclose(otf, torch.ones_like(otf))


@pytest.mark.parametrize("shape", [(8, 10), (9, 7), (37, 30)])
def test_psf2otf_on_either_half_spectrum_grid_is_the_full_fft_cut(shape):
    import numpy as np

    k = _rand(3, 4, seed=2)
    full = np.fft.fft2(np.roll(np.pad(k.numpy(), ((0, shape[0] - 3), (0, shape[1] - 4))), (-1, -2), axis=(0, 1)))
    np.testing.assert_allclose(psf2otf(k, shape).numpy(), full[:, : shape[1] // 2 + 1], atol=1e-12)
    np.testing.assert_allclose(psf2otf(k, shape, half_axis=-2).numpy(), full[: shape[0] // 2 + 1, :], atol=1e-12)
    with pytest.raises(ValueError, match="half_axis"):
        psf2otf(k, shape, half_axis=0)


@pytest.mark.parametrize("shape, axis", [((481, 321), -2), ((321, 481), -1), ((64, 64), -1), ((402, 398), -2),
                                         ((499, 320), -1), ((1, 3, 320, 499), -2), ((2, 2), -1), ((1, 1), -1)])
def test_half_spectrum_axis_gives_the_complex_transforms_the_larger_prime(shape, axis):
    from restorekit.degrade import half_spectrum_axis

    assert half_spectrum_axis(shape) == axis


def _cpu_fft(name):
    if name == "ducc0":
        pytest.importorskip("ducc0", reason="the optional ducc0 FFT is not installed")
    return name


@pytest.mark.parametrize("backend", ["scipy", "ducc0"])
@pytest.mark.parametrize("shape", [(37, 30), (30, 37), (45, 52), (32, 32), (21, 21)])
def test_wiener_inverse_is_the_same_filter_on_either_fft_grid_and_library(shape, backend, monkeypatch):
    """The CPU path picks the half-spectrum axis by size and the FFT library by what is installed;
    the result must be the textbook filter either way."""
    import numpy as np

    from restorekit.degrade import cpu_fft_backend

    monkeypatch.setenv("RESTOREKIT_CPU_FFT", _cpu_fft(backend))
    assert cpu_fft_backend() == backend

    k = _rand(5, 4, seed=3)
    x = _rand(2, 3, *shape, seed=4, dtype=torch.float32)
    blur = Blur(k)
    got = blur.regularized_inverse(x, 0.01).double().numpy()
    h, w = shape
    otf = np.fft.fft2(np.roll(np.pad(k.numpy(), ((0, h - 5), (0, w - 4))), (-2, -2), axis=(0, 1)))
    expected = np.real(np.fft.ifft2(np.conj(otf) * np.fft.fft2(x.double().numpy()) / (np.abs(otf) ** 2 + 0.01)))
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # The autograd path (torch's FFT on the rfft2 grid) agrees with it.
    with torch.enable_grad():
        traced = blur.regularized_inverse(x.clone().requires_grad_(True), 0.01)
    np.testing.assert_allclose(traced.detach().double().numpy(), expected, atol=2e-5)


def test_cpu_fft_backend_names_a_bad_choice(monkeypatch):
    from restorekit.degrade import cpu_fft_backend
    from restorekit.errors import ParameterError

    monkeypatch.setenv("RESTOREKIT_CPU_FFT", "fftw")
    with pytest.raises(ParameterError, match="RESTOREKIT_CPU_FFT='fftw' is not one of ducc0, scipy"):
        cpu_fft_backend()
    monkeypatch.delenv("RESTOREKIT_CPU_FFT")
    assert cpu_fft_backend() in ("ducc0", "scipy")


# --------------------------------------------------------------------------- adjoints
def _adjoint_gap(op: Degradation, shape, seed=0) -> float:
    x = _rand(*shape, seed=seed)
    y = _rand(*shape, seed=seed + 1)
    lhs = float((op.forward(x) * y).sum())
    rhs = float((x * op.adjoint(y)).sum())
    return abs(lhs - rhs) / max(abs(lhs), 1e-12)


@pytest.mark.parametrize("shape", [(3, 3), (4, 4), (2, 5), (7, 6)])
@pytest.mark.parametrize("boundary", ["circular", "reflect"])
def test_blur_adjoint_identity(shape, boundary):
    kernel = _rand(*shape, seed=7)
    assert _adjoint_gap(Blur(kernel, boundary), (2, 3, 11, 13)) < 1e-12


def test_mask_and_compose_adjoint_identity():
    mask = Mask.random(11, 13, 0.4, seed=1)
    assert _adjoint_gap(mask, (2, 3, 11, 13)) < 1e-12
    composed = Compose(Blur(_rand(3, 4, seed=8), "reflect"), mask, Noise(0.1))
    assert _adjoint_gap(composed, (2, 3, 11, 13)) < 1e-12
    assert _adjoint_gap(Identity(), (1, 1, 4, 4)) == 0


# --------------------------------------------------------------------------- noise
def test_noise_statistics():
    sigma = 0.05
    x = torch.full((1, 1, 256, 256), 0.5)
    y = Noise(sigma).apply(x, seed=0)
    n = (y - x).double()
    # 65,536 samples: the mean's standard error is sigma / 256, the std's about sigma / 362.
    assert abs(float(n.mean())) < 4 * sigma / 256
    assert float(n.std()) == pytest.approx(sigma, rel=0.02)
    assert float(y.max()) > 0.5 + 3 * sigma, "noise is not clipped"


def test_noise_is_seeded_and_reproducible():
    x = torch.zeros(1, 3, 16, 16)
    d = Noise(0.1)
    assert torch.equal(d.apply(x, seed=3), d.apply(x, seed=3))
    assert not torch.equal(d.apply(x, seed=3), d.apply(x, seed=4))
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(d.apply(x, generator=g1), d.apply(x, generator=g2))
    assert torch.equal(d.apply(x.double(), seed=3).float(), d.apply(x, seed=3))


def test_zero_noise_is_no_noise():
    x = _rand(1, 1, 8, 8)
    d = Noise(0)
    assert torch.equal(d.apply(x, seed=0), x)
    assert d.tasks == frozenset() and Noise(0.1).tasks == {"denoise"}
    assert Noise(0.1).sigma == 0.1


@pytest.mark.parametrize("sigma", [-0.1, float("nan"), float("inf"), "loud", None])
def test_bad_sigma(sigma):
    with pytest.raises(InputError, match="sigma"):
        Noise(sigma)


# --------------------------------------------------------------------------- mask
def test_mask_forward_zeroes_missing_pixels():
    m = Mask.lower_half(6, 5)
    x = _rand(2, 3, 6, 5) + 0.5
    y = m.forward(x)
    assert torch.equal(y[..., :3, :], x[..., :3, :])
    assert (y[..., 3:, :] == 0).all()
    assert m.tasks == {"inpaint"}
    assert m.mask.shape == (1, 1, 6, 5)


def test_random_mask_is_seeded_and_has_the_fraction():
    a = Mask.random(128, 128, 0.3, seed=1)
    assert torch.equal(a.mask, Mask.random(128, 128, 0.3, seed=1).mask)
    assert not torch.equal(a.mask, Mask.random(128, 128, 0.3, seed=2).mask)
    assert 1 - float(a.mask.mean()) == pytest.approx(0.3, abs=0.02)


def test_mask_nonzero_counts_as_observed_and_shapes():
    m = Mask(torch.tensor([[0.0, 0.2], [True, False]]))
    assert m.mask.flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    per_image = Mask(torch.ones(2, 1, 4, 4))
    assert per_image.forward(torch.ones(2, 3, 4, 4)).shape == (2, 3, 4, 4)


def test_wrong_mask_shape():
    with pytest.raises(InputError, match=r"does not fit image batch of shape \(1, 3, 8, 8\)"):
        Mask(torch.ones(8, 9)).forward(torch.ones(1, 3, 8, 8))
    with pytest.raises(InputError, match="does not fit"):
        Mask(torch.ones(3, 1, 8, 8)).forward(torch.ones(2, 1, 8, 8))
    with pytest.raises(InputError, match=r"\(H, W\) or \(N, C, H, W\)"):
        Mask(torch.ones(3, 8, 8))
    with pytest.raises(InputError, match="NaN"):
        Mask(torch.tensor([[float("nan")]]))
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        Mask.random(4, 4, 1.0)


# --------------------------------------------------------------------------- compose
def test_compose():
    k = _rand(3, 3, seed=10)
    blur, mask, n1, n2 = Blur(k), Mask.lower_half(8, 8), Noise(0.03), Noise(0.04)
    d = Compose(blur, Compose(mask, n1), n2)  # nested Compose is flattened
    assert len(d.parts()) == 4
    x = _rand(1, 2, 8, 8, seed=11)
    assert torch.equal(d.forward(x), mask.forward(blur.forward(x)))
    assert d.sigma == pytest.approx(0.05)  # independent noises add in variance
    assert d.tasks == {"deblur", "inpaint", "denoise"}
    assert torch.equal(d.kernel, blur.kernel) and d.blur is blur
    assert torch.equal(d.mask, mask.mask) and d.boundary == "circular"
    y = d.apply(x, seed=0)
    assert not torch.equal(y, d.forward(x))
    assert torch.equal(y, d.apply(x, seed=0))
    assert Compose(Noise(0.1)).kernel is None and Compose(Noise(0.1)).mask is None
    with pytest.raises(InputError, match="Degradation objects"):
        Compose(blur, "noise")


# --------------------------------------------------------------------------- regularised inverse
def _image(h=48, w=56):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h, dtype=torch.float64), torch.linspace(0, 1, w, dtype=torch.float64), indexing="ij")
    smooth = 0.5 + 0.3 * torch.sin(6 * xx + 2 * yy) * torch.cos(4 * yy)
    return (smooth + 0.1 * _rand(h, w, seed=12))[None, None].expand(1, 3, h, w).clone()


def _psnr(a, b):
    return 10 * math.log10(1 / float(((a - b) ** 2).mean()))


def test_regularized_inverse_recovers_circular():
    # 0.6 delta + 0.4 box: its OTF never vanishes, so the inverse is well posed.
    k = torch.full((5, 5), 0.4 / 25, dtype=torch.float64)
    k[2, 2] += 0.6
    x = _image()
    blur = Blur(k)
    y = blur.forward(x)
    assert (y - x).abs().max() > 0.05
    assert torch.allclose(blur.regularized_inverse(y, 1e-10), x, atol=1e-6)
    reg = torch.full((1, 3, 1, 1), 1e-10)
    assert torch.allclose(blur.regularized_inverse(y, reg), x, atol=1e-6)


def test_regularized_inverse_recovers_reflect_for_symmetric_kernels():
    """The mirrored extension matches the forward model's reflect padding: exact for symmetric kernels."""
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 12.0, 2.0], [1.0, 2.0, 1.0]], dtype=torch.float64)
    k /= k.sum()
    x = _image()
    blur = Blur(k, "reflect")
    assert torch.allclose(blur.regularized_inverse(blur.forward(x), 1e-10), x, atol=1e-6)
    # Treating the same image as circular rings at the borders.
    circular_guess = Blur(k).regularized_inverse(blur.forward(x), 1e-10)
    assert _psnr(circular_guess, x) < _psnr(blur.regularized_inverse(blur.forward(x), 1e-10), x) - 40


def test_regularized_inverse_with_noise_is_regularised():
    k = torch.full((5, 5), 1 / 25, dtype=torch.float64)
    x = _image()
    blur = Blur(k)
    y = Compose(blur, Noise(0.01)).apply(x, seed=0)
    naive = blur.regularized_inverse(y, 1e-12)  # the box's OTF nearly vanishes: noise explodes
    regular = blur.regularized_inverse(y, 1e-2)
    assert _psnr(naive, x) < 10
    assert _psnr(regular, x) > _psnr(naive, x) + 15


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kernel,message",
    [
        (torch.tensor([[1.0, -1.0]]), "sums to 0, too close to zero to normalise"),
        (torch.zeros(3, 3), "too close to zero to normalise"),
        (torch.full((3, 3), 1e-300, dtype=torch.float64), "sums to 9e-300, too close to zero to normalise"),
        (torch.ones(3), "2-D"),
        (torch.ones(1, 3, 3), "2-D"),
        (torch.zeros(0, 3), "2-D|empty"),
        (torch.tensor([[float("nan"), 1.0]]), "NaN or Inf"),
        ("blur", "numeric array"),
    ],
)
def test_bad_kernels(kernel, message):
    with pytest.raises(InputError, match=message):
        Blur(kernel)
    with pytest.raises(InputError, match=message):
        check_kernel(kernel)


@pytest.mark.parametrize("boundary", ["circular", "reflect"])
def test_kernel_larger_than_image(boundary):
    blur = Blur(torch.ones(9, 9), boundary)
    x = torch.zeros(1, 1, 8, 20)
    for call in (blur.forward, blur.adjoint, lambda t: blur.regularized_inverse(t, 0.01)):
        with pytest.raises(InputError, match=r"kernel \(9x9\) is larger than the image \(8x20\)"):
            call(x)


def test_bad_boundary_and_images():
    with pytest.raises(InputError, match="boundary"):
        Blur(torch.ones(3, 3), "wrap")
    with pytest.raises(InputError, match=r"\(N, C, H, W\)"):
        Noise(0.1).apply(torch.zeros(3, 8, 8))
    with pytest.raises(InputError, match="NaN or Inf"):
        Noise(0.1).apply(torch.full((1, 1, 2, 2), float("nan")))


def test_describe_and_to():
    d = Compose(Blur(torch.ones(3, 3)), Mask.lower_half(4, 4), Noise(0.1))  # noise last (issue 16)
    info = d.describe()
    assert info["type"] == "Compose" and [p["type"] for p in info["parts"]] == ["Blur", "Mask", "Noise"]
    moved = d.to("cpu")
    x = _rand(1, 1, 4, 4)
    assert torch.equal(moved.forward(x), d.forward(x))
    assert "sigma=0.1" in repr(Noise(0.1))
