"""Blind against known-kernel deblurring, scored by Levin's error ratio.

:func:`run_blind_benchmark` blurs each clean image by each kernel of a set
(circular boundary, as ``bench --task deblur``), adds Gaussian noise drawn
from ``seed + image index``, and restores it twice with the same method:

* **blind**: the kernel estimated from the blurred image
  (:func:`restorekit.estimate_kernel`, ``size`` x ``size``) and the noise
  level estimated too (:func:`restorekit.estimate.kernel.estimate_sigma`),
  nothing else known;
* **known**: the true kernel and the true noise level.

The score of a case is Levin et al.'s error ratio (Levin, Weiss, Durand,
Freeman, "Understanding and evaluating blind deconvolution algorithms", CVPR
2009): the blind result's sum of squared errors over the known-kernel
result's, each error taken as in their ``comp_upto_shift``: the smallest
over shifts of the result of up to 5 pixels in quarter-pixel steps
(bilinear), on the image less a 15-pixel border (a blind kernel is only
defined up to a shift). Ratios near 1 mean the estimate is as good as the
truth; Levin et al. count a ratio up to 3 as visually plausible. The report
gives each case's ratio, the share of cases with ratio <= 3, the mean ratio
and seconds per image (estimation plus restoration, blind path), and
:meth:`BlindResult.figure` draws the estimated kernels beside the true ones.

Results are written after every case (``checkpoint``), and a run given the
same checkpoint skips the cases it holds, so a long run can be stopped and
resumed.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import InputError

#: Levin's comp_upto_shift: largest shift (pixels), step (pixels) and the border left out.
MAX_SHIFT = 5
SHIFT_STEP = 0.25
BORDER = 15
#: A case counts as a success at or below this ratio (Levin et al.).
GOOD_RATIO = 3.0


def sse_upto_shift(estimate: Any, truth: Any, max_shift: int = MAX_SHIFT, border: int = BORDER) -> float:
    """Sum of squared errors of ``estimate`` against ``truth``, minimised over small shifts (Levin et al. 2009).

    The estimate is shifted by every whole-pixel ``(dy, dx)`` in
    ``[-max_shift, max_shift]``, then by quarter pixels within 0.75 of the best
    one (bilinear interpolation; Levin's code searches the same quarter-pixel
    grid everywhere), and compared with ``truth`` less a ``border`` on each
    side. Both are ``(..., H, W)`` arrays or tensors of one shape.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((64, 64))
    >>> sse_upto_shift(np.roll(x, 2, axis=1), x) < 1e-20
    True
    """
    a = _array(estimate)
    b = _array(truth)
    if a.shape != b.shape:
        raise InputError(f"sse_upto_shift needs two arrays of one shape, got {a.shape} and {b.shape}")
    h, w = b.shape[-2:]
    if border < max_shift + 1 or min(h, w) <= 2 * border:
        raise InputError(f"images of {h}x{w} are too small to compare up to a shift of {max_shift} with a "
                         f"border of {border}; use images larger than {2 * border + 1} pixels a side")
    inner_h, inner_w = h - 2 * border, w - 2 * border
    target = b[..., border:border + inner_h, border:border + inner_w]

    def window(oy: int, ox: int) -> np.ndarray:
        return a[..., border + oy:border + oy + inner_h, border + ox:border + ox + inner_w]

    def error(dy: float, dx: float) -> float:
        iy, ix = math.floor(dy), math.floor(dx)
        fy, fx = dy - iy, dx - ix
        shifted = (1 - fy) * (1 - fx) * window(iy, ix)
        if fx:
            shifted = shifted + (1 - fy) * fx * window(iy, ix + 1)
        if fy:
            shifted = shifted + fy * (1 - fx) * window(iy + 1, ix)
        if fx and fy:
            shifted = shifted + fy * fx * window(iy + 1, ix + 1)
        return float(np.square(shifted - target).sum())

    best = min((error(dy, dx), dy, dx) for dy in range(-max_shift, max_shift + 1)
               for dx in range(-max_shift, max_shift + 1))
    _, cy, cx = best
    steps = np.arange(-3, 4) * SHIFT_STEP
    for dy in cy + steps:
        for dx in cx + steps:
            if abs(dy) <= max_shift and abs(dx) <= max_shift and (dy, dx) != (cy, cx):
                best = min(best, (error(float(dy), float(dx)), dy, dx))
    return best[0]


def error_ratio(blind: Any, known: Any, truth: Any) -> float:
    """Levin's error ratio: ``sse_upto_shift(blind, truth) / sse_upto_shift(known, truth)``."""
    return sse_upto_shift(blind, truth) / max(sse_upto_shift(known, truth), 1e-30)


