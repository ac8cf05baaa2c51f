"""`restorekit bench` and `restorekit demo` end to end: tables, atomic outputs, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from restorekit.cli.main import main


@pytest.fixture(scope="module")
def clean_folder(tmp_path_factory):
    from skimage import data, transform

    from restorekit.imageio import write_image

    folder = tmp_path_factory.mktemp("clean")
    for name in ("astronaut", "coffee"):
        img = transform.resize(getattr(data, name)()[:300, :300], (64, 64), anti_aliasing=True)
        write_image(folder / f"{name}.png", torch.from_numpy(img).float().permute(2, 0, 1)[None])
    return folder


def test_cli_modules_import_no_torch():
    code = "import sys, restorekit.cli.bench_cmd, restorekit.cli.demo_cmd; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_bench_deblur_writes_table_json_markdown_and_figure(clean_folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    rc = main([
        "bench", "--data", str(clean_folder), "--task", "deblur", "--methods", "wiener,wiener:snr=auto",
        "--sigmas", "0.01,0.02", "--kernel", "course", "--seed", "3", "--no-progress",
        "--json", str(out / "r.json"), "--markdown", str(out / "r.md"), "--figure", str(out / "r.png"),
    ])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "| 0.02 | wiener:snr=auto |" in printed and "Machine:" in printed
    data = json.loads((out / "r.json").read_text())
    assert data["settings"]["seed"] == 3 and data["settings"]["image_names"] == ["astronaut.png", "coffee.png"]
    assert len(data["rows"]) == 4 and all(r["images"] == 2 for r in data["rows"])
    auto = next(r for r in data["rows"] if r["method"] == "wiener:snr=auto" and r["sigma"] == 0.02)
    fixed = next(r for r in data["rows"] if r["method"] == "wiener" and r["sigma"] == 0.02)
    assert auto["psnr"] > fixed["psnr"]
    assert (out / "r.md").read_text().count("| wiener |") == 2
    assert (out / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.iterdir()) == ["r-images.png", "r.json", "r.md", "r.png"]  # + the image grid


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--task", "deblur", "--methods", "wienr"], "did you mean 'wiener'"),
        (["--task", "denoise", "--methods", "tv", "--kernel", "course"], "only used by --task deblur"),
        (["--task", "denoise", "--methods", "tv", "--sigmas", "25"], "0-255 scale"),
        (["--task", "deblur", "--methods", "wiener:snr=-3"], "snr"),
        (["--task", "deblur", "--methods", "wiener", "--kernel", "nope:1"], "unknown kernel spec"),
        (["--task", "deblur", "--methods", "wiener", "--device", "gpu"], "unknown device 'gpu'"),
        (["--task", "deblur", "--methods", "wiener", "--threads", "0"], "at least 1"),
    ],
)
def test_bench_bad_input_is_a_one_line_error(clean_folder, capsys, extra, message):
    rc = main(["bench", "--data", str(clean_folder), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.startswith("restorekit bench: error:") and "Traceback" not in err


def test_bench_refuses_to_overwrite_an_input(clean_folder, capsys):
    target = clean_folder / "coffee.png"
    before = target.read_bytes()
    rc = main(["bench", "--data", str(clean_folder), "--task", "deblur", "--methods", "wiener", "--no-progress",
               "--figure", str(target)])
    assert rc == 2 and "input images" in capsys.readouterr().err
    assert target.read_bytes() == before


def test_bench_missing_folder(tmp_path, capsys):
    rc = main(["bench", "--data", str(tmp_path / "nowhere"), "--task", "denoise"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


@pytest.fixture()
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_demo_on_tiny_images(tmp_path, capsys, keep_threads):
    assert torch.get_num_threads() >= 1
    target = tmp_path / "demo.png"
    rc = main(["demo", "--size", "32", "--images", "astronaut,camera", "-o", str(target), "--no-progress",
               "--threads", "1"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "## denoise" in printed and "## deblur" in printed and "## inpaint" in printed
    assert "| 0.1 | (degraded input) |" in printed and "| 0.01 | wiener |" in printed
    assert "| 0.1 | tv |" in printed  # the example plugin's anchors are in the same table
    # every learned plugin is shown: mlp-inpaint on the bundled digits, beside the biharmonic anchor
    for row in ("| 0.1 | dncnn |", "| 0.01 | unet |", "| 0.01 | wiener+unet |", "| 0 | mlp-inpaint |",
                "| 0 | biharmonic |"):
        assert row in printed, row
    assert target.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["demo.png"]
    assert torch.get_num_threads() == 1


def _psnr_in_table(printed: str, row_start: str) -> float:
    line = next(line for line in printed.splitlines() if line.startswith(row_start))
    return float(line.split("|")[3])


def test_demo_inpaint_alone_shows_mlp_inpaint_above_biharmonic(tmp_path, capsys, keep_threads):
    target = tmp_path / "inpaint.svg"
    rc = main(["demo", "--tasks", "inpaint", "-o", str(target), "--no-progress", "--threads", "1"])
    printed = capsys.readouterr().out
    assert rc == 0 and "## inpaint" in printed and "## denoise" not in printed
    assert "12 MNIST digits bundled with restorekit" in printed
    masked = _psnr_in_table(printed, "| 0 | (degraded input) |")
    biharmonic = _psnr_in_table(printed, "| 0 | biharmonic |")
    learned = _psnr_in_table(printed, "| 0 | mlp-inpaint |")
    assert learned > biharmonic > masked
    assert target.read_text().lstrip().startswith("<?xml")


def test_demo_digits_ship_with_the_package():
    from restorekit.samples import demo_digits

    digits, labels = demo_digits()
    assert digits.shape == (12, 1, 28, 28) and digits.dtype == torch.float32
    assert float(digits.min()) == 0.0 and float(digits.max()) == 1.0
    assert labels == [7] * 4 + [8] * 4 + [9] * 4
    # white strokes on black, as MNIST: mostly background, every digit has ink in both halves
    assert float((digits == 0).float().mean()) > 0.6
    assert bool((digits[:, :, :14].amax(dim=(1, 2, 3)) > 0.5).all() and (digits[:, :, 14:].amax(dim=(1, 2, 3)) > 0.5).all())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tasks", "denoise,sharpen"],
         "unknown sharpen; choose from denoise, deblur, deblur-motion, inpaint, superresolve"),
        (["--tasks", ","], "empty; choose from"),
        (["--images", "not_a_photo"], "no photo named"),
        (["--size", "8"], "at least 16"),
        (["--sigma", "30"], "0-255 scale"),
    ],
)
def test_demo_bad_input_is_a_one_line_error(tmp_path, capsys, extra, message):
    rc = main(["demo", "-o", str(tmp_path / "d.png"), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_demo_output_folder_must_exist(tmp_path, capsys):
    rc = main(["demo", "-o", str(tmp_path / "missing" / "d.png"), "--no-progress"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_a_reader_that_stops_early_gets_no_traceback():
    """`restorekit doctor | head -1`: the closed pipe ends the command quietly (exit 141, like SIGPIPE)."""
    proc = subprocess.Popen([sys.executable, "-m", "restorekit.cli.main", "doctor"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err
