"""Issue 16's clean failures: a full disk, a file-size limit, SIGTERM mid-write, bad names, deep JSON, swapped arguments.

Each case was a traceback or a left-over file before; now it is one line naming the cause and the fix
(CLI exit status 2) and nothing half-written stays behind.
"""

from __future__ import annotations

import json
import os
import re
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
              "from restorekit.cli.main import main; sys.exit(main())")
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
        sys.exit(main(["degrade", {str(source)!r}, "-o", {str(out / "noisy.npy")!r}, "--noise", "0.1"],
                      handle_signals=True))
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


def test_terminate_as_interrupt_raises_in_the_main_thread_and_restores_the_handler(tmp_path):
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with pytest.raises(Terminated):
            with terminate_as_interrupt() as installed:
                assert installed
                with atomic_output(tmp_path / "x.bin") as tmp:
                    tmp.write_bytes(b"partial")
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(5)
        assert list(tmp_path.iterdir()) == []
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the previous handler is back
        assert isinstance(Terminated(), KeyboardInterrupt)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_terminate_as_interrupt_leaves_an_application_handler_alone():
    previous = signal.getsignal(signal.SIGTERM)
    mine = lambda *a: None  # noqa: E731 - an application's handler
    try:
        signal.signal(signal.SIGTERM, mine)
        with terminate_as_interrupt() as installed:
            assert not installed
            assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_main_called_as_a_library_leaves_the_signal_handlers_alone(tmp_path, capsys):
    """main(argv) from a program (pytest here) installed a SIGTERM handler for good; only the CLI takes signals."""
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    seen = []

    def spy(argv):  # what SIGTERM's handler is while the command runs
        seen.append(signal.getsignal(signal.SIGTERM))
        return 0

    import restorekit.cli.list_cmd as list_cmd

    real = list_cmd.run
    list_cmd.run = spy
    try:
        assert main(["list"]) == 0
        assert main(["list"], handle_signals=True) == 0
        assert seen[0] is signal.SIG_DFL  # a library call: untouched
        assert seen[1] is not signal.SIG_DFL  # asked for (as the console script does): installed
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # and restored afterwards
    finally:
        list_cmd.run = real
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_as_the_command_ends_keeps_its_outcome(monkeypatch, capsys):
    """CI, stop 19: torchrun's SIGTERM reached rank 0 after it had reported the lost peer, while the signal block
    was being left; Terminated escaped main() as a traceback. Now the command's own outcome stands, one line."""
    import contextlib

    import restorekit.cli.main as cli_main

    real = cli_main.terminate_as_interrupt

    @contextlib.contextmanager
    def sigterm_on_the_way_out():
        with real() as installed:
            yield installed
            os.kill(os.getpid(), signal.SIGTERM)  # delivered here, inside the block, after the command returned

    monkeypatch.setattr(cli_main, "terminate_as_interrupt", sigterm_on_the_way_out)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert main(["list", "--json"], handle_signals=True) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "terminated" not in capsys.readouterr().err


