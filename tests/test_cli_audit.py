"""The reliability audit's findings for the image commands, each as a CLI test (issue 10, item 7).

Every bad input or fault ends in one line ``restorekit COMMAND: error: ...`` naming the problem and
the fix, exit status 2, and no partial output; a batch goes on past a bad file.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from restorekit import Restorer, hookimpl
from restorekit.atomic import STALE_AFTER_S, atomic_output, is_temporary, remove_stale_temporaries
from restorekit.imageio import read_image, write_image
from restorekit.registry import default_registry
from test_cli_degrade_restore import expect_error, gradient, plugin, run, snapshot  # noqa: F401 - fixture

AUDIT_PLUGIN = "restorekit-cli-audit-plugin"
HINT_25 = "25 is above 1: sigmas are on the [0, 1] scale; for 25 on the 0-255 scale write 0.09804"


class OutOfMemoryRestorer(Restorer):
    """Raises what running out of memory raises: MemoryError, or torch's OutOfMemoryError."""

    name = "cli-audit-oom"
    tasks = frozenset({"denoise"})
    kind = "ram"

    def restore(self, image, degradation=None):
        if type(self).kind == "gpu":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        raise MemoryError()


@hookimpl
def register_restorers(register):
    register(OutOfMemoryRestorer)


@pytest.fixture
def oom_plugin():
    registry = default_registry()
    registry.add_plugin(SimpleNamespace(register_restorers=register_restorers), name=AUDIT_PLUGIN)
    yield OutOfMemoryRestorer
    registry.remove_plugin(AUDIT_PLUGIN)
    OutOfMemoryRestorer.kind = "ram"


