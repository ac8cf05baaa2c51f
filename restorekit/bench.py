"""The benchmark harness: every method on the same degraded images, measured alike.

:func:`run_benchmark` takes clean images (a folder, files or tensors), a task
and a list of methods, and for each image and noise level:

1. degrades the image once, the noise drawn from ``seed + image index`` (so
   a run is repeatable and every method sees the same input, and one image
   gets the same noise pattern, scaled, at every sigma);
2. gives each method a copy of that input and the degradation, timing the
   call (``time.perf_counter``; CUDA is synchronised first). Each method is
   built once and run once, untimed, on a small crop before its first timed
   image, so one-off costs (imports, allocations) are not counted;
3. measures PSNR and SSIM (:mod:`restorekit.metrics`, ``data_range=1``) of
   the output as returned against the clean image.

The degradations per task (sigma always on the [0, 1] scale):

============ ==============================================================  ===================
task         degradation                                                     default sigmas
============ ==============================================================  ===================
denoise      ``Noise(sigma)``                                                0.05, 0.1, 0.2
deblur       ``Compose(Blur(kernel), Noise(sigma))``, circular boundary,     0.005, 0.01, 0.02
             kernel ``"course"`` unless given
inpaint      ``Compose(Mask, Noise(sigma))``; mask ``"lower-half"`` (the     0
             course's: the lower half of each image missing) or
             ``"random:P"`` (each pixel missing with probability P, drawn
             from the image's seed)
superresolve ``Compose(Downsample(scale, kernel), Noise(sigma))``,           0, 0.01
             circular boundary, scale 2 unless given, the bicubic
             anti-aliasing kernel unless one is given; each clean image is
             cropped (bottom, right) to a multiple of the scale and the
             output, ``scale`` times the input's size, is scored against it
============ ==============================================================  ===================

For super-resolution the degraded input's baseline row is the input
upsampled by pixel repetition (nearest neighbour), the only way to score a
smaller image against the original.

**Kernel sets**: :func:`run_kernel_set` runs the whole benchmark once per
kernel of a set (``"levin:all"``, or a comma list such as
``"levin:1,levin:3,gauss:1.6"``; :func:`restorekit.kernels.kernel_set_specs`)
and reports every kernel and the mean over the kernels
(:class:`KernelSetResult`).

A method is a registered restorer's name, optionally with parameters:
``"wiener:snr=auto"``, ``"wiener+unet:wiener.snr=50"``. A method whose
restorer cannot be built (missing weights or compiled extension, a plugin
that failed) or that refuses the images is left out and listed in
:attr:`BenchResult.skipped` with the reason; a name that is not registered
is an error. A method whose code fails (it raises, or returns something that
is not a valid image: :class:`~restorekit.errors.RestorerFailedError`) is
marked failed (``Skipped.failed``, a ``failed: ...`` row in the table) and
every other method is still reported.

Results are rows of mean PSNR, SSIM and seconds per image per method and
sigma (:attr:`BenchResult.rows`), with the degraded input's own PSNR/SSIM
(clipped to [0, 1], as it would be stored) as a baseline; the result writes a
Markdown table, JSON and a figure, each atomically.

Examples
--------
>>> import torch
>>> from restorekit.bench import run_benchmark
>>> x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
>>> result = run_benchmark(x, "deblur", ["wiener", "wiener:snr=auto"], sigmas=[0.01], progress=False)
>>> [row.method for row in result.rows]
['wiener', 'wiener:snr=auto']
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from .checks import check_seed, check_sigma
from .errors import (InputError, ParameterError, RestorekitError, RestorerFailedError, UnknownRestorerError,
                     one_line_warnings)
from .restorer import TASKS

DEFAULT_SIGMAS = {"denoise": (0.05, 0.1, 0.2), "deblur": (0.005, 0.01, 0.02), "inpaint": (0.0,),
                  "superresolve": (0.0, 0.01)}
DEFAULT_KERNEL = "course"
DEFAULT_SCALE = 2
#: Tasks whose degradation takes a kernel (``--kernel``): the blur, or the anti-aliasing blur before decimation.
KERNEL_TASKS = ("deblur", "superresolve")
DEFAULT_MASK = "lower-half"
WARMUP_SIZE = 64
INPUT_LABEL = "(degraded input)"


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class BenchRow:
    """Mean scores of one method at one noise level."""

    method: str
    sigma: float
    psnr: float
    ssim: float
    seconds: float
    images: int


@dataclass(frozen=True)
class Skipped:
    """A method left out of the run, and why; ``failed`` when its code broke the restorer
    contract (:class:`~restorekit.errors.RestorerFailedError`) rather than refusing the images."""

    method: str
    reason: str
    failed: bool = False


@dataclass
class Example:
    """One image's clean, degraded and restored versions (kept for figures)."""

    image: str
    sigma: float
    clean: torch.Tensor
    degraded: torch.Tensor
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)


