"""Issue 16: long pnp runs show their progress on the command line by default, even when stderr is a log.

Before, pnp's bar appeared only on a terminal ('auto') unless forced with --param progress=true. Now
``restorekit restore`` asks every method with a ``progress`` parameter for it; the bar goes to stderr once a
run takes longer than ``PROGRESS_DELAY_S`` (2 s; set to 0 here so that a small test image shows it), and
``--no-progress`` turns it off.
"""

from __future__ import annotations

import numpy as np
import pytest

from restorekit.cli.main import main


@pytest.fixture
def blurred(tmp_path):
    path = tmp_path / "in.npy"
    rng = np.random.default_rng(0)
    np.save(path, rng.random((24, 24)).astype(np.float32))
    return path


@pytest.fixture
def no_delay(monkeypatch):
    import restorekit_plugins.pnp.restorer as pnp_restorer

    monkeypatch.setattr(pnp_restorer, "PROGRESS_DELAY_S", 0.0)


ARGS = ["--method", "pnp", "--kernel", "gaussian:1.0:5", "--sigma", "0.02", "--param", "iterations=3"]


def _restore(blurred, tmp_path, *extra):
    return main(["restore", str(blurred), "-o", str(tmp_path / "out.npy"), *ARGS, *extra])


def test_pnp_shows_its_iterations_on_a_non_terminal_stderr_by_default(blurred, tmp_path, capsys, no_delay):
    assert _restore(blurred, tmp_path) == 0
    err = capsys.readouterr().err
    assert "pnp deblur" in err and "/3 [" in err, err


def test_no_progress_turns_it_off(blurred, tmp_path, capsys, no_delay):
    assert _restore(blurred, tmp_path, "--no-progress") == 0
    assert "pnp deblur" not in capsys.readouterr().err


def test_the_users_own_progress_parameter_wins(blurred, tmp_path, capsys, no_delay):
    assert _restore(blurred, tmp_path, "--param", "progress=false") == 0
    assert "pnp deblur" not in capsys.readouterr().err