def _folder(tmp_path, names=("a.png", "b.png", "c.png"), bad=("b.png",)):
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(names):
        write_image(src / name, gradient(seed=i + 1))
    data = (src / names[0]).read_bytes()
    for name in bad:
        (src / name).write_bytes(data[: len(data) // 2])  # truncated
    return src


def _files(folder: Path) -> list[str]:
    """Every name in ``folder``, hidden ones too (temporary files would show here)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- sigma on the 0-255 scale
@pytest.mark.parametrize("argv", [
    ["degrade", "{img}", "-o", "{tmp}/o.npy", "--noise", "25"],
    ["restore", "{img}", "-o", "{tmp}/o.npy", "--method", "cli-test-invert", "--sigma", "25"],
    ["bench", "--data", "{img}", "--task", "denoise", "--methods", "cli-test-invert", "--sigmas", "25", "--no-progress"],
    ["demo", "-o", "{tmp}/d.png", "--tasks", "denoise", "--sigma", "25", "--no-progress"],
])
def test_a_sigma_on_the_0_255_scale_gets_the_same_refusal_everywhere(capsys, tmp_path, plugin, argv):
    write_image(tmp_path / "img.png", gradient())
    argv = [a.format(img=tmp_path / "img.png", tmp=tmp_path) for a in argv]
    line = expect_error(capsys, tmp_path, argv, HINT_25)
    assert "sigma" in line


# --------------------------------------------------------------------------- float .npy on the 0-255 scale
def test_a_float_npy_on_the_0_255_scale_is_refused(capsys, tmp_path, plugin):
    np.save(tmp_path / "x255.npy", (gradient()[0].permute(1, 2, 0).numpy() * 255).astype(np.float32))
    for command in (["restore", "--method", "cli-test-invert"], ["degrade", "--noise", "0.1"]):
        expect_error(capsys, tmp_path, [command[0], tmp_path / "x255.npy", "-o", tmp_path / "o.npy", *command[1:]],
                     "x255.npy", "0-255 scale", "divide it by 255")
    assert not plugin.calls


def test_a_noisy_float_npy_slightly_outside_0_1_still_restores(capsys, tmp_path, plugin):
    noisy = gradient() + 0.3 * torch.randn(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    assert noisy.min() < -0.3 and noisy.max() > 1.3
    write_image(tmp_path / "noisy.npy", noisy)
    code, _, err = run(capsys, "restore", tmp_path / "noisy.npy", "-o", tmp_path / "r.npy", "--method", "cli-test-invert")
    assert code == 0, err
    assert torch.allclose(read_image(tmp_path / "r.npy").tensor, 1 - noisy)


# --------------------------------------------------------------------------- one bad file in a folder
def test_a_bad_file_does_not_stop_the_batch(capsys, tmp_path, plugin):
    src = _folder(tmp_path)
    before = snapshot(src)
    code, out, err = run(capsys, "restore", src, "-o", tmp_path / "out", "--method", "cli-test-invert")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2, err
    assert lines[0].startswith("restorekit restore: error: ") and "b.png" in lines[0] and "cannot read" in lines[0]
    assert lines[1] == (f"restorekit restore: error: 1 of 3 images failed (each named above); 2 restored -> "
                        f"{tmp_path / 'out'}; fix or remove the failed files and run again for them")
    assert "restored 2 images" in out
    assert _files(tmp_path / "out") == ["a.png", "c.png"]
    assert snapshot(src) == before


def test_fail_fast_stops_at_the_first_bad_file(capsys, tmp_path, plugin):
    src = _folder(tmp_path)
    code, _, err = run(capsys, "restore", src, "-o", tmp_path / "out", "--method", "cli-test-invert", "--fail-fast")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "b.png" in lines[0] and "(1 restored, 1 not tried)" in lines[0], err
    assert _files(tmp_path / "out") == ["a.png"]


# --------------------------------------------------------------------------- devices, seeds, sizes
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_a_cuda_device_parameter_without_a_gpu(capsys, tmp_path, plugin):
    write_image(tmp_path / "a.png", gradient())
    expect_error(capsys, tmp_path, ["restore", tmp_path / "a.png", "-o", tmp_path / "o.png", "--method", "cli-test-device",
                                    "--param", "device=cuda"], "--param device", "no CUDA GPU", "use cpu")
    expect_error(capsys, tmp_path, ["restore", tmp_path / "a.png", "-o", tmp_path / "o.png",
                                    "--method", "cli-test-invert+cli-test-device", "--param", "cli-test-device.device=cuda:1"],
                 "--param cli-test-device.device", "no CUDA GPU")
    assert not plugin.calls


@pytest.mark.parametrize("command", ["degrade", "restore"])
def test_a_seed_beyond_64_bits(capsys, tmp_path, plugin, command):
    write_image(tmp_path / "a.png", gradient())
    extra = ["--method", "cli-test-invert"] if command == "restore" else []
    expect_error(capsys, tmp_path, [command, tmp_path / "a.png", "-o", tmp_path / "o.png", "--mask", "random:0.5",
                                    "--seed", str(2**64), *extra], "--seed must be between 0 and 18446744073709551615")


@pytest.mark.parametrize("name", ["x.txt", "x.bmp", "x"])
def test_demo_checks_the_figure_format_before_any_work(capsys, tmp_path, monkeypatch, name):
    import restorekit.bench

    def no_work(*args, **kwargs):
        raise AssertionError("the demo ran before checking its output")

    monkeypatch.setattr(restorekit.bench, "run_benchmark", no_work)
    expect_error(capsys, tmp_path, ["demo", "-o", tmp_path / name, "--no-progress"], name, "end the name with .png, .pdf or .svg")


def test_bench_checks_the_figure_format_before_any_work(capsys, tmp_path, plugin):
    write_image(tmp_path / "a.png", gradient())
    expect_error(capsys, tmp_path, ["bench", "--data", tmp_path / "a.png", "--task", "denoise", "--methods", "cli-test-invert",
                                    "--figure", tmp_path / "f.bmp", "--no-progress"], "--figure", "'.bmp'")


def test_demo_size_is_bounded(capsys, tmp_path):
    expect_error(capsys, tmp_path, ["demo", "-o", tmp_path / "d.png", "--size", "100000", "--no-progress"],
                 "--size 100000 is too large", "at most 1024", "GiB")


# --------------------------------------------------------------------------- write failures and memory
def test_a_full_disk_is_one_line_and_leaves_nothing(capsys, tmp_path, plugin, monkeypatch):
    src = _folder(tmp_path, bad=())

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # where a full disk shows when writes are buffered
    code, _, err = run(capsys, "restore", src, "-o", tmp_path / "out", "--method", "cli-test-invert")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "no space left on the disk" in lines[0] and "free some space" in lines[0] and "(0 restored, 2 not tried)" in lines[0]
    assert _files(tmp_path / "out") == [], "no partial or temporary file"


def test_a_failed_write_midway_leaves_nothing(capsys, tmp_path, plugin, monkeypatch):
    write_image(tmp_path / "a.png", gradient())

    def half_then_full(file, arr, allow_pickle=True):
        Path(file).write_bytes(b"\x93NUMPY half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", half_then_full)
    expect_error(capsys, tmp_path, ["restore", tmp_path / "a.png", "-o", tmp_path / "r.npy", "--method", "cli-test-invert"],
                 "cannot write", "r.npy", "no space left")


@pytest.mark.slow  # a fresh interpreter imports torch: ~20 s on a busy machine
def test_a_file_size_limit_is_one_line(tmp_path):
    """``ulimit -f``: the write fails with EFBIG (SIGXFSZ is ignored), reported, nothing left behind."""
    resource = pytest.importorskip("resource")
    write_image(tmp_path / "a.png", gradient(h=64, w=64))
    out = tmp_path / "out"
    out.mkdir()
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
        "from restorekit.cli.main import main\n"
        f"sys.exit(main(['degrade', {str(tmp_path / 'a.png')!r}, '-o', {str(out / 'a.npy')!r}, '--noise', '0.1']))\n"
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("restorekit degrade: error: cannot write") and "file-size limit" in line and "ulimit -f" in line
    assert _files(out) == []


@pytest.mark.parametrize("kind, where", [("ram", "memory (RAM)"), ("gpu", "GPU memory")])
def test_running_out_of_memory_is_one_line(capsys, tmp_path, oom_plugin, kind, where):
    oom_plugin.kind = kind
    write_image(tmp_path / "a.png", gradient())
    line = expect_error(capsys, tmp_path, ["restore", tmp_path / "a.png", "-o", tmp_path / "o.png", "--method", "cli-audit-oom"],
                        "a.png", f"ran out of {where}")
    assert "free some memory" in line and "--max-memory" in line and "Traceback" not in line


def test_running_out_of_memory_outside_a_restorer(capsys, tmp_path, monkeypatch):
    import restorekit.cli.demo_cmd as demo

    def huge(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(demo, "demo_images", huge)
    expect_error(capsys, tmp_path, ["demo", "-o", tmp_path / "d.png", "--tasks", "denoise", "--no-progress"],
                 "ran out of memory (RAM)", "free some memory")


# --------------------------------------------------------------------------- messages that misled
def test_a_symlink_loop_and_a_fifo_are_named_for_what_they_are(capsys, tmp_path, plugin):
    loop = tmp_path / "loop.png"
    os.symlink(loop, loop)
    dangling = tmp_path / "gone.png"
    os.symlink(tmp_path / "nowhere.png", dangling)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for command in (["restore", "--method", "cli-test-invert"], ["degrade", "--noise", "0.1"]):
        for path, fragment in ((loop, "is a symbolic link loop"), (dangling, "is a symbolic link to"),
                               (fifo, "is a FIFO (named pipe), not an image file")):
            line = expect_error(capsys, tmp_path, [command[0], path, "-o", tmp_path / "o.png", *command[1:]], path.name, fragment)
            assert "does not exist; check the path" not in line


def test_a_too_long_file_name_says_so(capsys, tmp_path, plugin):
    write_image(tmp_path / "a.png", gradient())
    name = "n" * 300 + ".png"
    line = expect_error(capsys, tmp_path, ["restore", tmp_path / "a.png", "-o", tmp_path / name, "--method", "cli-test-invert"],
                        "is too long for the file system", "choose a shorter name")
    assert "writable" not in line


def test_a_long_name_that_fits_is_written(capsys, tmp_path, plugin):
    """The temporary name is shortened, not the output's: a name at the file system's limit still works."""
    write_image(tmp_path / "a.png", gradient())
    name = "n" * (255 - 4) + ".png"
    code, _, err = run(capsys, "restore", tmp_path / "a.png", "-o", tmp_path / name, "--method", "cli-test-invert")
    assert code == 0, err
    assert (tmp_path / name).is_file() and not [n for n in _files(tmp_path) if is_temporary(n)]


def test_temporary_files_left_by_sigkill_are_removed_by_the_next_write(tmp_path):
    """A writer killed mid-write leaves its hidden temporary file; the next write into the folder removes it."""
    child = (
        "import os, signal, sys\n"
        "from restorekit.atomic import atomic_output\n"
        "with atomic_output(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'half a checkpoint')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", child, str(tmp_path / "ckpt.pt")], capture_output=True, timeout=120)
    assert proc.returncode == -9
    (left,) = [p for p in tmp_path.iterdir()]
    assert is_temporary(left.name) and left.name.startswith(".ckpt.") and not (tmp_path / "ckpt.pt").exists()
    foreign = tmp_path / ".notes.tmp"  # someone else's hidden file: never touched
    foreign.write_text("x")
    fresh = tmp_path / f".live.{os.getpid()}-0123abcd.rk-tmp.png"  # a live process's, being written
    fresh.write_text("x")
    old = time.time() - STALE_AFTER_S - 60
    for p in (left, foreign, fresh):
        os.utime(p, (old, old))
    assert remove_stale_temporaries(tmp_path, older_than_s=STALE_AFTER_S * 10) == []  # not old enough yet
    with atomic_output(tmp_path / "next.md") as tmp:  # the first write into the folder sweeps it
        tmp.write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, foreign.name, "next.md"])