def _array(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):
        t = t.detach().to("cpu").double().numpy()
    return np.asarray(t, dtype=np.float64)


# --------------------------------------------------------------------------- results
@dataclass
class BlindCase:
    """One image blurred by one kernel: the two restorations' scores."""

    image: str
    kernel: str
    ratio: float
    psnr_blind: float
    psnr_known: float
    sigma: float
    sigma_estimated: float
    seconds_estimate: float
    seconds_blind: float
    cpu_seconds_blind: float = float("nan")
    estimated_kernel: list = field(repr=False, default_factory=list)


@dataclass
class BlindResult:
    """Every case of a blind benchmark, with the summary Levin et al. report."""

    method: str
    size: int
    cases: list[BlindCase]
    settings: dict

    @property
    def ratios(self) -> np.ndarray:
        return np.array([c.ratio for c in self.cases])

    @property
    def share_good(self) -> float:
        """Share of the cases with error ratio <= :data:`GOOD_RATIO`."""
        return float((self.ratios <= GOOD_RATIO).mean()) if self.cases else float("nan")

    @property
    def mean_ratio(self) -> float:
        return float(self.ratios.mean()) if self.cases else float("nan")

    def kernels(self) -> list[str]:
        return list(dict.fromkeys(c.kernel for c in self.cases))

    def to_markdown(self) -> str:
        """Per-kernel table (mean ratio, worst, share <= 3, PSNR blind/known) and the totals."""
        lines = [f"Blind deblurring with {self.method}: kernel ({self.size}x{self.size}) and noise level "
                 "estimated, against the true kernel and sigma (Levin's error ratio, up to shift)", "",
                 "| kernel | cases | mean ratio | worst ratio | ratio <= 3 | PSNR blind (dB)* | PSNR known (dB)* |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for kernel in self.kernels():
            cs = [c for c in self.cases if c.kernel == kernel]
            r = np.array([c.ratio for c in cs])
            lines.append(f"| {kernel} | {len(cs)} | {r.mean():.2f} | {r.max():.2f} | {100 * (r <= GOOD_RATIO).mean():.0f}% "
                         f"| {np.mean([c.psnr_blind for c in cs]):.2f} | {np.mean([c.psnr_known for c in cs]):.2f} |")
        if self.cases:
            r = self.ratios
            lines.append(f"| **all** | {len(r)} | **{r.mean():.2f}** | {r.max():.2f} | **{100 * self.share_good:.1f}%** "
                         f"| {np.mean([c.psnr_blind for c in self.cases]):.2f} "
                         f"| {np.mean([c.psnr_known for c in self.cases]):.2f} |")
            cpu = np.array([c.cpu_seconds_blind for c in self.cases], dtype=float)
            cpu = cpu[np.isfinite(cpu)]
            lines += ["", "*PSNR up to shift, on the image less a 15-pixel border (as the error ratio).", "",
                      f"Seconds per image, blind path (estimation + restoration): mean "
                      f"{np.mean([c.seconds_blind for c in self.cases]):.1f}, max "
                      f"{np.max([c.seconds_blind for c in self.cases]):.1f} (estimation alone: mean "
                      f"{np.mean([c.seconds_estimate for c in self.cases]):.1f})"
                      + (f"; CPU seconds (process time, what one unshared thread would take): mean {cpu.mean():.1f}, "
                         f"max {cpu.max():.1f}" if cpu.size else "; CPU seconds not recorded")]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "BlindResult":
        """The result stored by :meth:`write_json` (or a run's ``checkpoint``), e.g. to redraw its table and figure."""
        try:
            stored = json.loads(Path(path).read_text())
            cases = [BlindCase(**c) for c in stored["cases"]]
            return cls(method=stored["method"], size=int(stored["size"]), cases=cases, settings=stored["settings"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: not a blind benchmark result ({exc}); write one with run_blind_benchmark") from None

    @classmethod
    def merge(cls, parts: Sequence["BlindResult"]) -> "BlindResult":
        """One result from the parts of a split run (``run_blind_benchmark(part=(rank, world))``), in rank order.

        Part ``r`` holds cases ``r, r + world, ...``, so the cases are
        interleaved back into the order of a single run. The parts must share
        method, size and settings (the machine aside).
        """
        parts = list(parts)
        if not parts:
            raise InputError("nothing to merge: give the parts of a split blind benchmark")
        first = parts[0]

        def run_of(r: "BlindResult") -> tuple:
            return r.method, r.size, {k: v for k, v in r.settings.items() if k != "machine"}

        if any(run_of(r) != run_of(first) for r in parts):
            raise InputError("the parts differ in method, size or settings; merge the parts of one run only")
        cases = []
        for i in range(sum(len(r.cases) for r in parts)):
            part = parts[i % len(parts)]
            if i // len(parts) >= len(part.cases):
                raise InputError(f"part {i % len(parts)} stops at {len(part.cases)} cases: finish it (rerun with its "
                                 "checkpoint) before merging")
            cases.append(part.cases[i // len(parts)])
        return cls(method=first.method, size=first.size, cases=cases, settings=dict(first.settings))

    def to_dict(self) -> dict:
        return {"method": self.method, "size": self.size, "settings": self.settings,
                "summary": {"cases": len(self.cases), "mean_ratio": self.mean_ratio, "share_good": self.share_good,
                            "good_ratio": GOOD_RATIO},
                "cases": [asdict(c) for c in self.cases]}

    def write_json(self, path: str | os.PathLike) -> Path:
        from .atomic import write_text_atomic

        return write_text_atomic(path, json.dumps(self.to_dict(), separators=(",", ":")) + "\n")  # compact: the kernels are most of it

    def write_markdown(self, path: str | os.PathLike) -> Path:
        from .atomic import write_text_atomic

        return write_text_atomic(path, self.to_markdown())

    def figure(self, path: str | os.PathLike, images: int = 4) -> Path:
        """A grid of kernels: the true one on top, below it the estimates from the first ``images`` images.

        Each estimate is titled with its error ratio. Written atomically.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .atomic import atomic_output
        from .kernels import load_kernel

        kernels = self.kernels()
        names = list(dict.fromkeys(c.image for c in self.cases))[:images]
        rows = 1 + len(names)
        fig, axes = plt.subplots(rows, len(kernels), figsize=(max(6.0, 1.5 * len(kernels) + 0.5), 1.6 * rows + 0.8),
                                 squeeze=False)
        for j, kernel in enumerate(kernels):
            true = load_kernel(kernel).numpy()
            pad_h, pad_w = max(0, self.size - true.shape[0]), max(0, self.size - true.shape[1])
            true = np.pad(true, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)))
            axes[0, j].imshow(true, cmap="gray", interpolation="nearest")
            axes[0, j].set_title(f"{kernel}\ntrue", fontsize=8)
            for i, name in enumerate(names, start=1):
                case = next((c for c in self.cases if c.kernel == kernel and c.image == name), None)
                if case is not None and case.estimated_kernel:
                    axes[i, j].imshow(np.array(case.estimated_kernel), cmap="gray", interpolation="nearest")
                    axes[i, j].set_title(f"{name}: {case.ratio:.2f}", fontsize=7)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"estimated ({self.size}x{self.size}) against true kernels\n"
                     f"titles: image and error ratio with {self.method}", fontsize=9)
        fig.tight_layout()
        suffix = Path(path).suffix.lstrip(".") or "png"
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=suffix, dpi=110)
        plt.close(fig)
        return Path(path)


# --------------------------------------------------------------------------- the run
def _psnr_upto_shift(sse: float, ref: np.ndarray) -> float:
    """PSNR (peak 1) from an :func:`sse_upto_shift` error over ``ref``'s compared region."""
    h, w = ref.shape[-2:]
    count = ref[..., BORDER:h - BORDER, BORDER:w - BORDER].size
    return 10 * math.log10(count / sse) if sse > 0 else float("inf")


def run_blind_benchmark(
    images: Any,
    kernels: str = "levin:all",
    method: str = "pnp",
    *,
    sigma: float = 0.01,
    size: int = 31,
    seed: int = 0,
    limit: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
    report: Callable[[BlindCase], None] | None = None,
    refine: int | None = None,
    part: tuple[int, int] = (0, 1),
) -> BlindResult:
    """Score blind deblurring against known-kernel deblurring with one method (see the module docstring).

    Parameters
    ----------
    images : path, list of paths or tensor
        Clean images (a folder, files or an ``N, C, H, W`` tensor), as for
        :func:`restorekit.bench.run_benchmark`.
    kernels : str
        A kernel set (``"levin:all"`` or ``"levin:1,gauss:1.6"``) or one spec.
    method : str
        The deblurrer used for both restorations, ``NAME[:KEY=VALUE...]``
        (``pnp``, ``wiener:snr=auto``).
    sigma : float
        The true noise level of the degradation ([0, 1] scale).
    size : int
        The estimated kernel's size (odd; at least the largest true kernel).
    seed, limit
        Image ``i`` gets its noise from ``seed + i``; only the first ``limit`` images.
    checkpoint : path, optional
        A JSON file written (atomically) after every case; cases it already
        holds, for the same method, size, sigma, seed and estimator version
        (:data:`restorekit.estimate.kernel.ESTIMATOR_VERSION`), are not run again.
    progress : bool
        A tqdm bar over the cases.
    report : callable, optional
        Called with each finished :class:`BlindCase` (e.g. to print a line).
    refine : int, optional
        Rounds of the kernel's refinement with the method itself
        (:func:`restorekit.estimate.kernel.blind_degradation`'s ``deblurrer``;
        default :data:`~restorekit.estimate.kernel.REFINE_ROUNDS`, as
        ``restore --kernel auto``); 0 scores the coarse-to-fine estimate alone.
        The refinement's seconds count in the blind path's.
    part : (rank, world)
        Run only the cases ``rank``, ``rank + world``, ... of the image-by-kernel
        list (several processes, one checkpoint each; :meth:`BlindResult.merge`
        joins them). ``(0, 1)``: all.

    Returns
    -------
    BlindResult

    Examples
    --------
    >>> from restorekit.bench_blind import run_blind_benchmark
    >>> r = run_blind_benchmark("CBSD68/", "levin:all", "pnp", limit=2)  # doctest: +SKIP
    >>> print(r.to_markdown())  # doctest: +SKIP
    """
    import torch

    from . import create
    from .bench import _load, collect_images, machine_description, parse_method
    from .checks import check_seed, check_sigma
    from .degrade import Blur, Compose, Noise
    from .estimate.kernel import (ESTIMATOR_VERSION, KERNEL_STARTS, REFINE_EARLY_ROUNDS, REFINE_ROUNDS, REFINE_SMOOTH,
                                   REFINE_SMOOTH_EARLY, blind_degradation, check_kernel_size, check_rounds,
                                   refinement_deblurrer)
    from .kernels import load_kernel_set

    rank, world = part
    if not (isinstance(world, int) and isinstance(rank, int) and world >= 1 and 0 <= rank < world):
        raise InputError(f"part must be (rank, world) with 0 <= rank < world, got {part!r}")
    refine = check_rounds(REFINE_ROUNDS if refine is None else refine, "refine")
    sigma = check_sigma(sigma, "sigma")
    seed = check_seed(seed)
    name, params = parse_method(method)
    restorer = create(name, **params)
    kernel_set = load_kernel_set(kernels)
    largest = max(max(k.shape) for _, k in kernel_set)
    if size < largest:
        raise InputError(f"--size {size} is smaller than the largest true kernel ({largest}); use at least {largest}")
    sources = collect_images(images)
    if limit is not None:
        sources = sources[:int(limit)]
    settings = {"kernels": str(kernels), "sigma": sigma, "seed": seed, "size": size, "boundary": "circular",
                "estimator": ESTIMATOR_VERSION, "refine": refine, "starts": list(KERNEL_STARTS),
                "refine_smooth": {"first_rounds": REFINE_EARLY_ROUNDS, "early": REFINE_SMOOTH_EARLY,
                                  "then": REFINE_SMOOTH},
                "refine_precision": getattr(refinement_deblurrer(restorer), "config", {}).get("precision", "as given"),
                "machine": machine_description(), "torch_threads": torch.get_num_threads()}
    done: dict[tuple[str, str], BlindCase] = {}
    if checkpoint is not None and Path(checkpoint).is_file():
        try:
            old = json.loads(Path(checkpoint).read_text())
        except (OSError, ValueError):
            old = {}
        same = old.get("method") == method and old.get("size") == size and all(
            old.get("settings", {}).get(k) == settings[k] for k in ("sigma", "seed", "estimator", "refine"))
        if same:
            done = {(c["image"], c["kernel"]): BlindCase(**c) for c in old.get("cases", [])}
    result = BlindResult(method=method, size=size, cases=[], settings=settings)
    todo = [(i, label, source, k) for i, (label, source) in enumerate(sources) for k in kernel_set][rank::world]
    steps = todo
    if progress:
        import sys

        from tqdm.auto import tqdm

        steps = tqdm(todo, desc=f"blind {method}", unit="case", file=sys.stderr)
    with torch.no_grad():
        for index, label, source, (kernel_label, kernel) in steps:
            key = (label, kernel_label)
            if key in done:
                result.cases.append(done[key])
                continue
            x = _load(source)
            x = x[None] if x.ndim == 3 else x
            check_kernel_size(size, tuple(x.shape[-2:]))
            truth = Compose(Blur(kernel.to(x.dtype)), Noise(sigma))
            y = truth.apply(x, seed=seed + index)
            start, cpu_start = time.perf_counter(), time.process_time()
            degradation, found = blind_degradation(y, size, boundary="circular", deblurrer=restorer, rounds=refine)
            estimated = time.perf_counter() - start
            blind = restorer(y, degradation)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
            known = restorer(y, truth)
            xs = x.double().numpy()
            sse_blind, sse_known = sse_upto_shift(blind, xs), sse_upto_shift(known, xs)
            case = BlindCase(
                image=label, kernel=kernel_label, ratio=sse_blind / max(sse_known, 1e-30),
                psnr_blind=_psnr_upto_shift(sse_blind, xs), psnr_known=_psnr_upto_shift(sse_known, xs),
                sigma=sigma, sigma_estimated=found["sigma_estimate"], seconds_estimate=estimated, seconds_blind=seconds,
                cpu_seconds_blind=cpu_seconds,
                estimated_kernel=np.round(found["kernel"].numpy(), 6).tolist(),
            )
            result.cases.append(case)
            if report is not None:
                report(case)
            if checkpoint is not None:
                result.write_json(checkpoint)
    return result


__all__ = ["BlindCase", "BlindResult", "GOOD_RATIO", "error_ratio", "run_blind_benchmark", "sse_upto_shift"]
