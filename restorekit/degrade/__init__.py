"""Degradation models: how an image was damaged, as operators.

A :class:`Degradation` is a linear forward operator ``A`` (blur, mask,
downsampling, or the identity) with its adjoint ``A^T`` and a Gaussian noise
model, following the ``y = A x + n`` picture shared by restorers, training,
benchmarks and plug-and-play solvers::

    y = degradation.apply(x, seed=0)    # A x + noise
    degradation.forward(x)              # A x (noise-free)
    degradation.adjoint(y)              # A^T y
    degradation.prox(y, z, rho)         # argmin_x ||y - A x||^2 + rho ||x - z||^2
    degradation.scale                   # 1, or s when a Downsample(s) is inside

The package's modules: :mod:`~restorekit.degrade.base` (the base class and
the data step), :mod:`~restorekit.degrade.blur`, :mod:`~restorekit.degrade.noise`,
:mod:`~restorekit.degrade.mask`, :mod:`~restorekit.degrade.downsample`,
:mod:`~restorekit.degrade.compose`, :mod:`~restorekit.degrade.poisson` (Poisson-Gaussian noise),
:mod:`~restorekit.degrade.vst` (its variance-stabilising transform), :mod:`~restorekit.degrade.sampler`
(training degradations drawn per sample), :mod:`~restorekit.degrade.spec` (degradations from
words: the one builder of the command line, bench and the checks), :mod:`~restorekit.degrade.fft` (transfer
functions, the CPU FFT) and :mod:`~restorekit.degrade.solvers` (conjugate
gradients). Every public name is importable from ``restorekit.degrade``.

Images are batched ``N, C, H, W`` float tensors with values in [0, 1]. Noise
levels (``sigma``) are standard deviations **on the [0, 1] scale** everywhere
in restorekit: sigma 25 on the 0-255 scale is ``25 / 255 = 0.098``.

Blur is a convolution with a kernel (a true convolution, kernel flipped, with
``psf2otf`` semantics: the kernel's centre sits at the origin). The default
``boundary="circular"`` is the exact circular model used in synthetic
benchmarks, computed with the FFT. ``boundary="reflect"`` models a photograph
of a larger scene (the border sees mirrored content); restorers that invert a
blur with the FFT treat such images with a mirrored periodic extension so
they restore without ringing at the borders (see
:meth:`Blur.regularized_inverse`).

Examples
--------
>>> import torch
>>> from restorekit.degrade import Blur, Compose, Downsample, Noise
>>> kernel = torch.ones(3, 3) / 9
>>> d = Compose(Blur(kernel), Noise(0.01))
>>> x = torch.rand(1, 3, 32, 32)
>>> y = d.apply(x, seed=0)
>>> y.shape, d.sigma, sorted(d.tasks)
(torch.Size([1, 3, 32, 32]), 0.01, ['deblur', 'denoise'])
>>> x_hat = d.prox(y, y, 0.1)  # the data step of a plug-and-play solver
>>> sr = Compose(Downsample(2), Noise(0.01))
>>> sr.forward(x).shape, sr.scale, sorted(sr.tasks)
(torch.Size([1, 3, 16, 16]), 2, ['denoise', 'superresolve'])
"""


from .base import BOUNDARIES, Degradation, Identity
from .blur import MIN_KERNEL_SUM, Blur, check_kernel, kernel_sha256
from .compose import Compose
from .downsample import BICUBIC_A, Downsample, bicubic_kernel, check_scale, crop_to_multiple
from .fft import CPU_FFT_BACKENDS, cpu_fft_backend, half_spectrum_axis, psf2otf, psf2otf_full
from .mask import Mask
from .noise import Noise
from .sampler import DegradationSampler, SamplerMixture
from .spec import DegradationSpec, MaskSpec, build_degradation, parse_degradation, task_degradation
from .poisson import PoissonGaussian, parse_noise
from .solvers import CG_ITERATIONS, CG_TOL, conjugate_gradient
from .vst import anscombe, inverse_anscombe, vst_denoise

__all__ = [
    "BICUBIC_A",
    "BOUNDARIES",
    "CG_ITERATIONS",
    "CG_TOL",
    "CPU_FFT_BACKENDS",
    "MIN_KERNEL_SUM",
    "Blur",
    "Compose",
    "Degradation",
    "DegradationSampler",
    "SamplerMixture",
    "DegradationSpec",
    "Downsample",
    "Identity",
    "Mask",
    "MaskSpec",
    "Noise",
    "PoissonGaussian",
    "anscombe",
    "bicubic_kernel",
    "build_degradation",
    "check_kernel",
    "check_scale",
    "conjugate_gradient",
    "cpu_fft_backend",
    "crop_to_multiple",
    "half_spectrum_axis",
    "kernel_sha256",
    "inverse_anscombe",
    "parse_degradation",
    "parse_noise",
    "psf2otf",
    "psf2otf_full",
    "task_degradation",
    "vst_denoise",
]