class ReportFiles:
    """``write_markdown`` / ``write_json`` for a result that has ``to_markdown`` and ``to_json``."""

    def write_markdown(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_markdown` to ``path`` atomically."""
        from .atomic import write_text_atomic

        return write_text_atomic(path, self.to_markdown())

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_json` to ``path`` atomically."""
        from .atomic import write_text_atomic

        return write_text_atomic(path, self.to_json())


@dataclass
class BenchResult(ReportFiles):
    """What :func:`run_benchmark` measured.

    Attributes
    ----------
    rows : list of BenchRow
        Mean PSNR (dB), SSIM and seconds per image, per method and sigma.
    baseline : list of BenchRow
        The degraded input's PSNR and SSIM per sigma (method ``"(degraded input)"``).
    records : list of dict
        Per-image values: image, sigma, method, psnr, ssim, seconds.
    skipped : list of Skipped
        Methods left out, with the reason.
    settings : dict
        Task, sigmas, kernel, mask, seed, images, machine.
    examples : list of Example
        Outputs kept for the first ``keep`` images (see :func:`run_benchmark`).
    """

    rows: list[BenchRow]
    baseline: list[BenchRow]
    records: list[dict]
    skipped: list[Skipped]
    settings: dict
    examples: list[Example] = field(default_factory=list)

    def row(self, method: str, sigma: float) -> BenchRow:
        """The row of ``method`` at ``sigma`` (KeyError if it was not measured)."""
        for r in self.rows:
            if r.method == method and math.isclose(r.sigma, sigma):
                return r
        raise KeyError(f"no row for {method!r} at sigma {sigma}")

    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.rows))

    def to_markdown(self) -> str:
        """A Markdown table: one line per sigma and method, the degraded input first."""
        s = self.settings
        lines = [
            f"Task {s['task']}, {s['images']} image(s) from {s['source']}, {s['degradation']}, "
            f"noise seed {s['seed']} + image index; sigma on the [0, 1] scale.",
            "",
            "| sigma | method | PSNR (dB) | SSIM | s / image |",
            "| ---: | --- | ---: | ---: | ---: |",
        ]
        for base in self.baseline:
            lines.append(f"| {_num(base.sigma)} | {base.method} | {base.psnr:.2f} | {base.ssim:.4f} | |")
            for r in (r for r in self.rows if math.isclose(r.sigma, base.sigma)):
                lines.append(f"| {_num(r.sigma)} | {r.method} | {r.psnr:.2f} | {r.ssim:.4f} | {r.seconds:.3f} |")
        for k in (k for k in self.skipped if k.failed):
            reason = (k.reason.splitlines() or [""])[0].replace("|", "/")
            lines.append(f"| | {k.method} | failed: {reason} | | |")
        not_run = [k for k in self.skipped if not k.failed]
        if not_run:
            lines += ["", "Not run: " + "; ".join(f"{k.method} ({k.reason})" for k in not_run) + "."]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "settings": self.settings,
            "rows": [asdict(r) for r in self.rows],
            "baseline": [asdict(r) for r in self.baseline],
            "skipped": [asdict(k) for k in self.skipped],
            "records": self.records,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def _metric_figure(self, plt: Any) -> Any:
        """PSNR and SSIM against sigma (one line per method), or bars when there is one sigma."""
        sigmas = [b.sigma for b in self.baseline]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, metric, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
            if len(sigmas) == 1:  # a line over one sigma is a dot on an axis of +-4% around it: bars instead
                names = [INPUT_LABEL] + [m for m in self.methods()]
                values = [getattr(self.baseline[0], metric)] + [
                    next((getattr(r, metric) for r in self.rows if r.method == m), math.nan) for m in self.methods()]
                bars = ax.barh(range(len(names)), values, color=["0.6"] + [f"C{i}" for i in range(len(names) - 1)])
                ax.bar_label(bars, fmt="%.3f" if metric == "ssim" else "%.2f", fontsize=8, padding=2)
                ax.set_yticks(range(len(names)), names, fontsize=8)
                ax.invert_yaxis()
                ax.set_xlabel(f"{label} at noise sigma {sigmas[0]:g} ([0, 1] scale)")
                finite = [v for v in values if math.isfinite(v)]
                if finite:
                    ax.set_xlim(0, max(finite) * 1.15)
                ax.grid(axis="x", alpha=0.3)
                continue
            ax.plot(sigmas, [getattr(b, metric) for b in self.baseline], "k--", marker="x", label=INPUT_LABEL)
            for method in self.methods():
                pts = [(r.sigma, getattr(r, metric)) for r in self.rows if r.method == method]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
            ax.set_xlabel("noise sigma ([0, 1] scale)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        if len(sigmas) != 1:
            axes[1].legend(fontsize=8, loc="best")
        return fig

    def figure(self, path: str | os.PathLike) -> Path:
        """Plot PSNR and SSIM against sigma, one line per method; write it atomically.

        With a single sigma the figure shows one bar per method (and the
        degraded input) instead. The format follows the suffix (``.png``,
        ``.pdf``, ``.svg``).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .atomic import atomic_output

        fig = self._metric_figure(plt)
        s = self.settings
        fig.suptitle(f"{s['task']}: {s['images']} image(s) from {s['source']}; {s['degradation']}", fontsize=10)
        fig.tight_layout()
        target = Path(path)
        with atomic_output(target) as tmp:
            fig.savefig(tmp, dpi=120, format=(target.suffix.lstrip(".") or "png"))
        plt.close(fig)
        return target

    def image_figure(self, path: str | os.PathLike) -> Path:
        """The kept images side by side: clean, degraded, each method's output, PSNR in the titles; atomic write.

        One row per image and sigma kept (:func:`run_benchmark`'s ``keep``), as
        ``restorekit demo`` draws them. The PSNR in a title is that image's; the
        tables have the means. The format follows the suffix.

        Raises
        ------
        InputError
            If no image was kept (``keep=0``).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .atomic import atomic_output

        fig = self._image_grid(plt)
        target = Path(path)
        with atomic_output(target) as tmp:
            fig.savefig(tmp, dpi=110, format=(target.suffix.lstrip(".") or "png"))
        plt.close(fig)
        return target

    def _image_grid(self, plt: Any) -> Any:
        """The figure of :meth:`image_figure`."""
        from .metrics import psnr

        if not self.examples:
            raise InputError("no restored images were kept for the image figure; run the benchmark with keep=1")
        columns = max(2 + len(ex.outputs) for ex in self.examples)
        fig, axes = plt.subplots(len(self.examples), columns, figsize=(2.3 * columns, 2.7 * len(self.examples)),
                                 squeeze=False, layout="constrained")
        for axis_row, ex in zip(axes, self.examples):
            panels = [("clean", ex.clean), (f"{INPUT_LABEL}, sigma {_num(ex.sigma)}", ex.degraded),
                      *ex.outputs.items()]
            for ax, (label, tensor) in zip(axis_row, panels):
                img = tensor[0].detach().float().cpu().clamp(0, 1)
                shown = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
                ax.imshow(shown, cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=1,
                          interpolation="nearest")
                comparable = label != "clean" and tuple(img.shape) == tuple(ex.clean[0].shape)
                score = f"\n{psnr(img[None], ex.clean.detach().float().cpu()):.2f} dB" if comparable else ""
                ax.set_title(f"{label}{score}", fontsize=8)
            for ax in axis_row:
                ax.axis("off")
        s = self.settings
        fig.suptitle(f"{s['task']}, {s['degradation']}: {', '.join(dict.fromkeys(ex.image for ex in self.examples))}"
                     " (PSNR of these images; the table has the means)", fontsize=9)
        return fig


def _num(value: float) -> str:
    return f"{value:g}"


# --------------------------------------------------------------------------- inputs
def parse_method(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``"name:key=value:key=value"`` into the restorer name and its parameters.

    Examples
    --------
    >>> parse_method("wiener:snr=auto")
    ('wiener', {'snr': 'auto'})
    """
    name, *parts = [p.strip() for p in spec.strip().split(":")]
    if not name:
        raise ParameterError(f"method {spec!r} has no restorer name; write NAME or NAME:KEY=VALUE")
    params = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ParameterError(
                f"method {spec!r}: {part!r} is not KEY=VALUE; write e.g. wiener:snr=auto (parameters separated by ':')"
            )
        params[key.strip()] = value.strip()
    return name, params


def parse_sigmas(values: Iterable[Any] | str | None, task: str) -> tuple[float, ...]:
    """Noise levels as floats >= 0 ([0, 1] scale); the task's defaults when ``None``."""
    if values is None:
        return DEFAULT_SIGMAS[task]
    if isinstance(values, str):
        values = [v for v in values.replace(" ", "").split(",") if v]
    out = [check_sigma(v) for v in values]  # the refusal and hint restore, degrade and demo give too
    if not out:
        raise InputError("no noise levels given; pass e.g. --sigmas 0.05,0.1,0.2")
    return tuple(out)


def _as_image(t: Any, what: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{what} must be a torch.Tensor or an image path, got {type(t).__name__}")
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[0] != 1:
        raise InputError(f"{what} must have shape (H, W), (C, H, W) or (1, C, H, W), got {tuple(t.shape)}")
    return t.float() if not t.is_floating_point() else t


def collect_images(images: Any) -> list[tuple[str, Any]]:
    """Normalise ``images`` into ``(name, loader-or-tensor)`` pairs, in order.

    Accepts a folder (its images sorted by name), an image path, a tensor
    ``(N, C, H, W)`` (each item an image), a mapping name -> tensor, or a
    sequence of paths, tensors or ``(name, tensor)`` pairs.
    """
    from .imageio import list_images

    if isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.is_dir():
            files = list_images(path)
            if not files:
                raise InputError(f"{path} holds no images (.png, .jpg, .tif, .npy); point --data at an image folder")
            return [(p.name, p) for p in files]
        if path.is_file():
            return [(path.name, path)]
        raise InputError(f"{path} does not exist; pass a folder of images or an image file")
    if isinstance(images, torch.Tensor):
        batch = images if images.ndim == 4 else _as_image(images, "the images")
        return [(f"image{i}", batch[i : i + 1]) for i in range(batch.shape[0])]
    if isinstance(images, Mapping):
        return [(str(k), _as_image(v, f"image {k!r}")) for k, v in images.items()]
    out = []
    for i, item in enumerate(images):
        if isinstance(item, (str, os.PathLike)):
            out.append((Path(item).name, Path(item)))
        elif isinstance(item, tuple) and len(item) == 2:
            out.append((str(item[0]), _as_image(item[1], f"image {item[0]!r}")))
        else:
            out.append((f"image{i}", _as_image(item, f"image {i}")))
    if not out:
        raise InputError("no images to benchmark")
    return out


def _load(source: Any) -> torch.Tensor:
    if isinstance(source, Path):
        from .imageio import load_image

        return load_image(source)
    return source


def make_degradation(task: str, sigma: float, shape: Sequence[int], seed: int, kernel: torch.Tensor | None,
                     mask: str = DEFAULT_MASK, scale: int = DEFAULT_SCALE):
    """The degradation of one image (``shape`` = N, C, H, W) for ``task`` at ``sigma``.

    :func:`restorekit.degrade.spec.task_degradation`, the builder the command
    line and the contract checks use too; a random mask is drawn from
    ``seed`` for this image. For ``superresolve`` ``kernel`` is the
    anti-aliasing blur (``None``: the bicubic default of
    :class:`~restorekit.degrade.Downsample`).
    """
    from .degrade.spec import task_degradation

    return task_degradation(task, sigma, int(shape[-2]), int(shape[-1]), seed, kernel, mask, scale)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else platform's answer)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict:
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------- the run
def set_threads(threads: int | None) -> None:
    """Set torch's CPU threads (``None``: leave torch's choice); at least 1."""
    if threads is None:
        return
    if int(threads) < 1:
        raise ParameterError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(int(threads))


def _device(name: str | torch.device) -> torch.device:
    """``name`` as a usable torch device, or :class:`ParameterError` saying what to use."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ParameterError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {name!r} was asked for but no CUDA GPU is visible; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ParameterError(f"device {name!r} is not supported by the benchmark; use cpu or cuda")
    return device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_benchmark(
    images: Any,
    task: str,
    methods: Sequence[str] | None = None,
    sigmas: Iterable[float] | str | None = None,
    kernel: Any = None,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
    *,
    mask: str = DEFAULT_MASK,
    device: str | torch.device = "cpu",
    keep: int = 0,
    registry=None,
    part: tuple[int, int] = (0, 1),
    scale: int | None = None,
    gain: float = 0.0,
) -> BenchResult:
    """Run ``methods`` on ``images`` degraded for ``task``; see the module docstring.

    Parameters
    ----------
    images : folder, path, tensor, mapping or sequence
        The clean images (see :func:`collect_images`), values in [0, 1].
    task : {"denoise", "deblur", "inpaint", "superresolve"}
    methods : sequence of str, optional
        Method specs (``"name"`` or ``"name:key=value"``). Default: every
        registered restorer that handles ``task``.
    sigmas : floats or comma-separated str, optional
        Noise levels on the [0, 1] scale; the task's defaults when omitted.
    kernel : spec, array or tensor, optional
        The blur kernel for ``deblur`` (a :func:`restorekit.kernels.load_kernel`
        spec; ``"course"`` by default), or the anti-aliasing kernel for
        ``superresolve`` (the bicubic one by default). Refused for other
        tasks; for a kernel set use :func:`run_kernel_set`.
    seed : int
        Image ``i`` gets noise (and a random mask) drawn from ``seed + i``.
    limit : int, optional
        Use only the first ``limit`` images.
    progress : bool
        Show a tqdm progress bar (on stderr).
    mask : str
        The inpainting mask, ``"lower-half"`` or ``"random:P"``.
    device : str or torch.device
        Where the images go before restoring (noise is drawn on the CPU).
    keep : int
        Keep the clean, degraded and restored tensors of the first ``keep``
        images in :attr:`BenchResult.examples` (for figures).
    registry : Registry, optional
        Where methods are looked up; the default registry otherwise.
    gain : float
        Above 0: Poisson-Gaussian noise ``PoissonGaussian(gain, sigma)`` at each sigma (the read
        noise) instead of Gaussian noise (``restorekit bench --noise pg:GAIN,SIGMA``).
    part : (int, int)
        ``(rank, world_size)``: measure only images ``rank``, ``rank +
        world_size``, ... (each with its own seed, as in a whole run); the
        parts of all ranks merge into the whole result with
        :func:`restorekit.scaleout.merge_bench_results`.
    scale : int, optional
        The downsampling factor for ``superresolve`` (an integer >= 2,
        default 2). Refused for other tasks.

    Returns
    -------
    BenchResult
    """
    from tqdm.auto import tqdm

    from .metrics import psnr, ssim
    from .registry import default_registry

    if task not in TASKS:
        raise ParameterError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    registry = registry or default_registry()
    sigma_list = parse_sigmas(sigmas, task)
    device = _device(device)
    if kernel is not None and task not in KERNEL_TASKS:
        raise ParameterError(f"a kernel is only used by --task deblur or superresolve, not {task}; leave --kernel out")
    scale = _bench_scale(task, scale)
    from .kernels import is_kernel_set, load_kernel

    if is_kernel_set(kernel):
        raise ParameterError(f"{kernel!r} is a kernel set; run it with run_kernel_set (bench --kernel does)")
    kernel_spec = DEFAULT_KERNEL if kernel is None and task == "deblur" else kernel
    with one_line_warnings():  # a kernel file that does not sum to 1: one line saying it was normalised
        kernel_tensor = load_kernel(kernel_spec) if kernel_spec is not None else None
    if task == "inpaint" and mask != DEFAULT_MASK:
        from .degrade.spec import parse_mask

        parse_mask(mask)  # a bad spec is refused before any image is read
    if limit is not None and limit < 1:
        raise ParameterError(f"limit must be at least 1, got {limit}")

    sources = collect_images(images)
    source_name = str(images) if isinstance(images, (str, os.PathLike)) else "memory"
    if limit is not None:
        sources = sources[:limit]

    check_seed(seed, "seed", span=max(len(sources), 1))  # image i is seeded with seed + i
    methods = _method_list(methods, registry, task)
    built, skipped = build_methods(methods, task, registry)

    degradation_text = {
        "denoise": "additive Gaussian noise",
        "deblur": f"blur by kernel {_kernel_label(kernel_spec)} (circular) + Gaussian noise",
        "inpaint": f"mask {mask} + Gaussian noise",
        "superresolve": f"downsampling x{scale} after the "
                        f"{'bicubic' if kernel_spec is None else _kernel_label(kernel_spec)} anti-aliasing kernel "
                        "(circular) + Gaussian noise; input scored upsampled by pixel repetition",
    }[task]
    if gain > 0:
        degradation_text = degradation_text.replace("Gaussian noise", f"Poisson-Gaussian noise of gain {gain:g} "
                                                    "(sigma: its read noise)")
    settings = {
        "task": task,
        "sigmas": list(sigma_list),
        "kernel": _kernel_label(kernel_spec) if kernel_spec is not None else None,
        "scale": scale if task == "superresolve" else None,
        "mask": mask if task == "inpaint" else None,
        "seed": seed,
        "gain": gain if gain > 0 else None,
        "limit": limit,
        "images": len(sources),
        "image_names": [n for n, _ in sources],
        "source": source_name,
        "degradation": degradation_text,
        "methods": list(methods),
        "device": str(device),
        "machine": machine_description(),
    }

    records: list[dict] = []
    base_records: list[dict] = []
    examples: list[Example] = []
    warmed: set[str] = set()
    rank, world = part
    indices = range(rank, len(sources), world)  # this process's share (all of them in one process)
    total = len(indices) * len(sigma_list) * max(len(built), 1)
    bar = tqdm(total=total, desc=f"bench {task}", unit="run", disable=not progress, leave=False)
    shown = contextlib.ExitStack()
    shown.enter_context(one_line_warnings())  # a guard's warning: one line, once per method (it warns once)
    try:
        for index in indices:
            image_name, source = sources[index]
            clean = _load(source)
            if task == "superresolve":
                clean = _crop_for_scale(clean, scale, image_name)
            for sigma in sigma_list:
                noise = f"pg:{gain},{sigma}" if gain > 0 else sigma
                degradation = make_degradation(task, noise, clean.shape, seed + index, kernel_tensor, mask, scale)
                degraded = degradation.apply(clean, seed=seed + index)
                seen = _as_scored(degraded, degradation.scale)
                base_records.append({"image": image_name, "sigma": sigma,
                                     "psnr": psnr(seen, clean), "ssim": ssim(seen, clean)})
                example = Example(image_name, sigma, clean, degraded) if index < keep else None
                on_device = degraded.to(device)
                moved = degradation.to(device)
                for spec in list(built):
                    bar.set_postfix_str(f"{spec} sigma={sigma:g} {image_name}", refresh=False)
                    try:
                        out, seconds = _timed(built[spec], on_device, moved, device, spec not in warmed,
                                              (task, noise, kernel_tensor, mask, seed + index, scale))
                        warmed.add(spec)
                        out = out.detach().to("cpu", torch.float32)
                        if out.shape != clean.shape:
                            raise InputError(f"it returned shape {tuple(out.shape)} for an input of {tuple(clean.shape)}")
                    except RestorekitError as exc:
                        # Left out entirely: a method is compared on all images or on none.
                        done = sum(1 for r in records if r["method"] == spec)
                        bar.total -= len(indices) * len(sigma_list) - done
                        records[:] = [r for r in records if r["method"] != spec]
                        skipped.append(Skipped(spec, f"failed on {image_name}: {exc}",
                                               failed=isinstance(exc, RestorerFailedError)))
                        del built[spec]
                        continue
                    records.append({"image": image_name, "sigma": sigma, "method": spec,
                                    "psnr": psnr(out, clean), "ssim": ssim(out, clean), "seconds": seconds})
                    if example is not None:
                        example.outputs[spec] = out
                    bar.update(1)
                if example is not None:
                    examples.append(example)
    finally:
        bar.close()
        shown.close()

    rows = [
        _mean_row(spec, sigma, [r for r in records if r["method"] == spec and r["sigma"] == sigma])
        for sigma in sigma_list
        for spec in methods
        if spec in built
    ]
    baseline = [_mean_row(INPUT_LABEL, sigma, [r for r in base_records if r["sigma"] == sigma]) for sigma in sigma_list]
    for ex in examples:
        ex.outputs = {k: v for k, v in ex.outputs.items() if k in built}
    return BenchResult(rows=rows, baseline=baseline, records=records, skipped=skipped, settings=settings, examples=examples)


def _method_list(methods: Sequence[str] | str | None, registry, task: str) -> list[str]:
    if methods is None:  # every restorer for the task, except those registered as pipeline steps only
        methods = registry.names(task, standalone_only=True)
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = list(methods)
    if not methods:
        raise ParameterError(f"no methods to run for {task}; pass some, see 'restorekit list --task {task}'")
    if len(set(methods)) != len(methods):
        raise ParameterError(f"a method is listed twice in {', '.join(methods)}; list each once")
    return methods


def build_methods(methods: Sequence[str], task: str, registry) -> tuple[dict[str, Any], list[Skipped]]:
    """Build each method spec once: ``({spec: restorer}, skipped)``.

    A name that is not registered, or a bad parameter, is an error (a typo
    must not vanish from a table); a restorer that cannot be built (missing
    weights, compiled extension or plugin) or does not handle ``task`` is
    skipped with the reason.
    """
    built: dict[str, Any] = {}
    skipped: list[Skipped] = []
    for spec in methods:
        name, params = parse_method(spec)
        try:
            restorer = registry.create(name, **params)
        except (UnknownRestorerError, ParameterError):
            raise
        except RestorekitError as exc:
            skipped.append(Skipped(spec, str(exc)))
            continue
        tasks = _declared_tasks(registry, name, restorer)
        if task not in tasks:
            skipped.append(Skipped(spec, f"handles {', '.join(sorted(tasks))}, not {task}"))
            continue
        built[spec] = restorer
    return built, skipped


def _declared_tasks(registry, name: str, restorer) -> frozenset[str]:
    """The tasks a plugin registered for ``name``; a pipeline's (or an 'a+b' composition's) from its first step."""
    try:
        spec = registry.get(name)
    except UnknownRestorerError:
        return frozenset(restorer.tasks)
    return frozenset(restorer.tasks) if spec.is_pipeline else spec.tasks


def _mean_row(method: str, sigma: float, records: list[dict]) -> BenchRow:
    n = len(records)

    def mean(key):
        values = [r[key] for r in records]
        return float(sum(values) / n) if n else float("nan")

    seconds = mean("seconds") if records and "seconds" in records[0] else 0.0
    return BenchRow(method, sigma, mean("psnr"), mean("ssim"), seconds, n)


def _timed(restorer, degraded, degradation, device, warm_up, setup) -> tuple[torch.Tensor, float]:
    """Restore a copy of ``degraded``; return the output and the seconds it took."""
    if warm_up:
        _warm_up(restorer, degraded, degradation, *setup)
    _sync(device)
    start = time.perf_counter()
    out = restorer(degraded.clone(), degradation)
    _sync(device)
    return out, time.perf_counter() - start


def _warm_up(restorer, degraded, degradation, task, sigma, kernel, mask, seed, scale) -> None:
    """Run once, untimed, on a corner crop, so imports and first allocations are not timed.

    A restorer that refuses the crop (a fixed input size) is warmed up on the whole image instead.
    """
    h, w = degraded.shape[-2:]
    ch, cw = min(WARMUP_SIZE, h), min(WARMUP_SIZE, w)
    crop = degraded[..., :ch, :cw].clone()
    crop_degradation = degradation if (ch, cw) == (h, w) else make_degradation(
        task, sigma, crop.shape, seed, kernel, mask, scale).to(degraded.device)
    try:
        restorer(crop, crop_degradation)
    except RestorekitError:
        restorer(degraded.clone(), degradation)


def _bench_scale(task: str, scale: Any) -> int:
    """The checked downsampling factor for ``superresolve`` (default 2); refused for other tasks."""
    if task != "superresolve":
        if scale is not None:
            raise ParameterError(f"a scale is only used by --task superresolve, not {task}; leave --scale out")
        return 1
    from .degrade import check_scale

    return DEFAULT_SCALE if scale is None else check_scale(scale)


def _crop_for_scale(clean: torch.Tensor, scale: int, name: str) -> torch.Tensor:
    """``clean`` cropped to a multiple of ``scale``, or :class:`InputError` when it is smaller than one block."""
    from .degrade import crop_to_multiple

    h, w = clean.shape[-2:]
    if h < scale or w < scale:
        raise InputError(f"image {name} ({h}x{w}) is too small to downsample by {scale}; "
                         f"use images of at least {scale}x{scale} pixels or a smaller --scale")
    return crop_to_multiple(clean, scale)


def _as_scored(degraded: torch.Tensor, scale: int) -> torch.Tensor:
    """The degraded input as it is scored: clipped to [0, 1], and pixel-repeated back to full size."""
    seen = degraded.clamp(0, 1)
    if scale > 1:
        seen = seen.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    return seen


def _kernel_label(spec: Any) -> str:
    if isinstance(spec, (str, os.PathLike)):
        return str(spec)
    shape = tuple(getattr(spec, "shape", ()))
    return f"array {'x'.join(map(str, shape))}" if shape else type(spec).__name__


__all__ = [
    "DEFAULT_MASK",
    "DEFAULT_SCALE",
    "DEFAULT_SIGMAS",
    "KERNEL_TASKS",
    "BenchResult",
    "BenchRow",
    "Example",
    "Skipped",
    "build_methods",
    "collect_images",
    "make_degradation",
    "parse_method",
    "parse_sigmas",
    "run_benchmark",
    "set_threads",
]