def test_sigterm_during_interpreter_shutdown_is_not_a_traceback(tmp_path):
    """The handler raised inside threading's shutdown ('Exception ignored in: <module 'threading'>'): now SIGTERM
    after the command has returned, while a thread is still being joined, ends the process as SIGTERM does."""
    script = textwrap.dedent("""
        import os, signal, sys, threading, time
        from restorekit.cli.main import main
        code = main(["list", "--json"], handle_signals=True)
        worker = threading.Thread(target=time.sleep, args=(120,))  # joined at shutdown: SIGTERM lands there
        worker.start()
        print("returned", code, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    try:
        for line in proc.stdout:
            if line.startswith("returned"):
                break
        time.sleep(0.5)  # inside threading._shutdown, joining the worker
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert line.strip() == "returned 0"
    assert proc.returncode == -signal.SIGTERM, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_a_second_sigterm_while_cleaning_up_ends_the_process_without_raising_again(tmp_path):
    script = textwrap.dedent("""
        import os, signal, sys, time
        from restorekit.atomic import Terminated, terminate_as_interrupt
        with terminate_as_interrupt():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except Terminated:
                print("cleaning up", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)  # a second one: the default action, no second raise
                time.sleep(5)
                print("not reached", flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.stdout.split() == ["cleaning", "up"]
    assert proc.returncode == -signal.SIGTERM and "Traceback" not in proc.stderr, proc.stderr


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
                      + "\nfrom restorekit.cli.main import main\nsys.exit(main())\n")  # as the console script runs it
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
    _assert_rank_0_says_another_process_stopped(proc)


def _assert_rank_0_says_another_process_stopped(proc):
    """Rank 0's one line: its collective failed (connection reset), or torchrun stopped it first (SIGTERM).

    Which of the two comes first is a race inside torchrun (it polls its workers every 0.1 s and stops
    the others with SIGTERM): both are one line naming rank 0 and the cause, never a traceback.
    """
    workers = _worker_output(proc.stderr)
    assert "Traceback" not in workers and "pair.cc" not in workers and "Exception ignored" not in workers, workers
    mine = [line for line in workers.splitlines() if line.startswith("restorekit restore: ")]
    assert len(mine) == 1, workers
    assert mine[0].startswith("restorekit restore: error: rank 0: "), workers
    assert "another process of the torchrun group stopped" in mine[0], workers


@pytest.mark.slow
def test_torchrun_rank_0_stopped_by_torchrun_says_why_in_one_line(tmp_path, two_images):
    """Rank 1 dies while rank 0 is still busy: torchrun's SIGTERM reaches rank 0 first (no collective failed)."""
    body = """
        import time
        import restorekit.scaleout as scaleout
        real = scaleout.shard
        def shard(items, ctx):
            if ctx.rank == 1:
                os._exit(3)
            time.sleep(300)  # busy: torchrun stops it
            return real(items, ctx)
        scaleout.shard = shard
    """
    proc = _torchrun_script(tmp_path, body, "restore", two_images, "-o", tmp_path / "out", "--method", "dncnn")
    assert proc.returncode != 0
    _assert_rank_0_says_another_process_stopped(proc)
    assert "rank 0: terminated by torchrun (SIGTERM)" in proc.stderr


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
    # torchrun's report gives the CLI's status for a user error (it was 1). Which rank torchrun sees stop first
    # is a race (rank 0 leaves with 2 on losing rank 1; torchrun may SIGTERM rank 1 first), so: each rank in the
    # report left with 2 or was stopped by torchrun's SIGTERM (-15), and at least one left with 2.
    codes = [int(c) for c in re.findall(r"rank\s*: \d+ \(local_rank: \d+\)\s*\n\s*exitcode\s*: (-?\d+)", proc.stderr)]
    assert codes and set(codes) <= {2, -15} and 2 in codes, proc.stderr[-2000:]


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
    from restorekit.degrade import DegradationSampler
    from restorekit.training import CleanSamples, Patches, TrainConfig, fit, seed_everything

    sampler = DegradationSampler(sigma_range=(0.05, 0.15))

    def pairs():
        gen = torch.Generator().manual_seed(0)
        coarse = torch.rand(3, 1, 6, 6, generator=gen)
        images = list(torch.nn.functional.interpolate(coarse, size=(48, 48), mode="bilinear", align_corners=False))
        return CleanSamples(Patches(images, size=16), seed=0)

    def net():
        return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(8, 1, 3, padding=1))

    cfg = dict(epochs=1, batch_size=4, lr=3e-3, progress=False, log_every=2, checkpoint_every=2)
    seed_everything(0)
    straight = fit(net(), pairs(), TrainConfig(**cfg), out=tmp_path / "straight", sampler=sampler)
    calls = {"n": 0}

    def crashing_loss(out, ref):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # as a kill mid-epoch: the last checkpoint is at step 4 of 6
        return torch.nn.functional.mse_loss(out, ref)

    seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        fit(net(), pairs(), TrainConfig(**cfg), out=tmp_path / "killed", loss_fn=crashing_loss, sampler=sampler)
    resumed = fit(net(), pairs(), TrainConfig(**cfg), out=tmp_path / "killed", resume=True, sampler=sampler)
    assert resumed.history["epoch_loss"] == pytest.approx(straight.history["epoch_loss"], rel=1e-5)
    assert resumed.history["loss"] == pytest.approx(straight.history["loss"], rel=1e-5)
    written = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert written["epoch_loss"] == pytest.approx(straight.history["epoch_loss"], rel=1e-5)


