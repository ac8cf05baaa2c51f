"""restorekit.estimate_noise against scikit-image's estimate_sigma, side by side on the same noisy images.

For each sigma, every image of the folder gets Gaussian noise (seed = the image's index in the folder, sorted by
name) and both estimators read it; the script prints the mean and worst relative error of each and the mean CPU
seconds per call (one thread). Then (issue 14):

* Poisson-Gaussian: ``estimate_noise(y, model="poisson-gaussian")`` against the true gain and read-noise
  sigma for each ``--pg`` setting (mean / worst relative error, and how many images are within 15%),
  beside the bound (:func:`read_noise_bound`): how many images even an ideal estimator that knows the
  clean image is expected to place within 15% of the read noise, and the chance that it places all; how
  many that estimator (:func:`read_noise_oracle`) does place on the very draws the row scores; and how
  often the estimates flagged uncertain (``NoiseEstimate.uncertain``: its two read-noise fits disagree,
  or the residual fit's own standard error is large) missed 15%, against the rest;
* JPEG: the Gaussian estimate of noise-free images saved as JPEG at each ``--jpeg`` quality (what the 8x8
  block edges alone read as), and of noisy images saved as JPEG, against the sigma of the noise added
  before compression and the std of what JPEG left of it (the JPEG image minus the JPEG of the clean
  image);
* pnp: pnp (default prior drunet) on ``--crops`` 128x128 centre crops blurred by Levin's kernel 1 with
  Poisson-Gaussian noise, given the Poisson-Gaussian model (its data step weighted by the noise map)
  against the same prior given one Gaussian sigma (the RMS of the map), side by side, at pnp's default
  iterations and at ``--pnp-iterations``.

The tables also go to ``benchmarks/results/noise_estimation_NAME.md`` and the figures, per setting, to
``noise_estimation_NAME.json`` (``--name``, default ``cbsd68``). ``--crops 0`` leaves out the pnp table,
``--jpeg ""`` the JPEG tables and ``--skip-gaussian`` the Gaussian one. ``--start N`` takes the images from the
folder's N-th on (a held-out set: ``--start 20 --limit 48`` is the CBSD68 images the defaults leave out).

Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_noise_estimation.py --data ../shared/data/CBSD68 --limit 20
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
#: Every line printed (the .md file) and the figures of every row (the .json file).
LINES: list[str] = []
RECORDS: dict[str, list[dict]] = {"gaussian": [], "poisson_gaussian": [], "jpeg": [], "pnp": []}


def say(line: str = "") -> None:
    """Print a line and keep it for the results file."""
    print(line, flush=True)
    LINES.append(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/CBSD68"))
    ap.add_argument("--limit", type=int, default=20, help="how many images (sorted by name)")
    ap.add_argument("--start", type=int, default=0, help="skip the first START images (seeds stay their index)")
    ap.add_argument("--sigmas", default="0.01,0.02,0.05,0.1,0.2")
    ap.add_argument("--pg", default="0.01:0.01,0.01:0.02,0.02:0.02,0.05:0.02,0.01:0.03,0.05:0.03",
                    help="Poisson-Gaussian settings GAIN:SIGMA,...")
    ap.add_argument("--jpeg", default="30,50,70,90", help="JPEG qualities ('' for none)")
    ap.add_argument("--jpeg-sigmas", default="0.02,0.05,0.1")
    ap.add_argument("--crops", type=int, default=4, help="images whose 128x128 centre crops pnp restores")
    ap.add_argument("--pnp-iterations", type=int, default=24)
    ap.add_argument("--skip-gaussian", action="store_true")
    ap.add_argument("--name", default="cbsd68", help="results go to benchmarks/results/noise_estimation_NAME.{md,json}")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from skimage.restoration import estimate_sigma

    import restorekit
    from restorekit.degrade import Noise
    from restorekit.imageio import load_image

    if args.start < 0 or args.limit < 1:
        ap.error("--start must be 0 or more and --limit 1 or more")
    files = sorted(p for p in Path(args.data).iterdir() if p.is_file())[args.start: args.start + args.limit]
    if not files:
        ap.error(f"no images in {args.data} from the {args.start}-th on")
    images = [load_image(f) for f in files]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    say(f"{len(images)} images of {args.data} (from the {args.start}-th, sorted by name), one thread "
        f"(torch.set_num_threads(1)), {cpu}, {time.strftime('%Y-%m-%d', time.gmtime())}")
    if not args.skip_gaussian:
        say()
        say("| sigma | estimate_noise mean / worst error | s per call | skimage estimate_sigma mean / worst error "
            "| s per call |")
        say("|---|---|---|---|---|")
    for sigma in ([] if args.skip_gaussian else (float(s) for s in args.sigmas.split(","))):
        ours, theirs, t_ours, t_theirs = [], [], 0.0, 0.0
        for i, x in enumerate(images):
            y = Noise(sigma).apply(x, seed=args.start + i)
            t = time.process_time()
            ours.append(restorekit.estimate_noise(y).sigma / sigma - 1)
            t_ours += time.process_time() - t
            t = time.process_time()
            theirs.append(float(np.mean(estimate_sigma(y[0].numpy(), channel_axis=0))) / sigma - 1)
            t_theirs += time.process_time() - t
        n = len(images)
        say(f"| {sigma} | {np.mean(ours):+.1%} / {max(ours, key=abs):+.1%} | {t_ours / n:.3f} "
            f"| {np.mean(theirs):+.1%} / {max(theirs, key=abs):+.1%} | {t_theirs / n:.3f} |")
        RECORDS["gaussian"].append({"sigma": sigma, "errors": ours, "skimage_errors": theirs,
                                    "s_per_call": t_ours / n, "skimage_s_per_call": t_theirs / n})
    poisson_gaussian(images, args.pg, args.start)
    if args.jpeg:
        jpeg(images, args.jpeg, args.jpeg_sigmas, args.start)
    if args.crops > 0:
        pnp_side_by_side(images[: args.crops], files[: args.crops], args.pnp_iterations)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"noise_estimation_{args.name}.md").write_text("\n".join(LINES) + "\n")
    meta = {"data": args.data, "start": args.start, "images": [f.name for f in files], "cpu": cpu, "threads": 1,
            "date": time.strftime("%Y-%m-%d", time.gmtime())}
    (RESULTS / f"noise_estimation_{args.name}.json").write_text(json.dumps({**meta, **RECORDS}, indent=1) + "\n")
    return 0


def read_noise_bound(clean, gain: float, sigma: float, within: float = 0.15) -> tuple[float, float]:
    """How well any unbiased estimator can find the read noise ``sigma`` of one image, even knowing it clean.

    Returns ``(relative_sd, p_within)``: the Cramer-Rao bound on the standard deviation of the estimated
    ``sigma`` over ``sigma``, and the chance that such an estimator lands within ``within`` of ``sigma``
    (the estimate of ``sigma^2`` taken as normal with the bound's variance). The model is the
    heteroscedastic Gaussian one of Foi et al. (2008): each value of ``clean`` (any shape, [0, 1]) gets
    independent noise of variance ``v = gain * x + sigma^2``, whose Fisher information about
    ``(gain, sigma^2)`` is ``sum 1 / (2 v^2) [[x^2, x], [x, 1]]``. An estimator that does not know the clean
    image (``estimate_noise``) has less information, so it cannot do better on average.
    """
    from scipy.stats import norm

    x = np.clip(np.asarray(clean, dtype=np.float64).ravel(), 0, None)
    v = gain * x + sigma**2
    w = 0.5 / v**2
    info = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
    det = float(np.linalg.det(info))
    if not np.isfinite(det) or det <= 1e-12 * float(info[0, 0] * info[1, 1]):
        return float("inf"), 0.0  # one intensity only: gain and read noise cannot be told apart
    sd_variance = float(np.sqrt(info[0, 0] / det))  # the (sigma^2, sigma^2) entry of the inverse
    b = sigma**2
    p = norm.cdf(((1 + within) ** 2 - 1) * b / sd_variance) - norm.cdf(((1 - within) ** 2 - 1) * b / sd_variance)
    return sd_variance / (2 * b), float(p)


def read_noise_oracle(clean, noisy, gain: float, sigma: float, rounds: int = 6) -> tuple[float, float]:
    """``(gain, sigma)`` found by an estimator that knows the clean image, so the noise ``noisy - clean`` itself.

    The maximum-likelihood fit of the model :func:`read_noise_bound` assumes: the squared noise against
    the clean intensities by weighted least squares, weights ``1 / v^2`` from the previous round (Fisher
    scoring, started at the true ``gain`` and ``sigma``; it converges to the same fit from any start near
    them). Its spread over draws is the bound's (``tests/test_read_noise_bound.py``); on one draw it shows
    whether that draw's noise itself reads the read noise within 15%, which no blind estimator can be asked
    to beat. Returns a read noise of 0 when the fitted ``sigma^2`` is not positive.
    """
    x = np.clip(np.asarray(clean, dtype=np.float64).ravel(), 0, None)
    squares = (np.asarray(noisy, dtype=np.float64).ravel() - x) ** 2
    design = np.stack([x, np.ones_like(x)], axis=1)
    g, b = float(gain), float(sigma) ** 2
    for _ in range(rounds):
        weight = 1 / np.maximum(g * x + b, 1e-12) ** 2
        normal = design.T @ (design * weight[:, None])
        g, b = np.linalg.lstsq(normal, design.T @ (weight * squares), rcond=None)[0]
    return float(g), float(np.sqrt(max(b, 0.0)))


def poisson_gaussian(images, settings: str, start: int = 0) -> None:
    import restorekit
    from restorekit.degrade import PoissonGaussian

    say()
    say("| gain | sigma | gain error mean / worst | within 15% | sigma error mean / worst | within 15% "
        "| s per call | bound: sigma within 15%, expected (chance of all) | oracle on these draws: sigma within "
        "15% (worst) | flagged uncertain: missed / flagged | not flagged: missed / images |")
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for item in settings.split(","):
        gain, sigma = (float(v) for v in item.split(":"))
        eg, es, spent, bound, flagged, oracle = [], [], 0.0, [], [], []
        for i, x in enumerate(images):
            bound.append(read_noise_bound(x.numpy(), gain, sigma))
            y = PoissonGaussian(gain, sigma).apply(x, seed=start + i)
            oracle.append(read_noise_oracle(x.numpy(), y.numpy(), gain, sigma)[1] / sigma - 1)
            t = time.process_time()
            est = restorekit.estimate_noise(y, model="poisson-gaussian")
            spent += time.process_time() - t
            eg.append(est.gain / gain - 1)
            es.append(est.sigma / sigma - 1)
            flagged.append(est.uncertain)
        n = len(images)
        missed = [abs(e) > 0.15 for e in es]
        hit = sum(m for m, f in zip(missed, flagged) if f)
        rest = sum(m for m, f in zip(missed, flagged) if not f)
        say(f"| {gain} | {sigma} | {np.mean(eg):+.1%} / {max(eg, key=abs):+.1%} | "
            f"{sum(abs(e) <= 0.15 for e in eg)}/{n} | {np.mean(es):+.1%} / {max(es, key=abs):+.1%} | "
            f"{sum(abs(e) <= 0.15 for e in es)}/{n} | {spent / n:.2f} | {sum(b[1] for b in bound):.2f}/{n} "
            f"({np.prod([b[1] for b in bound]):.0%}) | {sum(abs(e) <= 0.15 for e in oracle)}/{n} "
            f"({max(oracle, key=abs):+.1%}) | {hit}/{sum(flagged)} | {rest}/{n - sum(flagged)} |")
        RECORDS["poisson_gaussian"].append({"gain": gain, "sigma": sigma, "gain_errors": eg, "sigma_errors": es,
                                            "s_per_call": spent / n, "bound_relative_sd": [b[0] for b in bound],
                                            "bound_p_within": [b[1] for b in bound], "uncertain": flagged,
                                            "oracle_sigma_errors": oracle})


def _jpeg(x, quality: int):
    import io

    from PIL import Image

    array = (x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    out = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(out).permute(2, 0, 1)[None]


def jpeg(images, qualities: str, sigmas: str, start: int = 0) -> None:
    import restorekit
    from restorekit.degrade import Noise

    say()
    say("| noise-free image, JPEG quality | estimate_noise mean / largest (no noise added: block edges read as "
        "noise would show here) |")
    say("|---|---|")
    for quality in (int(q) for q in qualities.split(",")):
        found = [restorekit.estimate_noise(_jpeg(x, quality)).sigma for x in images]
        say(f"| {quality} | {np.mean(found):.4f} / {max(found):.4f} |")
        RECORDS["jpeg"].append({"sigma": 0.0, "quality": quality, "estimate": found})
    say()
    say("| sigma | JPEG quality | estimate / sigma (mean, worst) | std of the noise JPEG kept / sigma (mean) "
        "| estimate / std of the noise JPEG kept (mean) |")
    say("|---|---|---|---|---|")
    for sigma in (float(s) for s in sigmas.split(",")):
        for quality in (int(q) for q in qualities.split(",")):
            ratio, kept, lefts = [], [], []
            for i, x in enumerate(images):
                y = _jpeg(Noise(sigma).apply(x, seed=start + i), quality)
                left = float((y - _jpeg(x, quality)).std())
                est = restorekit.estimate_noise(y).sigma
                ratio.append(est / sigma)
                kept.append(est / left)
                lefts.append(left / sigma)
            worst = max(ratio, key=lambda r: abs(r - 1))
            say(f"| {sigma} | {quality} | {np.mean(ratio):.2f} ({worst:.2f}) | {np.mean(lefts):.2f} "
                f"| {np.mean(kept):.2f} |")
            RECORDS["jpeg"].append({"sigma": sigma, "quality": quality, "estimate_over_sigma": ratio,
                                    "kept_std_over_sigma": lefts, "estimate_over_kept_std": kept})


def pnp_side_by_side(images, files, iterations: int) -> None:
    import warnings

    import restorekit
    from restorekit.degrade import Blur, Compose, Noise, PoissonGaussian
    from restorekit.kernels import load_kernel
    from restorekit.metrics import psnr

    kernel = load_kernel("levin:1")
    say()
    say("| crop | gain, sigma | iterations | PSNR, Poisson-Gaussian model | PSNR, one sigma (RMS) | gain |")
    say("|---|---|---|---|---|---|")
    for its in (None, iterations):
        pnp = restorekit.create("pnp", progress=False, **({} if its is None else {"iterations": its}))
        diffs = []
        for gain, sigma in ((0.01, 0.01), (0.02, 0.02)):
            for f, x in zip(files, images):
                h, w = x.shape[-2:]
                x = x[..., (h - 128) // 2:(h - 128) // 2 + 128, (w - 128) // 2:(w - 128) // 2 + 128].contiguous()
                pg = Compose(Blur(kernel), PoissonGaussian(gain, sigma))
                y = pg.apply(x, seed=0)
                rms = PoissonGaussian(gain, sigma).observe(y).sigma
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    a = float(psnr(pnp(y, pg), x))
                    b = float(psnr(pnp(y, Compose(Blur(kernel), Noise(rms))), x))
                diffs.append(a - b)
                say(f"| {f.name} | {gain}, {sigma} | {its or 'default'} | {a:.2f} | {b:.2f} | {a - b:+.2f} |")
                RECORDS["pnp"].append({"crop": f.name, "gain": gain, "sigma": sigma, "iterations": its,
                                       "psnr_pg_model": a, "psnr_one_sigma": b})
        say(f"| mean | | {its or 'default'} | | | {np.mean(diffs):+.2f} ({sum(d > 0 for d in diffs)}/"
            f"{len(diffs)} better) |")


if __name__ == "__main__":
    sys.exit(main())
