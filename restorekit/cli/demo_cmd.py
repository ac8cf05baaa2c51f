"""``restorekit demo``: the main job on scikit-image's bundled photographs, nothing to download."""

from __future__ import annotations

import argparse

HELP = "restore scikit-image's bundled photos with every registered restorer; print a table, write a figure"
DESCRIPTION = """\
The course's three experiments, and two for plug-and-play, on data that ships with the installed packages:
photographs of scikit-image (astronaut, coffee, chelsea, camera; centre-cropped
and resized to --size) and 12 MNIST digits bundled with restorekit:

  denoise  Gaussian noise of sigma --sigma (default 0.1) on the photos
  deblur   blur by the course kernel (MNIST digit 0 at 7x7, circular) + noise
           of sigma --deblur-sigma (default 0.01) on the photos
  deblur-motion  the same with Levin et al.'s motion-blur kernel 1 (19x19,
           shipped as restorekit/data/levin09_1.npy), where plug-and-play
           (pnp) shows what a fixed-kernel model cannot do
  superresolve  the photos downsampled x2 (bicubic anti-aliasing), noise-free,
           restored to full size (bicubic interpolation against pnp)
  inpaint  the lower half of each 28x28 digit missing (digits of classes 7, 8
           and 9 that the shipped mlp-inpaint model never saw in training)

Every registered restorer that handles the task (except those registered as
pipeline steps only, such as unet-wiener) restores the same degraded images; the mean PSNR, SSIM and seconds per image are printed, and a figure
with the first image's clean, degraded and restored versions side by side is
written (atomically) to --output. Restorers that cannot run here (missing
weights or compiled extension) are listed with the reason. Sigmas are on the
[0, 1] scale."""

DEMO_IMAGES = ("astronaut", "coffee", "chelsea", "camera")
DEMO_TASKS = ("denoise", "deblur", "deblur-motion", "inpaint", "superresolve")
#: Demo rows that run a benchmark task under another name, and the super-resolution factor.
ROW_TASKS = {"deblur-motion": "deblur"}
DEMO_SCALE = 2
MOTION_KERNEL_FILE = "levin09_1.npy"
DEFAULT_OUTPUT = "restorekit-demo.png"
#: The largest --size (twice the largest bundled photo's side).
MAX_SIZE = 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, metavar="FILE",
                        help=f"figure to write (.png, .pdf, .svg; default {DEFAULT_OUTPUT} in the current folder)")
    parser.add_argument("--size", type=int, default=160, metavar="PX",
                        help=f"side of the square test images, 16 to {MAX_SIZE} (default 160)")
    parser.add_argument("--images", default=",".join(DEMO_IMAGES), metavar="A,B,...",
                        help=f"scikit-image photos to use (default {','.join(DEMO_IMAGES)})")
    parser.add_argument("--sigma", type=float, default=0.1, help="noise sigma for denoising ([0, 1] scale; default 0.1)")
    parser.add_argument("--deblur-sigma", type=float, default=0.01,
                        help="noise sigma added after the blur ([0, 1] scale; default 0.01)")
    parser.add_argument("--tasks", default=",".join(DEMO_TASKS), metavar="A,B,...",
                        help=f"which experiments to run (default {','.join(DEMO_TASKS)})")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the first image (default 0)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def demo_images(names: list[str], size: int) -> dict:
    """scikit-image photos by name as ``(1, C, size, size)`` float32 tensors in [0, 1] (centre square)."""
    import numpy as np
    import torch
    from skimage import data, img_as_float, transform

    from ..errors import InputError

    if size < 16:
        raise InputError(f"--size must be at least 16 pixels (SSIM and the 7x7 kernel need room), got {size}")
    if size > MAX_SIZE:
        raise InputError(
            f"--size {size} is too large: at most {MAX_SIZE} pixels (the bundled photos are at most 512 pixels on "
            f"a side, so larger sizes only upsample them, at {size * size * 3 * 8 / 2**30:.3g} GiB per image); "
            f"use --size {MAX_SIZE} or less"
        )
    out = {}
    for name in names:
        loader = getattr(data, name, None)
        if loader is None or name.startswith("_"):
            raise InputError(f"scikit-image has no photo named {name!r}; try {', '.join(DEMO_IMAGES)}")
        img = img_as_float(loader())
        if img.ndim == 3 and img.shape[-1] == 4:
            img = img[..., :3]
        h, w = img.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        square = transform.resize(img[top : top + s, left : left + s], (size, size), anti_aliasing=True)
        t = torch.from_numpy(np.ascontiguousarray(square)).float()
        t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
        out[name] = t.clamp(0, 1).contiguous()
    return out


def demo_methods(task: str) -> list[str]:
    """Every restorer registered for ``task`` (pipeline steps apart), solvers named with their prior.

    A restorer with a ``denoiser`` parameter (``pnp``) runs with its default
    prior spelled out (``pnp:denoiser=drunet``), so each table row says which
    denoiser made it.
    """
    from ..registry import default_registry

    registry = default_registry()
    methods = []
    for name in registry.names(task, standalone_only=True):
        prior = next((p.default for p in registry.get(name).params if p.name == "denoiser"), None)
        methods.append(f"{name}:denoiser={prior}" if isinstance(prior, str) and prior else name)
    return methods


