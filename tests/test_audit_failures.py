"""Issue 16's clean failures: a full disk, a file-size limit, SIGTERM mid-write, bad names, deep JSON, swapped arguments.

Each case was a traceback or a left-over file before; now it is one line naming the cause and the fix
(CLI exit status 2) and nothing half-written stays behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from PIL import Image

from restorekit.atomic import Terminated, atomic_output, is_temporary, terminate_as_interrupt
from restorekit.cli.main import main
from restorekit.errors import InputError

TINY = ["--epochs", "1", "--batch-size", "4", "--no-progress", "--", "--hidden-layers", "1", "--hidden-channels", "4"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data / f"{i}.png")
    return data


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith(f"restorekit {command}: error: "), err
    return lines[-1]


def test_train_under_a_file_size_limit_is_one_line_exit_2(folder, tmp_path):
    """torch.save's RuntimeError ('unexpected pos') under ``ulimit -f`` was a traceback with exit status 1."""
    out = tmp_path / "run"
    script = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192)); "
              "from restorekit.cli.main import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", script, "train", "dncnn", "--data", str(folder), "--out", str(out)]
                          + TINY, capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr, "train")
    assert "checkpoint.pt" in line and "file-size limit" in line and "ulimit -f" in line
    assert not [p for p in out.iterdir() if is_temporary(p.name)]


