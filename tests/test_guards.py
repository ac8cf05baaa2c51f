"""The trained-for guard: learned models warn (once, one line) outside what they were trained for; unet refuses another kernel."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import restorekit
from restorekit.degrade import Blur, Compose, Mask, Noise
from restorekit.errors import InputError, RestorekitWarning, one_line_warnings
from restorekit.kernels import gaussian_kernel, load_kernel
from restorekit.learned import kernel_sha256


def _image(size: int = 48) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def dncnn():
    return restorekit.create("dncnn")


def _guard_warnings(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, RestorekitWarning)]


@pytest.mark.parametrize("plugin, name, kernel, sigma_range, tasks", [
    ("unet", "unet-deblur", "course", [0.0, 0.02], ["deblur"]),
    ("unet", "unet-wiener", "course", [0.0, 0.02], ["deblur"]),
    ("dncnn", "dncnn-color", None, [0.0, 0.2], ["denoise"]),
    ("dncnn", "dncnn-gray", None, [0.0, 0.2], ["denoise"]),
    ("mlp_inpaint", "mlp-inpaint", None, [0.0, 0.0], ["inpaint"]),
])
def test_every_shipped_sidecar_records_what_it_was_trained_for(plugin, name, kernel, sigma_range, tasks):
    from pathlib import Path

    import restorekit_plugins

    side = Path(restorekit_plugins.__file__).parent / plugin / "weights" / f"{name}.json"
    found = json.loads(side.read_text())["metadata"]["trained_for"]
    expected_kernel = kernel_sha256(load_kernel(kernel)) if kernel else None
    assert found == {"kernel_sha256": expected_kernel, "noise_sigma_range": sigma_range, "tasks": tasks}


def test_inside_the_training_range_nothing_is_said(dncnn):
    assert _guard_warnings(lambda: dncnn(_image(), Noise(0.1))) == []
    assert _guard_warnings(lambda: dncnn(_image(), None)) == []  # nothing known: nothing to compare
    d = Compose(Blur(load_kernel("course")), Noise(0.01))
    assert _guard_warnings(lambda: restorekit.create("unet")(_image(), d)) == []
    assert _guard_warnings(lambda: restorekit.create("wiener+unet")(_image(), d)) == []


def test_noise_above_the_range_warns_once_in_one_line_naming_it_and_pnp():
    r = restorekit.create("dncnn")
    first = _guard_warnings(lambda: r(_image(), Noise(0.3)))
    assert len(first) == 1 and "\n" not in first[0]
    assert "noise sigma 0.3 (trained for 0-0.2)" in first[0] and "pnp" in first[0] and "'dncnn'" in first[0]
    assert _guard_warnings(lambda: r(_image(), Noise(0.3))) == []  # once per restorer (per method in bench)


def test_a_mask_or_a_blur_a_denoiser_never_saw_is_named():
    r = restorekit.create("dncnn")
    (text,) = _guard_warnings(lambda: r(_image(), Compose(Mask.random(48, 48, 0.5), Noise(0.05))))
    assert "a pixel mask (trained for denoise only)" in text
    r = restorekit.create("dncnn")
    (text,) = _guard_warnings(lambda: r(_image(), Compose(Blur(load_kernel("course")), Noise(0.05))))
    assert "a blur kernel (trained without blur)" in text


def test_unet_refuses_another_kernel_unless_forced():
    d = Compose(Blur(gaussian_kernel(1.6)), Noise(0.01))
    with pytest.raises(InputError, match=r"'unet' was trained for one blur kernel only.*pnp.*force=true"):
        restorekit.create("unet")(_image(), d)
    forced = restorekit.create("unet", force="true")
    (text,) = _guard_warnings(lambda: forced(_image(), d))
    assert "another blur kernel" in text and kernel_sha256(gaussian_kernel(1.6))[:12] in text
    # the Wiener step of wiener+unet is non-blind; its UNet step only warns
    (text,) = _guard_warnings(lambda: restorekit.create("wiener+unet")(_image(), d))
    assert "'unet-wiener'" in text


def test_warnings_show_on_one_line(capsys):
    r = restorekit.create("dncnn")
    with one_line_warnings():
        r(_image(), Noise(0.25))
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("restorekit: warning: ")]
    assert len(ours) == 1 and "noise sigma 0.25" in ours[0] and err.count("\n") == 1


def test_restore_cli_prints_the_guard_warning_once_for_a_folder(tmp_path, capsys):
    from restorekit.cli.main import main

    import numpy as np

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        np.save(folder / f"{i}.npy", np.random.default_rng(i).random((40, 40, 3)).astype("float32"))
    code = main(["restore", str(folder), "-o", str(tmp_path / "out"), "--method", "dncnn", "--sigma", "0.3"])
    err = capsys.readouterr().err
    assert code == 0
    lines = [line for line in err.splitlines() if "used outside what it was trained for" in line]
    assert len(lines) == 1 and lines[0].startswith("restorekit: warning: ")
    code = main(["restore", str(folder / "0.npy"), "-o", str(tmp_path / "x.npy"), "--method", "unet",
                 "--kernel", "gaussian:1.6", "--sigma", "0.01"])
    assert code == 2 and "force=true" in capsys.readouterr().err
    code = main(["restore", str(folder / "0.npy"), "-o", str(tmp_path / "x.npy"), "--method", "unet",
                 "--kernel", "gaussian:1.6", "--sigma", "0.01", "--param", "force=true"])
    assert code == 0 and "another blur kernel" in capsys.readouterr().err
