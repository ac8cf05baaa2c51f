"""What machine a run trains on, and its precision: the CPU's name, AMX-BF16, bfloat16 autocast.

Training is the project's scarcest resource, so every trainer records the CPU
it ran on and trains in bfloat16 autocast where the CPU computes in bfloat16
natively and in float32 elsewhere: AMX-BF16 (Intel Xeon: about 6x faster for
64-channel conv nets) or AVX512-BF16 (AMD EPYC Zen 4: 2.2x faster for a
DRUNet 16-32-64-128 training step on one thread, ``benchmarks/RESULTS.md``).
These helpers are that rule, shared by the trainers (``--bf16 auto``).

Importing this module does not import torch.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` (Linux; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_amx_bf16() -> bool:
    """Whether this CPU lists ``amx_bf16`` in ``/proc/cpuinfo`` (Linux; False elsewhere)."""
    return "amx_bf16" in _cpu_flags()


def cpu_has_avx512_bf16() -> bool:
    """Whether this CPU lists ``avx512_bf16`` in ``/proc/cpuinfo`` (AMD Zen 4 and later, Intel Cooper Lake and later)."""
    return "avx512_bf16" in _cpu_flags()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 products in hardware (AMX-BF16 or AVX512-BF16).

    Elsewhere oneDNN emulates bfloat16, and autocast is slower than float32.
    """
    return cpu_has_amx_bf16() or cpu_has_avx512_bf16()


def use_bf16(choice: str, device: str) -> bool:
    """The ``--bf16`` rule: ``on``; ``off``; ``auto`` = on the CPU, where it computes bfloat16 natively."""
    return choice == "on" or (choice == "auto" and device == "cpu" and cpu_has_native_bf16())


def bf16_autocast(net: Any) -> Any:
    """``net`` wrapped to run under CPU bfloat16 autocast; its state dict stays the network's.

    Examples
    --------
    >>> import torch
    >>> wrapped = bf16_autocast(torch.nn.Linear(2, 2))
    >>> sorted(wrapped.state_dict())
    ['bias', 'weight']
    >>> wrapped(torch.ones(1, 2)).dtype
    torch.float32
    """
    import torch

    class Autocast(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.inner(x).float()

        def state_dict(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner.state_dict(*args, **kwargs)

        def load_state_dict(self, state: Any, *args: Any, **kwargs: Any) -> Any:
            return self.inner.load_state_dict(state, *args, **kwargs)

    return Autocast(net)


__all__ = ["bf16_autocast", "cpu_has_amx_bf16", "cpu_has_avx512_bf16", "cpu_has_native_bf16", "cpu_name", "use_bf16"]