def _motion_kernel():
    """Levin et al.'s motion-blur kernel 1, shipped in restorekit/data (provenance in its .json)."""
    from importlib import resources

    from ..kernels import load_kernel

    with resources.as_file(resources.files("restorekit") / "data" / MOTION_KERNEL_FILE) as path:
        return load_kernel(path)


def write_figure(results: list, path: str) -> str:
    """One row per task: the first image clean, degraded and restored by each method; atomic write."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_output
    from ..metrics import psnr

    rows = [(task, r, r.examples[0]) for task, r in results if r.examples]
    columns = max(2 + len(ex.outputs) for _, _, ex in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.3 * columns, 2.8 * len(rows)),
                             squeeze=False, layout="constrained")
    for axis_row, (task, result, ex) in zip(axes, rows):
        damage = {"inpaint": "lower half missing",
                  "superresolve": f"x{DEMO_SCALE}, sigma {ex.sigma:g}"}.get(task, f"sigma {ex.sigma:g}")
        panels = [("clean", ex.clean), (f"{task}, {damage}", ex.degraded)] + list(ex.outputs.items())
        for ax, (label, tensor) in zip(axis_row, panels):
            img = tensor[0].clamp(0, 1)
            shown = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
            ax.imshow(shown, cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=1)
            smaller = tuple(img.shape[-2:]) != tuple(ex.clean.shape[-2:])  # a super-resolution input
            score = "" if label == "clean" or smaller else f"\n{psnr(img[None], ex.clean):.2f} dB"
            ax.set_title(label + score, fontsize=8)
        for ax in axis_row:
            ax.axis("off")
    images = ", ".join(dict.fromkeys(ex.image for _, _, ex in rows))
    fig.suptitle(f"restorekit demo: {images} (PSNR of these images; the tables have the means)", fontsize=9)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format=(str(path).rsplit(".", 1)[-1] if "." in str(path) else "png"))
    plt.close(fig)
    return str(path)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..bench import parse_sigmas, run_benchmark, set_threads
    from ..checks import check_seed
    from ..errors import InputError
    from ._files import check_figure_path

    output = Path(args.output)
    if output.is_dir():
        raise InputError(f"{output} is a folder; give a file name for the figure, e.g. {output / DEFAULT_OUTPUT}")
    check_figure_path(output, "-o")
    if not output.parent.is_dir():
        raise InputError(f"cannot write {output}: the folder {output.parent} does not exist; create it first")
    set_threads(args.threads)
    tasks = list(dict.fromkeys(t.strip() for t in args.tasks.split(",") if t.strip()))
    unknown = [t for t in tasks if t not in DEMO_TASKS]
    if unknown or not tasks:
        raise InputError(f"--tasks {args.tasks!r}: {'unknown ' + ', '.join(unknown) if unknown else 'empty'}; "
                         f"choose from {', '.join(DEMO_TASKS)}")
    names = [n.strip() for n in args.images.split(",") if n.strip()]
    if not names:
        raise InputError("--images is empty; name at least one scikit-image photo, e.g. astronaut")
    check_seed(args.seed, "--seed", span=max(len(names), 12))  # image i is seeded with --seed + i
    sigmas = {"denoise": parse_sigmas([args.sigma], "denoise"), "deblur": parse_sigmas([args.deblur_sigma], "deblur")}
    photos = demo_images(names, args.size) if set(tasks) - {"inpaint"} else {}
    photo_source = f"scikit-image ({', '.join(names)}, {args.size}x{args.size})"
    plan = {
        "denoise": (photos, sigmas["denoise"], None, photo_source),
        "deblur": (photos, sigmas["deblur"], "course", photo_source),
        "deblur-motion": (photos, sigmas["deblur"], _motion_kernel(), photo_source),
        "superresolve": (photos, (0.0,), None, photo_source),
        "inpaint": (None, (0.0,), None, "12 MNIST digits bundled with restorekit (classes 7, 8, 9; 28x28)"),
    }
    results = []
    for task in tasks:
        images, sigmas, kernel, source = plan[task]
        if images is None:
            from ..samples import demo_digits

            digits, labels = demo_digits()
            images = {f"digit{i:02d}-class{label}": d[None] for i, (d, label) in enumerate(zip(digits, labels))}
        result = run_benchmark(images, ROW_TASKS.get(task, task), methods=demo_methods(ROW_TASKS.get(task, task)),
                               sigmas=sigmas, kernel=kernel, seed=args.seed, progress=not args.no_progress, keep=1,
                               scale=DEMO_SCALE if task == "superresolve" else None)
        result.settings["source"] = source
        print(f"## {task}\n")
        print(result.to_markdown())
        results.append((task, result))
    if not any(r.rows for _, r in results):
        raise InputError("no restorer could run; see the reasons above and 'restorekit doctor'")
    print(f"wrote {write_figure(results, str(output))}")
    return 0
