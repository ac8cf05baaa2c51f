"""The gallery of the docs: short restorations of scikit-image's bundled photos, drawn when the docs build.

Every figure is made from scratch by the build (nothing here is a committed
image): a crop of a photo from :mod:`skimage.data` (shipped with
scikit-image, so no download), degraded with a fixed seed, restored by the
restorers named, and drawn side by side with each panel's PSNR against the
clean crop. The crops are small and ``pnp`` keeps its default iterations, so
the whole gallery takes about 25 s on one CPU thread.

Run it alone to look at the figures or time them::

    python docs/_ext/restorekit_gallery.py OUTDIR [NAME ...]

The Sphinx extension :mod:`restorekit_docs` calls :func:`make_figure` for
each ``{gallery-figure} NAME`` directive of the docs.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

#: Seed of every degradation (noise, masks) drawn for the gallery.
SEED = 0


@dataclass
class Panel:
    """One image of a figure: its title, the image (1, C, H, W) and, for restored images, the PSNR."""

    title: str
    image: object
    psnr: float | None = None
    kind: str = "image"  # "image" or "kernel" (drawn with its own contrast, no PSNR)


@dataclass
class Figure:
    """What a gallery example made: the panels to draw and the caption's sentence."""

    panels: list[Panel]
    caption: str
    warnings: list[str] = field(default_factory=list)


def photo(name: str, top: int, left: int, height: int, width: int):
    """A crop of ``skimage.data.<name>()`` as a (1, C, H, W) float32 tensor in [0, 1]."""
    import numpy as np
    import torch
    from skimage import data

    array = getattr(data, name)()[top:top + height, left:left + width]
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float() / 255.0


def _restored(title: str, restorer, y, degradation, clean) -> Panel:
    from restorekit.metrics import psnr

    out = restorer(y, degradation)
    return Panel(title, out, psnr(out, clean))


def denoise() -> Figure:
    """Gaussian noise sigma 0.1 (25.5 on the 0-255 scale): the three learned denoisers, told sigma."""
    import restorekit
    from restorekit.degrade import Noise
    from restorekit.metrics import psnr

    x = photo("astronaut", 20, 150, 160, 160)
    d = Noise(0.1)
    y = d.apply(x, seed=SEED)
    panels = [Panel("clean", x), Panel("noisy, sigma 0.1", y, psnr(y, x))]
    panels += [_restored(name, restorekit.create(name), y, d, x) for name in ("dncnn", "ffdnet", "drunet")]
    return Figure(panels, "Denoising: Noise(0.1) on a 160x160 crop of skimage.data.astronaut(); dncnn is blind, "
                          "ffdnet and drunet read the sigma from the degradation.")


def deblur() -> Figure:
    """Levin's motion kernel 2 (circular border, as in the benchmarks), noise 0.01: Wiener against plug-and-play."""
    import restorekit
    from restorekit.degrade import Blur, Compose, Noise
    from restorekit.kernels import load_kernel
    from restorekit.metrics import psnr

    x = photo("coffee", 60, 180, 192, 192)
    kernel = load_kernel("levin:2")
    d = Compose(Blur(kernel), Noise(0.01))
    y = d.apply(x, seed=SEED)
    panels = [Panel("clean", x), Panel("blurred + noise 0.01", y, psnr(y, x)),
              _restored("wiener snr=auto", restorekit.create("wiener", snr="auto"), y, d, x),
              _restored("pnp (drunet)", restorekit.create("pnp", progress="false"), y, d, x),
              Panel("kernel levin:2", kernel, kind="kernel")]
    return Figure(panels, "Deblurring: Levin et al.'s motion kernel 2 (circular border, as in the benchmarks) "
                          "and Noise(0.01) on a 192x192 crop of skimage.data.coffee(); pnp with its default prior "
                          "and 8 iterations.")


def superresolve() -> Figure:
    """x2: bicubic downsampling then noise 0.01; bicubic interpolation against plug-and-play."""
    import restorekit
    from restorekit.degrade import Compose, Downsample, Noise

    x = photo("chelsea", 40, 120, 160, 160)
    d = Compose(Downsample(2), Noise(0.01))
    y = d.apply(x, seed=SEED)
    panels = [Panel("clean", x), Panel("low resolution (x2)", y),
              _restored("bicubic", restorekit.create("bicubic"), y, d, x),
              _restored("pnp (drunet)", restorekit.create("pnp", progress="false"), y, d, x)]
    return Figure(panels, "Super-resolution x2: Compose(Downsample(2), Noise(0.01)) of a 160x160 crop of "
                          "skimage.data.chelsea() (the 80x80 input is drawn at the output's size); pnp with "
                          "24 iterations.")


