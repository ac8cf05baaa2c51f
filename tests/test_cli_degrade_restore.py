"""End to end: 'restorekit degrade' and 'restorekit restore' through main([...]) and the installed script.

Restore tests use a tiny plugin added to the default registry in a fixture (and removed after), so
they do not depend on the built-in plugins; one test uses 'wiener' and skips until it is registered.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from restorekit import Param, Restorer, hookimpl
from restorekit.cli._specs import image_seed
from restorekit.cli.main import main
from restorekit.degrade import Blur, Compose, Mask, Noise
from restorekit.imageio import read_image, write_image
from restorekit.kernels import load_kernel
from restorekit.registry import default_registry

PLUGIN_NAME = "restorekit-cli-test-plugin"


# --------------------------------------------------------------------------- helpers
def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def expect_error(capsys, folder: Path, argv, *fragments):
    """Run, expect exit 2 with one clear line naming the problem, and nothing on disk changed."""
    before = snapshot(folder)
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"restorekit {argv[0]}: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert snapshot(folder) == before, "a failed command must not change or add files"
    return lines[0]


def gradient(c=3, h=24, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([(yy + xx * (i + 1) / c) / 2 for i in range(c)])[None]
    return (0.15 + 0.7 * base + 0.05 * torch.rand(1, c, h, w, generator=g)).clamp(0, 1)


@pytest.fixture
def images(tmp_path):
    """A folder with two 8-bit RGB PNGs, plus an empty output area."""
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", gradient(seed=1))
    write_image(src / "b.png", gradient(seed=2))
    return src


# --------------------------------------------------------------------------- the test plugin
class Recorder:
    calls: list = []


class InvertRestorer(Restorer):
    """Returns gain * (1 - image) and records the degradation it received."""

    name = "cli-test-invert"
    tasks = frozenset({"denoise", "deblur", "inpaint"})
    params = (Param("gain", 1.0, "scale of the output"),)

    def restore(self, image, degradation=None):
        Recorder.calls.append(SimpleNamespace(restorer=self, degradation=degradation, image=image.clone()))
        return (1 - image) * self.config["gain"]


class DeviceRestorer(Restorer):
    """Records the device parameter it was built with."""

    name = "cli-test-device"
    tasks = frozenset({"denoise"})
    params = (Param("device", "unset", "where to run"),)

    def restore(self, image, degradation=None):
        Recorder.calls.append(SimpleNamespace(restorer=self, degradation=degradation, image=image.clone()))
        return image


class WrongShapeRestorer(Restorer):
    name = "cli-test-wrong-shape"
    tasks = frozenset({"denoise"})

    def restore(self, image, degradation=None):
        return image[..., :-1]


@hookimpl
def register_restorers(register):
    register(InvertRestorer)
    register(DeviceRestorer)
    register(WrongShapeRestorer)


@pytest.fixture
def plugin():
    registry = default_registry()
    registry.add_plugin(SimpleNamespace(register_restorers=register_restorers), name=PLUGIN_NAME)
    Recorder.calls = []
    yield Recorder
    registry.remove_plugin(PLUGIN_NAME)
    Recorder.calls = []


# --------------------------------------------------------------------------- degrade
def test_degrade_matches_the_api(capsys, images, tmp_path):
    out = tmp_path / "deg.npy"
    code, stdout, _ = run(capsys, "degrade", images / "a.png", "-o", out, "--blur", "course", "--noise", "0.2", "--seed", "7")
    assert code == 0 and "degraded 1 image" in stdout
    x = read_image(images / "a.png").tensor
    expected = Compose(Blur(load_kernel("course"), "reflect"), Noise(0.2)).apply(x, seed=image_seed(7, "a.png"))
    got = read_image(out)
    assert got.bit_depth is None and torch.equal(got.tensor, expected)
    assert float(got.tensor.min()) < 0 or float(got.tensor.max()) > 1, ".npy keeps noise outside [0, 1]"
    run(capsys, "degrade", images / "a.png", "-o", tmp_path / "circ.npy", "--blur", "course", "--boundary", "circular")
    assert torch.equal(read_image(tmp_path / "circ.npy").tensor, Blur(load_kernel("course")).forward(x))


def test_degrade_is_reproducible_per_image(capsys, images, tmp_path):
    run(capsys, "degrade", images, "-o", tmp_path / "both", "--noise", "0.1", "--format", "npy")
    run(capsys, "degrade", images / "a.png", "-o", tmp_path / "alone.npy", "--noise", "0.1")
    run(capsys, "degrade", images / "a.png", "-o", tmp_path / "other_seed.npy", "--noise", "0.1", "--seed", "1")
    assert sorted(p.name for p in (tmp_path / "both").iterdir()) == ["a.npy", "b.npy"]
    both_a = np.load(tmp_path / "both" / "a.npy")
    assert np.array_equal(both_a, np.load(tmp_path / "alone.npy")), "an image's noise must not depend on the batch"
    assert not np.array_equal(both_a, np.load(tmp_path / "other_seed.npy"))
    assert not np.array_equal(both_a, np.load(tmp_path / "both" / "b.npy"))


def test_degrade_keeps_input_format_and_warns_about_clipping(capsys, images, tmp_path):
    code, _, err = run(capsys, "degrade", images, "-o", tmp_path / "out", "--noise", "0.05")
    assert code == 0
    assert "clips the noisy values" in err and ".npy" in err
    for name in ("a.png", "b.png"):
        img = read_image(tmp_path / "out" / name)
        assert img.format == "png" and img.bit_depth == 8 and img.tensor.shape == (1, 3, 24, 32)
        assert 0 <= float(img.tensor.min()) and float(img.tensor.max()) <= 1


def test_degrade_keeps_16_bit_and_alpha(capsys, tmp_path):
    pytest.importorskip("png", reason="16-bit colour PNG needs pypng")
    alpha = torch.linspace(0, 1, 24 * 32).reshape(1, 1, 24, 32)
    write_image(tmp_path / "rgba16.png", gradient(), alpha=alpha, bit_depth=16)
    code, _, _ = run(capsys, "degrade", tmp_path / "rgba16.png", "-o", tmp_path / "out.png", "--blur", "box:3")
    assert code == 0
    got = read_image(tmp_path / "out.png")
    assert got.bit_depth == 16 and got.tensor.shape == (1, 3, 24, 32)
    assert torch.allclose(got.alpha, alpha, atol=1 / 65535)
    expected = Blur(load_kernel("box:3"), "reflect").forward(read_image(tmp_path / "rgba16.png").tensor)
    assert torch.allclose(got.tensor, expected, atol=1 / 65535)


def test_degrade_masks(capsys, images, tmp_path):
    run(capsys, "degrade", images / "a.png", "-o", tmp_path / "half.npy", "--mask", "lower-half")
    half = np.load(tmp_path / "half.npy")
    assert (half[12:] == 0).all() and (half[:12] > 0).all()
    run(capsys, "degrade", images / "a.png", "-o", tmp_path / "rand.npy", "--mask", "random:0.5", "--seed", "4")
    observed = np.load(tmp_path / "rand.npy")[..., 0] != 0
    assert np.array_equal(observed, Mask.random(24, 32, 0.5, seed=4).mask[0, 0].numpy() != 0)
    mask = np.ones((24, 32), dtype=bool)
    mask[:, :5] = False
    np.save(tmp_path / "mask.npy", mask)
    run(capsys, "degrade", images / "a.png", "-o", tmp_path / "file.npy", "--mask", tmp_path / "mask.npy")
    assert (np.load(tmp_path / "file.npy")[:, :5] == 0).all()


def test_degrade_needs_something_to_do(capsys, images, tmp_path):
    expect_error(capsys, tmp_path, ["degrade", images / "a.png", "-o", tmp_path / "x.png"], "give at least one of --blur")


# --------------------------------------------------------------------------- bad input (both commands)
def _bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, fragment the error must contain)."""
    write_image(folder / "good.png", gradient(seed=3))
    data = (folder / "good.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    (folder / "text.png").write_text("not an image")
    (folder / "anim.gif").write_bytes(b"GIF89a....")
    nan = np.zeros((16, 16, 3), dtype=np.float32)
    nan[3, 3, 1] = np.nan
    np.save(folder / "nan.npy", nan)
    inf = np.zeros((16, 16), dtype=np.float32)
    inf[0, 0] = np.inf
    np.save(folder / "inf.npy", inf)
    np.save(folder / "two.npy", np.zeros((16, 16, 2), dtype=np.float32))
    np.save(folder / "six.npy", np.zeros((16, 16, 6), dtype=np.float32))
    np.save(folder / "empty.npy", np.zeros((0, 16), dtype=np.float32))
    return {
        "truncated": (folder / "truncated.png", "truncated"),
        "not-an-image": (folder / "text.png", "cannot read it as PNG"),
        "unknown-format": (folder / "anim.gif", "unknown image format '.gif'"),
        "nan": (folder / "nan.npy", "NaN or Inf"),
        "inf": (folder / "inf.npy", "NaN or Inf"),
        "two-channels": (folder / "two.npy", "2 channels"),
        "six-channels": (folder / "six.npy", "6 channels"),
        "empty": (folder / "empty.npy", "empty"),
    }


BAD_FILES = ["truncated", "not-an-image", "unknown-format", "nan", "inf", "two-channels", "six-channels", "empty"]


@pytest.mark.parametrize("which", BAD_FILES)
def test_degrade_bad_image(capsys, tmp_path, which):
    path, fragment = _bad_inputs(tmp_path)[which]
    expect_error(capsys, tmp_path, ["degrade", path, "-o", tmp_path / "out.npy", "--noise", "0.1"], path.name, fragment)


@pytest.mark.parametrize("which", BAD_FILES)
def test_restore_bad_image(capsys, tmp_path, plugin, which):
    path, fragment = _bad_inputs(tmp_path)[which]
    expect_error(
        capsys, tmp_path, ["restore", path, "-o", tmp_path / "out.npy", "--method", "cli-test-invert"], path.name, fragment
    )


def test_bad_file_in_a_batch_leaves_complete_outputs_only(capsys, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", gradient(seed=1))
    data = (src / "a.png").read_bytes()
    (src / "b.png").write_bytes(data[: len(data) // 2])  # truncated, processed second
    inputs_before = snapshot(src)
    code, _, err = run(capsys, "degrade", src, "-o", tmp_path / "out", "--blur", "box:3")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2 and "b.png" in lines[0], err
    assert lines[1].startswith("restorekit degrade: error: 1 of 2 images failed") and "1 degraded" in lines[1]
    assert snapshot(src) == inputs_before
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"], "no temporary or partial files"
    assert read_image(tmp_path / "out" / "a.png").tensor.shape == (1, 3, 24, 32)


@pytest.mark.parametrize("command", ["degrade", "restore"])
def test_bad_degradations(capsys, tmp_path, plugin, command):
    write_image(tmp_path / "img.png", gradient(h=8, w=8))
    np.save(tmp_path / "zero.npy", np.array([[1.0, -1.0], [0.5, -0.5]]))
    np.save(tmp_path / "mask5.npy", np.ones((5, 5)))
    blur = "--blur" if command == "degrade" else "--kernel"
    noise = "--noise" if command == "degrade" else "--sigma"
    base = [command, tmp_path / "img.png", "-o", tmp_path / "out.npy"]
    if command == "restore":
        base += ["--method", "cli-test-invert"]
    expect_error(capsys, tmp_path, base + [blur, tmp_path / "zero.npy"], "zero.npy", "sum")
    expect_error(capsys, tmp_path, base + [blur, "box:9"], "img.png", "kernel from", "(9x9) is larger than the image (8x8)")
    expect_error(capsys, tmp_path, base + [blur, "nonsense"], "unknown kernel spec 'nonsense'")
    expect_error(capsys, tmp_path, base + [noise, "-0.1"], f"{noise} must be a finite number >= 0")
    expect_error(capsys, tmp_path, base + [noise, "nan"], f"{noise} must be a finite number >= 0")
    # a sigma meant on the 0-255 scale: the same refusal and hint as bench gives
    expect_error(capsys, tmp_path, base + [noise, "25"], f"{noise} 25 is above 1", "0-255 scale write 0.09804")
    expect_error(capsys, tmp_path, base + ["--mask", tmp_path / "mask5.npy"], "mask5.npy is 5x5", "image", "8x8")
    expect_error(capsys, tmp_path, base + ["--mask", "random:1.5"], "[0, 1)")
    expect_error(capsys, tmp_path, base + ["--mask", "upper-half"], "no such mask file")


@pytest.mark.parametrize("command", ["degrade", "restore"])
def test_outputs_never_overwrite_inputs(capsys, images, tmp_path, plugin, command):
    extra = ["--noise", "0.1"] if command == "degrade" else ["--method", "cli-test-invert"]
    expect_error(capsys, tmp_path, [command, images / "a.png", "-o", images / "a.png", *extra], "would overwrite the input")
    expect_error(capsys, tmp_path, [command, images, "-o", images, *extra], "would overwrite the input")
    expect_error(capsys, tmp_path, [command, images, "-o", tmp_path / "x.png", *extra], "names one file but there are 2 inputs")
    other = tmp_path / "other"
    other.mkdir()
    write_image(other / "a.png", gradient(seed=9))
    expect_error(capsys, tmp_path, [command, images / "a.png", other / "a.png", "-o", tmp_path / "o", *extra], "would both be written")
    expect_error(capsys, tmp_path, [command, tmp_path / "missing.png", "-o", tmp_path / "o.png", *extra], "does not exist")
    expect_error(capsys, tmp_path, [command, images / "a.png", "-o", tmp_path / "o.bmp", *extra], "unknown image format '.bmp'")


# --------------------------------------------------------------------------- restore
def test_restore_passes_the_degradation_and_writes_like_the_input(capsys, images, tmp_path, plugin):
    np.save(tmp_path / "mask.npy", np.ones((24, 32)))
    code, stdout, _ = run(
        capsys, "restore", images / "a.png", "-o", tmp_path / "r.png", "--method", "cli-test-invert",
        "--kernel", "course", "--sigma", "0.02", "--mask", tmp_path / "mask.npy",
    )
    assert code == 0 and "restored 1 image with cli-test-invert" in stdout
    (call,) = plugin.calls
    d = call.degradation
    assert torch.equal(d.kernel, load_kernel("course")) and d.boundary == "reflect"
    assert d.sigma == pytest.approx(0.02) and d.mask is not None and d.tasks == {"deblur", "denoise", "inpaint"}
    x = read_image(images / "a.png").tensor
    out = read_image(tmp_path / "r.png")
    assert out.format == "png" and out.bit_depth == 8
    assert torch.allclose(out.tensor, 1 - x, atol=0.5 / 255 + 1e-6)


def test_restore_npy_alpha_and_16_bit(capsys, tmp_path, plugin):
    x = gradient()
    write_image(tmp_path / "x.npy", x)
    alpha = torch.rand(1, 1, 24, 32, generator=torch.Generator().manual_seed(5))
    write_image(tmp_path / "rgba.tif", x, alpha=alpha, bit_depth=16)
    code, _, _ = run(capsys, "restore", tmp_path / "x.npy", tmp_path / "rgba.tif", "-o", tmp_path / "out", "--method", "cli-test-invert")
    assert code == 0
    npy = read_image(tmp_path / "out" / "x.npy")
    assert npy.bit_depth is None and torch.allclose(npy.tensor, 1 - x)
    tif = read_image(tmp_path / "out" / "rgba.tif")
    assert tif.bit_depth == 16 and tif.alpha is not None
    assert torch.allclose(tif.alpha, alpha, atol=1 / 65535)
    assert [c.image.shape[1] for c in plugin.calls] == [3, 3], "the restorer sees colour channels only"


def test_restore_params_and_pipelines(capsys, images, tmp_path, plugin):
    x = read_image(images / "a.png").tensor
    run(capsys, "restore", images / "a.png", "-o", tmp_path / "g.npy", "--method", "cli-test-invert", "--param", "gain=0.5")
    assert torch.allclose(read_image(tmp_path / "g.npy").tensor, 0.5 * (1 - x))
    run(capsys, "restore", images / "a.png", "-o", tmp_path / "p.npy", "--method", "cli-test-invert+cli-test-invert")
    assert torch.allclose(read_image(tmp_path / "p.npy").tensor, x, atol=1e-6)
    expect_error(capsys, tmp_path, ["restore", images / "a.png", "-o", tmp_path / "q.npy", "--method", "cli-test-invert", "--param", "gain"], "NAME=VALUE")
    expect_error(capsys, tmp_path, ["restore", images / "a.png", "-o", tmp_path / "q.npy", "--method", "cli-test-invert", "--param", "gain=loud"], "'gain'", "loud")


def test_restore_unknown_method_and_parameter(capsys, images, tmp_path, plugin):
    expect_error(capsys, tmp_path, ["restore", images / "a.png", "-o", tmp_path / "o.png", "--method", "cli-test-invrt"],
                 "no restorer named 'cli-test-invrt'", "did you mean 'cli-test-invert'")
    expect_error(capsys, tmp_path, ["restore", images / "a.png", "-o", tmp_path / "o.png", "--method", "cli-test-invert", "--param", "nope=1"],
                 "unknown parameter 'nope'", "it takes: gain")


def test_restore_random_mask_matches_degrade(capsys, images, tmp_path, plugin):
    run(capsys, "restore", images / "a.png", "-o", tmp_path / "o.npy", "--method", "cli-test-invert", "--mask", "random:0.3", "--seed", "2")
    assert torch.equal(plugin.calls[0].degradation.mask, Mask.random(24, 32, 0.3, seed=2).mask)


def test_restore_device_reaches_methods_that_take_it(capsys, images, tmp_path, plugin):
    run(capsys, "restore", images / "a.png", "-o", tmp_path / "d.npy", "--method", "cli-test-device")
    assert plugin.calls[-1].restorer.config["device"] == "cpu"
    run(capsys, "restore", images / "a.png", "-o", tmp_path / "e.npy", "--method", "cli-test-invert+cli-test-device")
    assert plugin.calls[-1].restorer.config["device"] == "cpu"
    run(capsys, "restore", images / "a.png", "-o", tmp_path / "f.npy", "--method", "cli-test-device", "--param", "device=mine")
    assert plugin.calls[-1].restorer.config["device"] == "mine", "an explicit --param wins"
    if not torch.cuda.is_available():
        expect_error(capsys, tmp_path, ["restore", images / "a.png", "-o", tmp_path / "g.npy", "--method", "cli-test-device", "--device", "cuda"],
                     "no CUDA GPU")


def test_restore_refuses_a_wrong_shaped_result(capsys, images, tmp_path, plugin):
    expect_error(capsys, tmp_path, ["restore", images / "a.png", "-o", tmp_path / "w.png", "--method", "cli-test-wrong-shape"],
                 "cli-test-wrong-shape", "(1, 3, 24, 31)")


def test_restore_with_wiener_improves_psnr(capsys, tmp_path):
    if "wiener" not in default_registry().names():
        pytest.skip("the wiener plugin does not register 'wiener' yet")
    from restorekit.metrics import psnr

    from skimage import data  # camera.png ships inside scikit-image

    x = torch.from_numpy(data.camera()[::4, ::4] / 255.0).float()[None, None]  # 128x128
    write_image(tmp_path / "clean.npy", x)
    assert run(capsys, "degrade", tmp_path / "clean.npy", "-o", tmp_path / "deg.npy", "--blur", "course", "--noise", "0.01")[0] == 0
    code, _, err = run(capsys, "restore", tmp_path / "deg.npy", "-o", tmp_path / "rest.npy", "--method", "wiener",
                       "--kernel", "course", "--sigma", "0.01")  # both commands default to --boundary reflect
    assert code == 0, err
    degraded, restored = load(tmp_path / "deg.npy"), load(tmp_path / "rest.npy")
    # measured: 21.0 dB degraded -> 26.9 dB restored (course kernel, sigma 0.01, reflect borders)
    assert psnr(restored, x) > psnr(degraded, x) + 3


def load(path):
    return read_image(path).tensor


# --------------------------------------------------------------------------- the installed script
def test_installed_script(tmp_path):
    script = shutil.which("restorekit", path=str(Path(sys.executable).parent)) or shutil.which("restorekit")
    if script is None:
        pytest.skip("the restorekit console script is not installed")
    write_image(tmp_path / "a.png", gradient())
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    ok = subprocess.run([script, "degrade", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.npy"), "--noise", "0.1"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert np.load(tmp_path / "b.npy").shape == (24, 32, 3)
    bad = subprocess.run([script, "degrade", str(tmp_path / "a.png"), "-o", str(tmp_path / "c.npy"), "--noise", "-1"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "--noise must be" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "c.npy").exists()


def test_one_input_and_a_folder_output(capsys, images, tmp_path):
    assert run(capsys, "degrade", images / "a.png", "-o", tmp_path / "newdir", "--blur", "box:3")[0] == 0
    assert [p.name for p in (tmp_path / "newdir").iterdir()] == ["a.png"]
    assert run(capsys, "degrade", images / "b.png", "-o", f"{tmp_path / 'dotted.v2'}/", "--blur", "box:3")[0] == 0
    assert (tmp_path / "dotted.v2" / "b.png").is_file()
    expect_error(capsys, tmp_path, ["degrade", images / "b.png", "-o", tmp_path / "out.v2", "--blur", "box:3"], "end -o with '/'")
