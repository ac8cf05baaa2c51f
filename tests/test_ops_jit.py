"""restorekit.nn.extension.load_jit: csrc/ compiled just in time with ninja (development path).

Compiling takes about a minute, so this runs only with RESTOREKIT_TEST_JIT=1.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("RESTOREKIT_TEST_JIT") != "1", reason="set RESTOREKIT_TEST_JIT=1 (compiles csrc/)"),
]

SCRIPT = """
import restorekit.nn.extension as e
def missing():
    raise ImportError("pretend restorekit._C is not built")
e._import_compiled = missing
m = e.load_jit(with_cuda=False)
import torch
x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
w = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
assert torch.autograd.gradcheck(torch.ops.restorekit.linear_relu, (x, w, None))
assert e.load() is m and not m.cuda_built
print("ok", m.__name__)
"""


def test_load_jit_builds_and_registers_the_ops(tmp_path):
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(tmp_path), CUDA_HOME=os.environ.get("CUDA_HOME", "/usr/local/cuda"))
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["ok", "restorekit_C_jit"]
