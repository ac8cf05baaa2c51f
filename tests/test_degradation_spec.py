"""One degradation-from-words builder (issue 13): restorekit.degrade.spec serves the CLI, bench and testing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorekit.degrade import Blur, Compose, Downsample, Mask, Noise, PoissonGaussian
from restorekit.degrade.spec import (MaskSpec, build_degradation, parse_degradation, parse_noise,
                                     task_degradation)
from restorekit.errors import InputError
from restorekit.kernels import load_kernel


def test_words_give_the_operators():
    spec = parse_degradation("blur=gauss:1.6, noise=0.01, boundary=reflect")
    d = spec.build(32, 40)
    assert isinstance(d.parts()[0], Blur) and d.boundary == "reflect" and d.sigma == 0.01
    assert torch.equal(d.kernel, load_kernel("gauss:1.6").to(d.kernel.dtype))
    assert spec.tasks == {"deblur", "denoise"}
    # a value that holds a comma: Poisson-Gaussian noise
    d = parse_degradation("kernel=box:9,sigma=pg:0.02,0.01").build(32, 32)
    assert isinstance(d.parts()[-1], PoissonGaussian) and d.kernel.shape[0] >= 9
    d = parse_degradation("scale=2,noise=0").build(32, 32)
    assert isinstance(d.parts()[0], Downsample) and d.scale == 2
    d = parse_degradation("mask=random:0.5").build(16, 16, seed=3)
    assert torch.equal(d.mask, Mask.random(16, 16, 0.5, seed=3).mask)


@pytest.mark.parametrize("text, match", [
    ("blurr=course", "unknown word 'blurr'"),
    ("noise=loud", "not a noise spec"),
    ("noise=25", "above 1"),
    ("mask=stripes", "no such mask file"),
    ("mask=random:x", "not a number"),
    ("scale=1.5", "integer >= 2"),
    ("boundary=zero", "circular, reflect"),
    ("noise=0.1,noise=0.2", "given twice"),
    ("course", "not KEY=VALUE"),
    ("mask=lower-half,scale=2", "not supported"),
])
def test_a_bad_word_is_one_line_naming_it_and_the_fix(text, match):
    with pytest.raises(InputError, match=match) as info:
        parse_degradation(text)
    assert "\n" not in str(info.value)


def test_the_builder_is_what_the_cli_bench_and_testing_use():
    from restorekit.bench import make_degradation
    from restorekit.cli import _specs
    from restorekit.testing.restorers import example_degradation

    assert _specs.image_degradation is build_degradation and _specs.MaskSpec is MaskSpec
    kernel = load_kernel("course")
    for task, sigma in (("denoise", 0.1), ("deblur", 0.01), ("inpaint", 0.02), ("superresolve", 0.01)):
        made = make_degradation(task, sigma, (1, 3, 32, 32), 7, kernel if task == "deblur" else None,
                                "random:0.3", 2)
        same = task_degradation(task, sigma, 32, 32, 7, kernel if task == "deblur" else None, "random:0.3", 2)
        assert made.describe() == same.describe()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(example_degradation("inpaint", 32, 32, seed=1).apply(x, seed=0),
                       Compose(Mask.random(32, 32, 0.3, seed=1), Noise(0.01)).apply(x, seed=0))
    assert torch.equal(example_degradation("deblur", 32, 32).apply(x, seed=0),
                       Compose(Blur(kernel), Noise(0.01)).apply(x, seed=0))


def test_bench_masks_differ_per_image_the_cli_mask_is_one_per_size(tmp_path):
    a = task_degradation("inpaint", 0, 16, 16, seed=1, mask="random:0.5").mask
    b = task_degradation("inpaint", 0, 16, 16, seed=2, mask="random:0.5").mask
    assert not torch.equal(a, b)
    spec = MaskSpec("random:0.5")
    assert spec.for_image(16, 16, 1, "a") is spec.for_image(16, 16, 2, "b")
    path = tmp_path / "m.npy"
    np.save(path, np.ones((8, 8)))
    with pytest.raises(InputError, match="8x8"):
        build_degradation(mask=str(path), height=16, width=16)
    assert parse_noise(0.05).sigma == 0.05 and isinstance(parse_noise("pg:0.01,0.0"), PoissonGaussian)
