"""``restorekit gradcheck`` and the extension part of ``restorekit doctor``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from restorekit.cli.main import main
from restorekit.nn import extension

needs_ext = pytest.mark.skipif(not extension.available(), reason="restorekit._C is not built")


@needs_ext
def test_gradcheck_command_passes(capsys):
    assert main(["gradcheck", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "devices: cpu" in out


@needs_ext
def test_gradcheck_quick_verbose_lists_checks(capsys):
    assert main(["gradcheck", "--quick", "-v", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "ok   restorekit::linear_relu" in out and "FullyConnectedNet dW1,db1" in out and "opcheck" not in out
    assert "1x1 x and weight, strides (6, 2)" in out


@needs_ext
def test_gradcheck_plugin_runs_restorekit_ops_through_the_hook(capsys):
    assert main(["gradcheck", "--plugin", "mlp_inpaint", "--quick", "--device", "cpu"]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_gradcheck_without_extension_says_what_to_do(monkeypatch, capsys):
    def missing():
        raise ImportError("No module named 'restorekit._C'")

    monkeypatch.setattr(extension, "_import_compiled", missing)
    monkeypatch.setattr(extension, "_module", None)
    monkeypatch.setattr(extension, "_tried", False)
    assert main(["gradcheck"]) == 2
    err = capsys.readouterr().err
    assert "restorekit gradcheck: error:" in err and "pip install --no-build-isolation -e ." in err


def test_gradcheck_cuda_without_gpu_is_a_clear_error(capsys):
    import torch

    if torch.cuda.is_available() or not extension.available():
        pytest.skip("needs the extension and no GPU")
    assert main(["gradcheck", "--device", "cuda"]) == 2
    assert "no GPU is visible" in capsys.readouterr().err


def test_command_module_imports_nothing_heavy():
    code = "import sys, restorekit.cli.gradcheck_cmd as m; print('torch' in sys.modules, bool(m.HELP))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


@needs_ext
def test_doctor_reports_the_extension(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "built: True" in out and "cuda kernels:" in out
