"""Operators for solvers: adjoint identities, the data step (prox) against its definition, conjugate
gradients against the closed forms, batches with one rho per sample, and downsampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from restorekit.degrade import (
    Blur,
    Compose,
    Degradation,
    Downsample,
    Identity,
    Mask,
    Noise,
    bicubic_kernel,
    conjugate_gradient,
    crop_to_multiple,
)
from restorekit.errors import InputError, ParameterError


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _kernel(shape, seed=5):
    k = _rand(*shape, seed=seed) + 0.05
    return k / k.sum()


H, W = 36, 48  # multiples of 2, 3 and 4; the low-resolution images hold the default x3 kernel (12x12)


def _mask(n=1, seed=7):
    return Mask((_rand(n, 1, H, W, seed=seed) > 0.4).double())


# Every operator kind and the compositions a solver meets; "closed" says whether prox has a closed form.
OPERATORS = {
    "identity": (lambda: Identity(), True),
    "noise": (lambda: Noise(0.05), True),
    "blur-circular-odd": (lambda: Blur(_kernel((5, 5))), True),
    "blur-circular-even": (lambda: Blur(_kernel((4, 6))), True),
    "blur-reflect": (lambda: Blur(_kernel((5, 3)), "reflect"), False),
    "mask": (lambda: _mask(), True),
    "mask-per-sample": (lambda: _mask(n=2), True),
    "downsample-x2": (lambda: Downsample(2), True),
    "downsample-x3": (lambda: Downsample(3), True),
    "downsample-x2-gaussian": (lambda: Downsample(2, _kernel((3, 3))), True),
    "downsample-reflect": (lambda: Downsample(2, _kernel((5, 5)), "reflect"), False),
    "blur+noise": (lambda: Compose(Blur(_kernel((5, 5))), Noise(0.01)), True),
    "mask+noise": (lambda: Compose(_mask(), Noise(0.01)), True),
    "blur+downsample+noise": (lambda: Compose(Blur(_kernel((3, 3))), Downsample(2), Noise(0.01)), True),
    "blur+blur": (lambda: Compose(Blur(_kernel((3, 3))), Blur(_kernel((5, 1), seed=6))), True),
    "blur+mask": (lambda: Compose(Blur(_kernel((5, 5))), _mask()), False),
    "mask+blur-reflect": (lambda: Compose(_mask(), Blur(_kernel((3, 3)), "reflect")), False),
    "downsample+blur": (lambda: Compose(Downsample(2), Blur(_kernel((3, 3)))), False),
}
NAMES = list(OPERATORS)


def _op(name):
    return OPERATORS[name][0]()


def _pair(op, n=2, seed=1):
    x = _rand(n, 3, H, W, seed=seed)
    y_shape = op.forward(x).shape
    return x, _rand(*y_shape, seed=seed + 1)


# --------------------------------------------------------------------------- adjoint
@pytest.mark.parametrize("name", NAMES)
def test_adjoint_identity(name):
    op = _op(name)
    x, y = _pair(op)
    lhs = (op.forward(x) * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-12), (float(lhs), float(rhs))


@pytest.mark.parametrize("name", NAMES)
def test_adjoint_maps_back_to_the_image_space(name):
    op = _op(name)
    x, y = _pair(op)
    assert op.adjoint(y).shape == x.shape
    assert y.shape[-2:] == (H // op.scale, W // op.scale)


# --------------------------------------------------------------------------- prox
def _objective_gradient(op, x, y, z, rho):
    """The gradient of ||y - A x||^2 + rho ||x - z||^2 at x: 2 A^T (A x - y) + 2 rho (x - z)."""
    return 2 * op.adjoint(op.forward(x) - y) + 2 * rho * (x - z)


@pytest.mark.parametrize("name", NAMES)
def test_prox_zeroes_the_gradient_of_its_objective(name):
    op = _op(name)
    z, y = _pair(op, seed=3)
    rho = torch.tensor([0.05, 2.0], dtype=torch.float64)  # one weight per sample
    x = op.prox(y, z, rho, iterations=2000, tol=1e-13)
    grad = _objective_gradient(op, x, y, z, rho.reshape(-1, 1, 1, 1))
    # Relative to the size of the right-hand side A^T y + rho z, the gradient vanishes.
    scale = (op.adjoint(y) + rho.reshape(-1, 1, 1, 1) * z).abs().max()
    assert grad.abs().max() < 1e-9 * scale
    assert x.shape == z.shape and x.dtype == z.dtype


@pytest.mark.parametrize("name", [n for n in NAMES if OPERATORS[n][1]])
def test_closed_form_prox_agrees_with_conjugate_gradients(name):
    op = _op(name)
    z, y = _pair(op, seed=4)
    rho = torch.tensor([0.02, 0.5], dtype=torch.float64).reshape(2, 1, 1, 1)
    closed = op.prox(y, z, rho)
    iterative = conjugate_gradient(lambda v: op.adjoint(op.forward(v)) + rho * v, op.adjoint(y) + rho * z,
                                   x0=z, iterations=3000, tol=1e-14)
    assert torch.allclose(closed, iterative, atol=1e-9)


@pytest.mark.parametrize("name", ["blur-circular-odd", "mask", "downsample-x2", "blur-reflect",
                                  "blur+downsample+noise", "blur+mask"])
def test_batched_prox_with_per_sample_rho_is_each_sample_alone(name):
    op = _op(name)
    z, y = _pair(op, seed=8)
    rho = torch.tensor([0.1, 3.0], dtype=torch.float64)
    together = op.prox(y, z, rho, iterations=2000, tol=1e-13)
    for i in range(2):
        alone = op.prox(y[i : i + 1], z[i : i + 1], float(rho[i]), iterations=2000, tol=1e-13)
        assert torch.allclose(together[i : i + 1], alone, atol=1e-9)


_F64 = {"dtype": torch.float64}


@pytest.mark.parametrize("rho", [0.3, torch.tensor(0.3, **_F64), torch.tensor([0.3], **_F64),
                                 torch.tensor([0.3, 0.3], **_F64), torch.full((2, 1, 1, 1), 0.3, **_F64)],
                         ids=["float", "0-d", "(1,)", "(N,)", "(N,1,1,1)"])
def test_prox_accepts_rho_as_a_number_or_one_per_sample(rho):
    op = Blur(_kernel((3, 3)))
    z, y = _pair(op, seed=9)
    assert torch.allclose(op.prox(y, z, rho), op.prox(y, z, 0.3), atol=1e-12)


@pytest.mark.parametrize("rho,message", [(0.0, "> 0"), (-1.0, "> 0"), (float("nan"), "> 0"), ("a", "positive number"),
                                         (torch.ones(3), r"shape \(\), \(2,\)"), (torch.ones(2, 3, 1, 1), "shape")])
def test_prox_refuses_a_bad_rho(rho, message):
    op = Noise(0.1)
    z, y = _pair(op)
    with pytest.raises(ParameterError, match=message):
        op.prox(y, z, rho)


def test_prox_refuses_a_measurement_of_the_wrong_shape():
    z = _rand(1, 3, H, W)
    with pytest.raises(InputError, match=r"must be A z's shape \(1, 3, 18, 24\)"):
        Downsample(2).prox(z, z, 0.1)
    with pytest.raises(InputError, match="float tensor"):
        Identity().prox(z[0], z[0], 0.1)


def test_identity_mask_and_noise_prox_are_the_element_wise_formulas():
    z, y = _pair(Identity(), seed=10)
    assert torch.allclose(Noise(0.2).prox(y, z, 0.5), (y + 0.5 * z) / 1.5)
    mask = _mask(seed=11)
    expected = torch.where(mask.mask.bool(), (y + 0.5 * z) / 1.5, z)  # a missing pixel keeps z
    assert torch.allclose(mask.prox(y, z, 0.5), expected)


def test_prox_in_float32_keeps_the_dtype_and_matches_float64():
    op = Compose(Blur(_kernel((5, 5))), Downsample(2), Noise(0.01))
    z, y = _pair(op, seed=12)
    exact = op.prox(y, z, 0.01)
    single = op.prox(y.float(), z.float(), 0.01)
    assert single.dtype == torch.float32
    assert torch.allclose(single.double(), exact, atol=1e-4)


def test_a_generic_degradation_gets_the_conjugate_gradient_prox():
    class Scale(Degradation):  # a third party's operator with only forward and adjoint
        def forward(self, x):
            return 3 * x

        def adjoint(self, y):
            return 3 * y

    z, y = _pair(Identity(), seed=13)
    assert torch.allclose(Scale().prox(y, z, 1.0), (3 * y + z) / 10, atol=1e-10)


# --------------------------------------------------------------------------- conjugate gradients
def test_conjugate_gradient_solves_each_sample_and_stops_when_converged():
    d = torch.stack([torch.linspace(1, 5, 6), torch.linspace(1, 50, 6)]).double()[:, None]
    b = _rand(2, 1, 6, seed=14)
    calls = []

    def apply(v):
        calls.append(1)
        return d * v

    x = conjugate_gradient(apply, b, tol=1e-12)
    assert torch.allclose(x, b / d, atol=1e-10)
    assert len(calls) <= 8  # six distinct eigenvalues: CG is exact in six steps, then stops


@pytest.mark.parametrize("kwargs,message", [({"iterations": 0}, "iterations >= 1"), ({"tol": -1.0}, "tol >= 0")])
def test_conjugate_gradient_refuses_bad_limits(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        conjugate_gradient(lambda v: v, torch.ones(1, 3), **kwargs)


# --------------------------------------------------------------------------- downsampling
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_default_downsampling_is_antialiased_bicubic_away_from_the_border(scale):
    """Downsample(s) is torch's (MATLAB imresize's) bicubic downsampling; only the circular border differs."""
    x = _rand(2, 3, 24 * scale, 24 * scale, seed=15)
    got = Downsample(scale).forward(x)
    expected = F.interpolate(x, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    assert got.shape == expected.shape == (2, 3, 24, 24)
    assert torch.allclose(got[..., 4:-4, 4:-4], expected[..., 4:-4, 4:-4], atol=1e-12)


@pytest.mark.parametrize("scale,size", [(2, 8), (3, 12), (4, 18)])
def test_default_kernel_sizes_and_sum(scale, size):
    k = bicubic_kernel(scale)
    assert k.shape == (size, size)
    assert abs(float(k.sum()) - 1) < 1e-12
    assert float(k.min()) < 0  # the cubic's negative lobes


def test_downsampling_keeps_the_top_left_pixel_of_each_block_after_the_blur():
    k = _kernel((3, 3))
    x = _rand(1, 1, 12, 18, seed=16)
    assert torch.equal(Downsample(3, k).forward(x), Blur(k).forward(x)[..., ::3, ::3])


def test_scale_multiplies_through_compose():
    d = Compose(Downsample(2), Downsample(3), Noise(0.01))  # noise last (issue 16)
    assert d.scale == 6 and Noise(0.1).scale == 1 and Blur(_kernel((3, 3))).scale == 1
    assert Downsample(2).tasks == {"superresolve"}
    assert Compose(Downsample(2), Noise(0.1)).kernel.shape == (8, 8)
    assert Compose(Downsample(2, boundary="reflect"), Noise(0.1)).boundary == "reflect"
    assert Compose(Blur(_kernel((3, 3))), Downsample(2, boundary="reflect")).boundary == "circular"  # the blur's


@pytest.mark.parametrize("scale", [1, 0, -2, 2.5, "x", True, None])
def test_downsample_refuses_a_scale_that_is_not_an_integer_of_at_least_2(scale):
    with pytest.raises(InputError, match="scale must be an integer >= 2"):
        Downsample(scale)


def test_downsample_accepts_integral_floats_and_strings():
    assert Downsample(2.0).scale == 2 and Downsample("3").scale == 3


def test_downsample_refuses_images_it_cannot_take():
    with pytest.raises(InputError, match="too small to downsample by 4"):
        Downsample(4, torch.ones(1, 1)).forward(_rand(1, 1, 3, 8))
    with pytest.raises(InputError, match="not a multiple of the scale 2.*crop it to 36x48"):
        Downsample(2).forward(_rand(1, 1, 37, 49))
    with pytest.raises(InputError, match=r"default bicubic anti-aliasing kernel for x2 \(8x8\) is larger than the "
                                         r"low-resolution image \(5x18\); the low-resolution image must be at least 8x8 "
                                         r"\(the original at least 16x16\)"):
        Downsample(2).forward(_rand(1, 1, 10, 36))
    with pytest.raises(InputError, match=r"the kernel \(9x9\) is larger than the low-resolution image.*use a smaller kernel"):
        Downsample(2, _kernel((9, 9))).forward(_rand(1, 1, 16, 16))


def test_crop_to_multiple_trims_bottom_and_right():
    x = _rand(1, 3, 25, 38)
    assert torch.equal(crop_to_multiple(x, 4), x[..., :24, :36])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_prox_on_cuda_matches_the_cpu():
    op = Compose(Blur(_kernel((5, 5))), Downsample(2), Noise(0.01))
    z, y = _pair(op, seed=17)
    cpu = op.prox(y, z, 0.1)
    gpu = op.to("cuda").prox(y.cuda(), z.cuda(), torch.tensor([0.1, 0.1], device="cuda"))
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-9)