def inpaint() -> Figure:
    """Half the pixels missing, noise 0.01: the biharmonic anchor against plug-and-play."""
    import restorekit
    from restorekit.degrade import Compose, Mask, Noise
    from restorekit.metrics import psnr

    x = photo("coffee", 100, 260, 160, 160)
    d = Compose(Mask.random(160, 160, 0.5, seed=SEED), Noise(0.01))
    y = d.apply(x, seed=SEED)
    panels = [Panel("clean", x), Panel("50% missing + noise", y, psnr(y, x))]
    if any(spec.name == "biharmonic" for spec in restorekit.list_restorers("inpaint")):
        panels.append(_restored("biharmonic", restorekit.create("biharmonic"), y, d, x))
    panels.append(_restored("pnp (drunet)", restorekit.create("pnp", progress="false"), y, d, x))
    return Figure(panels, "Inpainting: Mask.random(160, 160, 0.5) and Noise(0.01) on a crop of "
                          "skimage.data.coffee(); biharmonic is scikit-image's inpaint_biharmonic (the "
                          "restorekit-skimage plugin), pnp runs 24 iterations of ADMM.")


def blind() -> Figure:
    """Blind deblurring: the kernel and the noise level estimated from the blurred photo alone."""
    import restorekit
    from restorekit.degrade import Blur, Compose, Noise
    from restorekit.estimate.kernel import blind_degradation
    from restorekit.kernels import load_kernel
    from restorekit.metrics import psnr

    x = photo("astronaut", 0, 0, 320, 480)
    kernel = load_kernel("levin:5")
    d = Compose(Blur(kernel, "reflect"), Noise(0.01))
    y = d.apply(x, seed=SEED)
    estimated, found = blind_degradation(y, 31)
    pnp = restorekit.create("pnp", progress="false")
    panels = [Panel("blurred + noise 0.01", y, psnr(y, x)),
              _restored("pnp, kernel estimated", pnp, y, estimated, x),
              _restored("pnp, true kernel", pnp, y, d, x),
              Panel("true kernel", kernel, kind="kernel"),
              Panel("estimated (31x31)", found["kernel"], kind="kernel")]
    return Figure(panels, "Blind deblurring: Levin's kernel 5 (reflect border) and Noise(0.01) on a 320x480 "
                          "crop of skimage.data.astronaut(); restorekit.estimate.kernel.blind_degradation "
                          f"estimated the kernel and the noise level (sigma {found['sigma']:.4f}), pnp restored "
                          "with it and, for comparison, with the true kernel.")


#: Every gallery example, in the order the gallery page shows them.
FIGURES: dict[str, Callable[[], Figure]] = {
    "denoise": denoise, "deblur": deblur, "superresolve": superresolve, "inpaint": inpaint, "blind": blind,
}


def _show(ax, panel: Panel) -> None:
    import torch

    ax.set_axis_off()
    if panel.kind == "kernel":
        k = torch.as_tensor(panel.image, dtype=torch.float64).cpu().numpy()
        ax.imshow(k / max(float(k.max()), 1e-12), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        img = panel.image[0].detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest", aspect="equal")
        ax.set_xlim(-0.5, img.shape[1] - 0.5)
    title = panel.title if panel.psnr is None else f"{panel.title}\n{panel.psnr:.2f} dB"
    ax.set_title(title, fontsize=9)


def draw(figure: Figure, path: Path) -> None:
    """Draw ``figure``'s panels in one row into the PNG ``path`` (deterministic: no dates in the file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    big = [p for p in figure.panels if p.kind == "image"]
    ratios = []
    for p in figure.panels:
        if p.kind == "kernel":
            ratios.append(0.5)
        else:
            h, w = p.image.shape[-2:]
            ratios.append(w / h)
    height = 2.6
    fig, axes = plt.subplots(1, len(figure.panels), figsize=(height * sum(ratios) * 0.95 + 0.2, height + 0.5),
                             gridspec_kw={"width_ratios": ratios}, squeeze=False)
    # A low-resolution input is drawn at the size of the images around it (nearest neighbour).
    extent = max((p.image.shape[-2:] for p in big), key=lambda s: s[0] * s[1])
    for ax, panel in zip(axes[0], figure.panels):
        if panel.kind == "image" and tuple(panel.image.shape[-2:]) != tuple(extent):
            import torch.nn.functional as F

            scale = extent[0] // panel.image.shape[-2]
            panel = Panel(panel.title, F.interpolate(panel.image, scale_factor=scale, mode="nearest"), panel.psnr)
        _show(ax, panel)
    fig.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.05, metadata={"Software": None})
    plt.close(fig)


def make_figure(name: str, path: Path) -> tuple[Figure, float]:
    """Run the example ``name``, draw it into ``path``; return it and the seconds it took.

    Warnings the restorers give (e.g. a trained-for guard) are collected in
    :attr:`Figure.warnings` rather than printed.
    """
    import torch

    start = time.perf_counter()
    torch.manual_seed(SEED)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            figure = FIGURES[name]()
    figure.warnings = sorted({str(w.message) for w in caught})
    draw(figure, path)
    return figure, time.perf_counter() - start


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[0] + "\nusage: restorekit_gallery.py OUTDIR [NAME ...]", file=sys.stderr)
        return 2
    out = Path(argv[0])
    total = 0.0
    for name in argv[1:] or list(FIGURES):
        figure, seconds = make_figure(name, out / f"{name}.png")
        total += seconds
        scores = ", ".join(f"{p.title}: {p.psnr:.2f} dB" for p in figure.panels if p.psnr is not None)
        print(f"{name}: {seconds:.1f} s  ({scores})")
        for message in figure.warnings:
            print(f"  warning: {message}")
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