def test_torch_save_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    """A full disk: torch's zip writer fails without an error number; the free space tells the cause."""
    import restorekit.atomic as atomic

    class Full:
        f_bavail = 0

    monkeypatch.setattr(atomic.os, "statvfs", lambda path: Full())

    def failing_save(obj, f):
        with open(f, "wb") as handle:
            handle.write(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 128 vs 0")

    monkeypatch.setattr(torch, "save", failing_save)
    from restorekit.training.checkpoint import save_checkpoint

    with pytest.raises(InputError, match="no space left on the disk"):
        save_checkpoint(tmp_path / "checkpoint.pt", {"model": {}})
    assert list(tmp_path.iterdir()) == []


def test_other_runtime_errors_inside_a_write_pass_through(tmp_path):
    with pytest.raises(RuntimeError, match="not a disk problem"):
        with atomic_output(tmp_path / "x.pt"):
            raise RuntimeError("not a disk problem")
    assert list(tmp_path.iterdir()) == []


def test_new_plugin_with_a_300_character_name(tmp_path, capsys):
    assert main(["new-plugin", "a" * 300, "-o", str(tmp_path)]) == 2
    line = _one_error_line(capsys.readouterr().err, "new-plugin")
    assert "too long for the file system" in line and "choose a shorter name" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code, words", [
    (30, "choose a writable output folder"),        # EROFS: a read-only -o
    (28, "no space left on the disk"),              # ENOSPC: a full disk
])
def test_new_plugin_on_a_read_only_or_full_disk(tmp_path, capsys, monkeypatch, code, words):
    """Root ignores chmod, so the failing write is simulated where the scaffold writes its files."""
    import restorekit.scaffold as scaffold

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(scaffold, "_lay_down", refuse)
    assert main(["new-plugin", "my-filter", "-o", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys.readouterr().err, "new-plugin")
    assert words in line
    assert not (tmp_path / "out" / "my-filter").exists()


def test_deeply_nested_sidecar_is_a_weights_error(tmp_path):
    from restorekit.weights import WeightsError, read_metadata

    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    (tmp_path / "w.json").write_text('{"arch": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(WeightsError, match="nested too deeply"):
        read_metadata(weights)


def test_write_image_with_the_arguments_swapped(tmp_path):
    from restorekit.imageio import write_image

    target = tmp_path / "x.png"
    with pytest.raises(InputError, match=r"takes the path first.*write_image\('.*x\.png', image\)"):
        write_image(torch.zeros(3, 4, 4), target)
    with pytest.raises(InputError, match="must be a str or path-like"):
        write_image(3, torch.zeros(3, 4, 4))
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_a_cli_write_leaves_no_partial_file(tmp_path):
    """``timeout`` sends SIGTERM: the hidden temporary file used to stay until the 600 s sweep."""
    source = tmp_path / "in.npy"
    np.save(source, np.zeros((16, 16, 3), np.float32))
    out = tmp_path / "out"
    out.mkdir()
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        real_save = np.save
        def slow_save(file, *args, **kwargs):
            real_save(file, *args, **kwargs)
            print("writing", flush=True)
            time.sleep(120)
        np.save = slow_save
        from restorekit.cli.main import main
        sys.exit(main(["degrade", {str(source)!r}, "-o", {str(out / "noisy.npy")!r}, "--noise", "0.1"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert [p for p in out.iterdir() if is_temporary(p.name)]  # the partial file exists mid-write
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "restorekit degrade: terminated" in err
    assert list(out.iterdir()) == []


def test_terminate_as_interrupt_raises_in_the_main_thread(tmp_path):
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert terminate_as_interrupt()
        with pytest.raises(Terminated):
            with atomic_output(tmp_path / "x.bin") as tmp:
                tmp.write_bytes(b"partial")
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
        assert list(tmp_path.iterdir()) == []
        assert isinstance(Terminated(), KeyboardInterrupt)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_terminate_as_interrupt_leaves_an_application_handler_alone():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, lambda *a: None)
        assert not terminate_as_interrupt()
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- torchrun: a failing rank
def _torchrun_script(tmp_path, body: str, *argv):
    """Run ``body`` (which may patch restorekit) then the CLI with ``argv`` in 2 gloo processes under torchrun."""
    import socket
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    script = tmp_path / "launch.py"
    script.write_text("import os, sys\n" + textwrap.dedent(body)
                      + "\nfrom restorekit.cli.main import main\nsys.exit(main(sys.argv[1:]))\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-port", str(port), str(script), *map(str, argv)]
    env = {**ENV, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def _worker_output(stderr: str) -> str:
    """The workers' part of torchrun's stderr (torchrun's own report of failed workers starts at its traceback)."""
    return stderr.split("torch.distributed.elastic.multiprocessing.errors.ChildFailedError")[0].rsplit(
        "Traceback (most recent call last):\n  File", 1)[0] if "ChildFailedError" in stderr else stderr


@pytest.fixture
def two_images(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        np.save(src / f"{i}.npy", np.full((32, 32, 3), 0.5, np.float32))
    return src


@pytest.mark.slow  # two fresh interpreters import torch
def test_torchrun_a_rank_that_dies_gives_one_line_on_rank_0(tmp_path, two_images):
    """Rank 1 dies before the gather: rank 0 printed gloo's 'Connection reset by peer' traceback (exit 1)."""
    body = """
        import restorekit.scaleout as scaleout
        real = scaleout.gather
        def gather(obj, ctx):
            if ctx.rank == 1:
                os._exit(3)
            return real(obj, ctx)
        scaleout.gather = gather
    """
    proc = _torchrun_script(tmp_path, body, "restore", two_images, "-o", tmp_path / "out", "--method", "dncnn")
    assert proc.returncode != 0  # torchrun's own status (1) whenever a worker fails
    workers = _worker_output(proc.stderr)
    assert "Traceback" not in workers and "pair.cc" not in workers, workers
    assert "restorekit restore: error: rank 0: another process of the torchrun group stopped" in workers


@pytest.mark.slow
def test_torchrun_an_error_on_one_rank_only_names_that_rank(tmp_path, two_images):
    """An error met by rank 1 alone was silent (only rank 0 printed errors): now rank 1 says it, with its rank."""
    body = """
        import restorekit.scaleout as scaleout
        from restorekit.errors import InputError
        real = scaleout.gather
        def gather(obj, ctx):
            if ctx.rank == 1:
                raise InputError("image 1.npy is damaged; replace it")
            return real(obj, ctx)
        scaleout.gather = gather
    """
    proc = _torchrun_script(tmp_path, body, "restore", two_images, "-o", tmp_path / "out", "--method", "dncnn")
    assert proc.returncode != 0
    workers = _worker_output(proc.stderr)
    assert "Traceback" not in workers, workers
    assert "restorekit restore: error: rank 1: image 1.npy is damaged; replace it" in proc.stderr


@pytest.mark.slow
def test_torchrun_an_error_everywhere_is_reported_once_naming_the_rank(tmp_path):
    """scaleout.run_everywhere: every rank raises, rank 0 alone reports, naming where it happened."""
    body = """
        import restorekit.bench as bench
        from restorekit.errors import InputError
        def run_benchmark(*args, **kwargs):
            if int(os.environ["RANK"]) == 1:
                raise InputError("method x failed on rank 1's images")
            return real(*args, **kwargs)
        real = bench.run_benchmark
        bench.run_benchmark = run_benchmark
    """
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        np.save(data / f"{i}.npy", np.full((16, 16, 3), 0.5, np.float32))
    proc = _torchrun_script(tmp_path, body, "bench", "--data", data, "--task", "denoise", "--methods", "wiener",
                            "--sigmas", "0.05", "--no-progress")
    assert "Traceback" not in _worker_output(proc.stderr), proc.stderr
    assert proc.stderr.count("method x failed on rank 1's images") == 1, proc.stderr
    assert "error: rank 1: method x failed" in proc.stderr


# --------------------------------------------------------------------------- training: damaged checkpoints, history
def _flip_bytes_in_largest_tensor(path, count=16):
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    for i in range(count):
        data[start + i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_resume_from_a_corrupted_checkpoint_is_refused(folder, tmp_path, capsys):
    """16 flipped bytes inside a tensor: torch.load does not check the zip CRC and the run resumed silently."""
    out = tmp_path / "run"
    args = ["train", "dncnn", "--data", str(folder), "--out", str(out), "--seed", "1"]
    assert main(args + TINY) == 0
    checkpoint = out / "checkpoint.pt"
    _flip_bytes_in_largest_tensor(checkpoint)
    capsys.readouterr()
    args[args.index("--seed")] = "--resume"
    args.remove("1")
    assert main(args + ["--epochs", "2"] + TINY[2:]) == 2
    line = _one_error_line(capsys.readouterr().err, "train")
    assert str(checkpoint) in line and "damaged" in line and "CRC-32" in line and "without --resume" in line


def test_history_after_a_crash_mid_epoch_and_resume_matches_an_uninterrupted_run(tmp_path):
    """The interrupted epoch's loss was the mean of the steps after the resume only."""
    from restorekit.training import AddNoise, DegradedPairs, Patches, TrainConfig, fit, seed_everything

    def pairs():
        gen = torch.Generator().manual_seed(0)
        coarse = torch.rand(3, 1, 6, 6, generator=gen)
        images = list(torch.nn.functional.interpolate(coarse, size=(48, 48), mode="bilinear", align_corners=False))
        return DegradedPairs(Patches(images, size=16), AddNoise(sigma_range=(0.05, 0.15)), seed=0)

    def net():
        return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(8, 1, 3, padding=1))

    cfg = dict(epochs=1, batch_size=4, lr=3e-3, progress=False, log_every=2, checkpoint_every=2)
    seed_everything(0)
    straight = fit(net(), pairs(), TrainConfig(**cfg), out=tmp_path / "straight")
    calls = {"n": 0}

    def crashing_loss(out, ref):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # as a kill mid-epoch: the last checkpoint is at step 4 of 6
        return torch.nn.functional.mse_loss(out, ref)

    seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        fit(net(), pairs(), TrainConfig(**cfg), out=tmp_path / "killed", loss_fn=crashing_loss)
    resumed = fit(net(), pairs(), TrainConfig(**cfg), out=tmp_path / "killed", resume=True)
    assert resumed.history["epoch_loss"] == pytest.approx(straight.history["epoch_loss"], rel=1e-5)
    assert resumed.history["loss"] == pytest.approx(straight.history["loss"], rel=1e-5)
    written = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert written["epoch_loss"] == pytest.approx(straight.history["epoch_loss"], rel=1e-5)


# --------------------------------------------------------------------------- bench's figure with one sigma
def test_bench_figure_with_one_sigma_draws_bars_not_dots(tmp_path):
    """One sigma drew dots on an x axis of 0.0096-0.0104; now one bar per method beside the degraded input."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from restorekit.bench import INPUT_LABEL, run_benchmark

    gen = torch.Generator().manual_seed(0)
    images = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4, generator=gen), size=(16, 16), mode="bilinear")
    result = run_benchmark(images, "deblur", methods=["wiener", "wiener:snr=100"], sigmas=[0.01], progress=False)
    fig = result._metric_figure(plt)
    try:
        for ax in fig.axes:
            assert len(ax.patches) == 3  # the degraded input and two methods
            assert [t.get_text() for t in ax.get_yticklabels()] == [INPUT_LABEL, "wiener", "wiener:snr=100"]
            assert ax.get_xlim()[0] == 0
    finally:
        plt.close(fig)
    assert result.figure(tmp_path / "one.png").stat().st_size > 0