TINY_FIT = """
import torch
from restorekit.degrade import DegradationSampler
from restorekit.training import CleanSamples, Patches, TrainConfig, fit, seed_everything

SAMPLER = DegradationSampler(sigma_range=(0.05, 0.15))


def pairs():
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(3, 1, 6, 6, generator=gen)
    images = list(torch.nn.functional.interpolate(coarse, size=(48, 48), mode="bilinear", align_corners=False))
    return CleanSamples(Patches(images, size=16), seed=0)


def net():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 1, 3, padding=1))


CFG = dict(epochs=1, batch_size=4, lr=3e-3, progress=False, log_every=2, checkpoint_every=2)
"""


def test_history_after_a_sigkill_mid_epoch_and_resume_matches_an_uninterrupted_run(tmp_path):
    """A real SIGKILL (no handler runs) after step 5 of 6, the last checkpoint at step 4; then --resume."""
    (tmp_path / "tiny_fit.py").write_text(TINY_FIT)
    killer = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(tmp_path)!r})
        import torch
        from tiny_fit import CFG, SAMPLER, TrainConfig, fit, net, pairs, seed_everything
        calls = [0]
        def loss(out, ref):
            calls[0] += 1
            if calls[0] == 5:
                os.kill(os.getpid(), signal.SIGKILL)
            return torch.nn.functional.mse_loss(out, ref)
        seed_everything(0)
        fit(net(), pairs(), TrainConfig(**CFG), out={str(tmp_path / "killed")!r}, loss_fn=loss, sampler=SAMPLER)
    """)
    proc = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        import tiny_fit

        tiny_fit.seed_everything(0)
        straight = tiny_fit.fit(tiny_fit.net(), tiny_fit.pairs(), tiny_fit.TrainConfig(**tiny_fit.CFG),
                                out=tmp_path / "straight", sampler=tiny_fit.SAMPLER)
        resumed = tiny_fit.fit(tiny_fit.net(), tiny_fit.pairs(), tiny_fit.TrainConfig(**tiny_fit.CFG),
                               out=tmp_path / "killed", resume=True, sampler=tiny_fit.SAMPLER)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("tiny_fit", None)
    written = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert written["epoch_loss"] == pytest.approx(straight.history["epoch_loss"], rel=1e-5)
    assert resumed.history["loss"] == pytest.approx(straight.history["loss"], rel=1e-5)


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


def test_bench_image_figure_shows_each_method_output_with_its_psnr(tmp_path):
    """Like the demo's figure: the clean image, the degraded input and every method's output, PSNR in titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from restorekit.bench import INPUT_LABEL, run_benchmark

    gen = torch.Generator().manual_seed(0)
    images = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4, generator=gen), size=(16, 16), mode="bilinear")
    result = run_benchmark(images, "deblur", methods=["wiener", "wiener:snr=100"], sigmas=[0.01], progress=False,
                           keep=1)
    fig = result._image_grid(plt)
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert [t.split("\n")[0] for t in titles] == ["clean", f"{INPUT_LABEL}, sigma 0.01", "wiener",
                                                       "wiener:snr=100"]
        scores = [float(t.split("\n")[1].split()[0]) for t in titles[1:]]
        assert scores[1] == pytest.approx(result.records[0]["psnr"], abs=0.01)  # the table's own per-image value
        assert all(len(ax.images) == 1 for ax in fig.axes)
    finally:
        plt.close(fig)


def test_bench_cli_writes_the_image_figure_beside_the_metric_figure(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        np.save(data / f"{i}.npy", rng.random((16, 16, 3)).astype(np.float32))
    figure = tmp_path / "out" / "bench.png"
    figure.parent.mkdir()
    assert main(["bench", "--data", str(data), "--task", "deblur", "--methods", "wiener", "--sigmas", "0.01",
                 "--figure", str(figure), "--no-progress"]) == 0
    out = capsys.readouterr().out
    grid = tmp_path / "out" / "bench-images.png"
    assert f"wrote {grid}" in out and grid.stat().st_size > 0 and figure.stat().st_size > 0
    assert sorted(p.name for p in figure.parent.iterdir()) == ["bench-images.png", "bench.png"]  # no temporaries


def test_bench_refuses_an_output_in_a_missing_folder_before_measuring(tmp_path, capsys):
    """It used to measure everything, print the table, then fail on the figure's folder."""
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "0.npy", np.full((16, 16, 3), 0.5, np.float32))
    assert main(["bench", "--data", str(data), "--task", "deblur", "--methods", "wiener", "--sigmas", "0.01",
                 "--figure", str(tmp_path / "missing" / "fig.png"), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing measured
    line = _one_error_line(captured.err, "bench")
    assert "missing does not exist; create it first" in line
