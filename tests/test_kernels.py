"""Kernels by spec: the shipped course kernel (regenerated from MNIST when the data is here),
Levin kernels, Gaussians, boxes, files, and clear errors for bad specs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.errors import InputError
from restorekit.imageio import write_image
from restorekit.kernels import gaussian_kernel, load_kernel, mnist_digit_kernel


def _data_root() -> Path | None:
    env = os.environ.get("RESTOREKIT_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return root if root.is_dir() else None


DATA = _data_root()
needs_mnist = pytest.mark.skipif(
    DATA is None or not (DATA / "MNIST" / "raw").is_dir(), reason="needs ../shared/data/MNIST (or RESTOREKIT_DATA)"
)
needs_levin = pytest.mark.skipif(
    DATA is None or not (DATA / "kernels" / "levin09_3.npy").is_file(), reason="needs ../shared/data/kernels"
)


def test_course_kernel_is_shipped():
    k = load_kernel("course")
    assert k.dtype == torch.float64 and k.shape == (7, 7)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-12)
    assert (k >= 0).all() and (k > 0).sum() > 5, "a digit, not a delta"
    assert torch.equal(load_kernel(" Course "), k)


@pytest.mark.data
@needs_mnist
def test_course_kernel_regenerates_from_mnist():
    regenerated = mnist_digit_kernel(DATA, digit=0, size=7, split="train")
    assert torch.equal(regenerated, load_kernel("course"))
    # the MNIST folder itself is accepted as root too
    assert torch.equal(mnist_digit_kernel(DATA / "MNIST"), regenerated)


@pytest.mark.data
@needs_mnist
def test_mnist_spec(monkeypatch):
    from torchvision.datasets import MNIST

    monkeypatch.setenv("RESTOREKIT_DATA", str(DATA))
    k = load_kernel("mnist:5:9")
    assert k.shape == (9, 9) and float(k.sum()) == pytest.approx(1.0)
    image = MNIST(str(DATA), train=True, download=False).data[5].double()
    expected = torch.nn.functional.interpolate(image[None, None], size=(9, 9), mode="nearest")[0, 0]
    assert torch.allclose(k, expected / expected.sum())
    assert load_kernel("mnist:5").shape == (7, 7)
    with pytest.raises(InputError, match="out of range"):
        load_kernel("mnist:999999")


@pytest.mark.data
@needs_levin
def test_levin_kernels(monkeypatch):
    monkeypatch.setenv("RESTOREKIT_DATA", str(DATA))
    for n in range(1, 9):
        k = load_kernel(f"levin:{n}")
        stored = np.load(DATA / "kernels" / f"levin09_{n}.npy")
        assert k.dtype == torch.float64 and torch.equal(k, torch.from_numpy(stored.astype(np.float64)))
        assert float(k.sum()) == pytest.approx(1.0, abs=1e-6)
    # a path to the file gives the same kernel
    assert torch.equal(load_kernel(str(DATA / "kernels" / "levin09_3.npy")), load_kernel("levin:3"))


def test_levin_kernels_ship_with_restorekit(monkeypatch, tmp_path):
    # The newcomer's case: no data folder at all, and levin:N still works (issue 16).
    import hashlib
    import json
    from importlib import resources

    monkeypatch.setenv("RESTOREKIT_DATA", str(tmp_path / "nowhere"))
    shapes = []
    for n in range(1, 9):
        k = load_kernel(f"levin:{n}")
        assert k.dtype == torch.float64 and float(k.sum()) == pytest.approx(1.0, abs=1e-6) and float(k.min()) >= 0
        shapes.append(tuple(k.shape))
        data = resources.files("restorekit") / "data"
        meta = json.loads((data / f"levin09_{n}.json").read_text())
        assert meta["sha256"] == hashlib.sha256((data / f"levin09_{n}.npy").read_bytes()).hexdigest()
        assert "Levin" in meta["what"] and "CVPR 2009" in meta["what"]
    assert shapes[0] == (19, 19) and shapes[3] == (27, 27)


def test_levin_without_data_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("RESTOREKIT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="RESTOREKIT_DATA"):
        load_kernel("mnist:0")
    (tmp_path / "kernels").mkdir()
    with pytest.raises(InputError, match="levin09_2.npy is missing"):
        load_kernel("levin:2", data_root=tmp_path)
    with pytest.raises(InputError, match="1 to 8"):
        load_kernel("levin:9", data_root=tmp_path)
    with pytest.raises(InputError, match="no MNIST data"):
        load_kernel("mnist:0", data_root=tmp_path)


def test_gaussian():
    k = load_kernel("gaussian:1.5")
    assert k.shape == (11, 11) and float(k.sum()) == pytest.approx(1.0)
    assert torch.equal(k, k.flip(0)) and torch.equal(k, k.T)
    assert int(k.argmax()) == 5 * 11 + 5  # peak on the centre pixel (kh // 2, kw // 2)
    # the profile is a Gaussian: log ratios between neighbours follow exp(-r^2 / 2 sigma^2)
    assert float(k[5, 6] / k[5, 5]) == pytest.approx(np.exp(-1 / (2 * 1.5**2)))
    assert load_kernel("gaussian:2:5").shape == (5, 5)
    with pytest.raises(InputError, match="odd"):
        load_kernel("gaussian:2:4")
    with pytest.raises(InputError, match="sigma > 0"):
        gaussian_kernel(0.0)
    with pytest.raises(InputError, match="sigma > 0"):
        load_kernel("gaussian:-1")


def test_box():
    k = load_kernel("box:4")
    assert k.shape == (4, 4) and torch.allclose(k, torch.full((4, 4), 1 / 16, dtype=torch.float64))
    with pytest.raises(InputError, match=">= 1"):
        load_kernel("box:0")


def test_npy_file_not_summing_to_1_is_normalised_with_a_warning(tmp_path):
    from restorekit.errors import RestorekitWarning

    raw = np.array([[0.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 0.0]])
    np.save(tmp_path / "k.npy", raw)
    with pytest.warns(RestorekitWarning, match="sums to 6, not 1"):
        k = load_kernel(tmp_path / "k.npy")
    assert torch.equal(k, torch.from_numpy(raw / 6))  # issue 16: as stored it silently cost 5.1 dB


def test_image_file_is_normalised(tmp_path):
    pattern = torch.zeros(1, 1, 5, 5)
    pattern[0, 0, 2, 1:4] = 1.0
    write_image(tmp_path / "k.png", pattern)
    k = load_kernel(str(tmp_path / "k.png"))
    assert k.shape == (5, 5) and float(k.sum()) == pytest.approx(1.0)
    assert torch.allclose(k[2, 1:4], torch.full((3,), 1 / 3, dtype=torch.float64))
    write_image(tmp_path / "rgb.png", torch.ones(1, 3, 5, 5))
    with pytest.raises(InputError, match="gray"):
        load_kernel(tmp_path / "rgb.png")


def test_arrays_are_validated():
    assert load_kernel(np.ones((2, 3))).dtype == torch.float64
    with pytest.raises(InputError, match="2-D"):
        load_kernel(np.ones((2, 2, 2)))


@pytest.mark.parametrize(
    "array,message",
    [
        (np.array([[1.0, -1.0]]), "too close to zero to normalise"),
        (np.zeros((3, 3)), "too close to zero to normalise"),
        (np.array([[np.nan, 1.0]]), "NaN or Inf"),
        (np.ones(3), "2-D"),
    ],
)
def test_bad_kernel_files(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match=message):
        load_kernel(tmp_path / "bad.npy")


@pytest.mark.parametrize(
    "spec,message",
    [
        ("blurry", "unknown kernel spec 'blurry'"),
        ("gaussian", "unknown kernel spec"),
        ("box:three", "cannot read 'three'"),
        ("levin:1:2", "unknown kernel spec"),
        ("", "non-empty"),
        ("missing/kernel.npy", "does not exist"),
        ("nothere.png", "does not exist"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(InputError, match=message):
        load_kernel(spec)


def test_damaged_kernel_file(tmp_path):
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="broken.npy"):
        load_kernel(tmp_path / "broken.npy")


# --------------------------------------------------------------------------- kernel sets
def test_gauss_is_gaussian():
    assert torch.equal(load_kernel("gauss:1.6"), load_kernel("gaussian:1.6"))
    assert torch.equal(load_kernel("gauss:1:5"), gaussian_kernel(1.0, 5))


def test_kernel_sets_expand_in_order():
    from restorekit.kernels import is_kernel_set, kernel_set_specs, load_kernel_set

    assert kernel_set_specs("levin:all") == [f"levin:{n}" for n in range(1, 9)]
    assert kernel_set_specs("gauss:1.6, levin:all")[:2] == ["gauss:1.6", "levin:1"]
    assert is_kernel_set("levin:all") and is_kernel_set("box:3,box:5")
    assert not is_kernel_set("levin:3") and not is_kernel_set(None) and not is_kernel_set(torch.ones(3, 3))
    pairs = load_kernel_set("box:3,gauss:1.0")
    assert [label for label, _ in pairs] == ["box:3", "gauss:1.0"]
    assert torch.equal(pairs[1][1], gaussian_kernel(1.0))
    assert [label for label, _ in load_kernel_set("box:3")] == ["box:3"]


def test_a_file_whose_name_has_a_comma_is_one_kernel(tmp_path):
    from restorekit.kernels import is_kernel_set, load_kernel_set

    path = tmp_path / "a,b.npy"
    np.save(path, np.ones((3, 3)) / 9)
    assert not is_kernel_set(str(path))
    assert len(load_kernel_set(str(path))) == 1


@pytest.mark.parametrize("spec,message", [
    ("box:3,,box:5", "empty item"),
    ("box:3,box:3", "names a kernel twice"),
    ("box:3,nope:1", "unknown kernel spec 'nope:1'"),
])
def test_bad_kernel_sets(spec, message):
    from restorekit.kernels import load_kernel_set

    with pytest.raises(InputError, match=message):
        load_kernel_set(spec)


def test_levin_all_without_data_is_the_shipped_eight(monkeypatch, tmp_path):
    from restorekit.kernels import load_kernel_set

    monkeypatch.setenv("RESTOREKIT_DATA", str(tmp_path / "nowhere"))
    kernels = load_kernel_set("levin:all")
    assert len(kernels) == 8


@pytest.mark.data
@needs_levin
def test_levin_all_is_the_eight_kernels(monkeypatch):
    from restorekit.kernels import load_kernel_set

    monkeypatch.setenv("RESTOREKIT_DATA", str(DATA))
    pairs = load_kernel_set("levin:all")
    assert [label for label, _ in pairs] == [f"levin:{n}" for n in range(1, 9)]
    assert all(torch.equal(k, load_kernel(label)) for label, k in pairs)
