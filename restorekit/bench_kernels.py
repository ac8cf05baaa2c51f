"""Benchmarks over a set of kernels: every kernel on its own, and the mean over the set.

``restorekit bench --kernel levin:all`` (or a comma list of specs such as
``levin:1,levin:3,gauss:1.6``) measures the whole benchmark once per kernel,
with the same images and noise seeds for each, and reports each kernel and
the mean over the kernels (:class:`KernelSetResult`). A method enters the
mean only when it was measured with every kernel; one that failed or was
skipped for any kernel is listed with the kernel and the reason.

Examples
--------
>>> import torch
>>> from restorekit.bench_kernels import run_kernel_set
>>> x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
>>> result = run_kernel_set(x, "deblur", "gauss:1.0,box:3", ["wiener"], sigmas=[0.01], progress=False)
>>> result.kernels, [round(r.psnr, 1) > 0 for r in result.mean.rows]
(['gauss:1.0', 'box:3'], [True])
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .bench import BenchResult, BenchRow, ReportFiles, Skipped, run_benchmark
from .errors import ParameterError


@dataclass
class KernelSetResult(ReportFiles):
    """One :class:`~restorekit.bench.BenchResult` per kernel, and their mean.

    Attributes
    ----------
    kernels : list of str
        The kernel specs, in order.
    results : list of BenchResult
        What each kernel's run measured, in the same order.
    mean : BenchResult
        Rows averaged over the kernels (methods measured with every kernel
        only), the baseline likewise; ``records`` holds every image of every
        kernel, each with its ``"kernel"``; ``skipped`` names the kernel.
    """

    kernels: list[str]
    results: list[BenchResult]
    mean: BenchResult

    @property
    def rows(self) -> list[BenchRow]:
        """The mean rows (``self.mean.rows``)."""
        return self.mean.rows

    @property
    def settings(self) -> dict:
        """The settings of the set (``self.mean.settings``)."""
        return self.mean.settings

    def to_markdown(self) -> str:
        """PSNR per kernel and the mean PSNR, SSIM and seconds per image, one line per sigma and method."""
        s = self.mean.settings
        head = " | ".join(self.kernels)
        lines = [
            f"Task {s['task']}, {s['images']} image(s) from {s['source']}, {s['degradation']}, "
            f"noise seed {s['seed']} + image index; sigma on the [0, 1] scale. PSNR (dB) per kernel, "
            f"then the mean over the {len(self.kernels)} kernels.",
            "",
            f"| sigma | method | {head} | mean PSNR | mean SSIM | s / image |",
            "| ---: | --- | " + "---: | " * len(self.kernels) + "---: | ---: | ---: |",
        ]
        for base in self.mean.baseline:
            per = [_psnr_of(r.baseline, base.method, base.sigma) for r in self.results]
            lines.append(f"| {base.sigma:g} | {base.method} | {' | '.join(per)} | {base.psnr:.2f} | {base.ssim:.4f} | |")
            for method in _methods(self.results):
                per = [_psnr_of(r.rows, method, base.sigma) for r in self.results]
                row = _find(self.mean.rows, method, base.sigma)
                tail = f"{row.psnr:.2f} | {row.ssim:.4f} | {row.seconds:.3f}" if row else "not on every kernel | |"
                lines.append(f"| {base.sigma:g} | {method} | {' | '.join(per)} | {tail} |")
        for k in (k for k in self.mean.skipped if k.failed):
            reason = (k.reason.splitlines() or [""])[0].replace("|", "/")
            lines.append(f"| | {k.method} | failed: {reason} |" + " |" * (len(self.kernels) + 2))
        not_run = [k for k in self.mean.skipped if not k.failed]
        if not_run:
            lines += ["", "Not run: " + "; ".join(f"{k.method} ({k.reason})" for k in not_run) + "."]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        mean = self.mean.to_dict()
        return {
            "settings": mean["settings"],
            "kernels": list(self.kernels),
            "mean": {"rows": mean["rows"], "baseline": mean["baseline"]},
            "per_kernel": {
                label: {"rows": [asdict(r) for r in res.rows], "baseline": [asdict(r) for r in res.baseline],
                        "skipped": [asdict(k) for k in res.skipped]}
                for label, res in zip(self.kernels, self.results)
            },
            "skipped": mean["skipped"],
            "records": mean["records"],
        }

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def figure(self, path: str | os.PathLike) -> Path:
        """The mean over the kernels plotted against sigma (:meth:`BenchResult.figure`)."""
        return self.mean.figure(path)


def _methods(results: Sequence[BenchResult]) -> list[str]:
    return list(dict.fromkeys(m for r in results for m in r.methods()))


def _find(rows: Sequence[BenchRow], method: str, sigma: float) -> BenchRow | None:
    return next((r for r in rows if r.method == method and math.isclose(r.sigma, sigma)), None)


def _psnr_of(rows: Sequence[BenchRow], method: str, sigma: float) -> str:
    row = _find(rows, method, sigma)
    return f"{row.psnr:.2f}" if row else "-"


def _mean_rows(per_kernel: Sequence[Sequence[BenchRow]], method: str, sigma: float) -> BenchRow | None:
    found = [_find(rows, method, sigma) for rows in per_kernel]
    if any(r is None for r in found):
        return None

    def mean(key: str) -> float:
        return float(sum(getattr(r, key) for r in found) / len(found))

    return BenchRow(method, sigma, mean("psnr"), mean("ssim"), mean("seconds"), min(r.images for r in found))


def combine_kernel_results(kernels: Sequence[str], results: Sequence[BenchResult], spec: str = "") -> KernelSetResult:
    """Put per-kernel results (same task, images, sigmas and methods) together with their mean.

    Parameters
    ----------
    kernels : sequence of str
        The kernel label of each result.
    results : sequence of BenchResult
        One per kernel, in the same order.
    spec : str
        The set as the user wrote it (``"levin:all"``), for the settings.
    """
    if not results or len(kernels) != len(results):
        raise ParameterError(f"combine_kernel_results needs one result per kernel, got {len(results)} "
                             f"for {len(kernels)} kernels")
    first = results[0]
    sigmas = [b.sigma for b in first.baseline]
    methods = _methods(results)
    rows = [row for sigma in sigmas for m in methods
            if (row := _mean_rows([r.rows for r in results], m, sigma)) is not None]
    baseline = [row for sigma in sigmas
                if (row := _mean_rows([r.baseline for r in results], first.baseline[0].method, sigma)) is not None]
    records = [dict(rec, kernel=label) for label, res in zip(kernels, results) for rec in res.records]
    skipped = [replace(k, reason=f"kernel {label}: {k.reason}") for label, res in zip(kernels, results)
               for k in res.skipped]
    settings = dict(first.settings)
    settings["kernel"] = spec or ",".join(kernels)
    settings["kernels"] = list(kernels)
    settings["degradation"] = first.settings["degradation"].replace(
        str(first.settings.get("kernel")), f"each of {len(kernels)} kernels ({settings['kernel']})", 1)
    mean = BenchResult(rows=rows, baseline=baseline, records=records, skipped=skipped, settings=settings)
    return KernelSetResult(kernels=list(kernels), results=list(results), mean=mean)


def run_kernel_set(
    images: Any,
    task: str,
    kernels: str,
    methods: Sequence[str] | None = None,
    *,
    run: Callable[..., BenchResult] = run_benchmark,
    **options: Any,
) -> KernelSetResult:
    """:func:`~restorekit.bench.run_benchmark` once per kernel of ``kernels``, then the mean.

    Parameters
    ----------
    images, task, methods
        As for :func:`~restorekit.bench.run_benchmark` (``task`` deblur or
        superresolve).
    kernels : str
        A kernel set (``"levin:all"``, a comma list of specs) or one spec.
    run : callable
        What measures one kernel: ``run(images, task, methods=..., kernel=spec, **options)``
        (``run_benchmark`` by default; the CLI passes one that shards the
        images over torchrun processes).
    **options
        Passed to ``run`` (sigmas, seed, limit, progress, scale, device ...).
    """
    from .kernels import load_kernel_set

    if not isinstance(kernels, (str, os.PathLike)):
        raise ParameterError(f"run_kernel_set takes kernel specs as a string, got {type(kernels).__name__}; "
                             "pass one array to run_benchmark(kernel=...) instead")
    labels = [label for label, _ in load_kernel_set(kernels)]  # every spec checked before anything runs
    results = [run(images, task, methods=methods, kernel=label, **options) for label in labels]
    return combine_kernel_results(labels, results, spec=str(kernels))


__all__ = ["KernelSetResult", "combine_kernel_results", "run_kernel_set"]
