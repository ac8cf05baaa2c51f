"""Blind deblurring of photos saved as JPEG: refinement settings side by side, as restore --kernel auto runs them.

Issue 14's benchmark (bench_blind.py) blurs with a circular border and keeps the noise as drawn; a
photo has borders and is saved lossily. Here each case (a CBSD68 image and one of Levin's kernels) is
blurred with the reflect border, given Gaussian noise of --sigma (seed = image index), clipped to
[0, 1], saved as JPEG at --quality (PIL) and read back; then every --settings entry
ROUNDS:RELAXATION[:STARTS] restores it blind as 'restore --method pnp --kernel auto' does
(blind_degradation with the estimated noise level, the coarse-to-fine estimate run from STARTS, e.g.
horizontal or vertical+diagonal, default the estimator's KERNEL_STARTS, the kernel refined ROUNDS
times, each round moving it RELAXATION times its re-estimate's step; then pnp). The score is the PSNR up to a shift (restorekit.bench_blind.sse_upto_shift, 15-pixel
border left out) against the clean image, and each setting's gain over the first.

Writes (atomically) benchmarks/results/blind_jpeg.{md,json} (--out).

Run:
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_blind_jpeg.py
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_blind_jpeg.py --settings 5:2:horizontal,5:2 \
      --out benchmarks/results/blind_jpeg_starts     # estimator version 5's one start against version 6's two
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("RESTOREKIT_DATA", HERE.parent.parent / "shared" / "data"))
#: (image index in CBSD68's sorted order, Levin kernel): 8 images, each kernel once.
CASES = "0:2,3:5,6:1,9:6,12:3,15:8,18:4,1:7"


def parse_pairs(text: str, what: str, kinds: tuple[type, ...], optional: int = 0) -> list[tuple]:
    """``"A:B,C:D"`` as ``[(A, B), (C, D)]`` converted by ``kinds``, or a one-line error naming ``what``.

    The last ``optional`` fields may be left out of an item (they are then ``None``)."""
    try:
        items = []
        for item in text.split(","):
            fields = item.split(":")
            if not len(kinds) - optional <= len(fields) <= len(kinds):
                raise ValueError(item)
            items.append(tuple(kind(v) for kind, v in zip(kinds, fields)) + (None,) * (len(kinds) - len(fields)))
        return items
    except ValueError:
        letters, need = "ABCD"[:len(kinds)], len(kinds) - optional
        shape = ":".join(letters[:need]) + "".join(f"[:{c}]" for c in letters[need:])
        noun = "pairs" if shape == "A:B" else "items"
        raise SystemExit(f"error: {what} takes {shape} {noun} separated by commas, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA / "CBSD68"), help="clean images (default: CBSD68)")
    parser.add_argument("--cases", default=CASES, help=f"IMAGE_INDEX:LEVIN_KERNEL,... (default {CASES})")
    parser.add_argument("--settings", default="3:1,5:2",
                        help="ROUNDS:RELAXATION[:STARTS],... refinement settings (STARTS: the estimate's starts "
                             "joined by +, e.g. horizontal or vertical+diagonal; default the estimator's); the first "
                             "is the reference (default 3:1,5:2: version 4's refinement, then version 5's)")
    parser.add_argument("--sigma", type=float, default=0.01, help="noise level before the JPEG (default 0.01)")
    parser.add_argument("--quality", type=int, default=75, help="JPEG quality (default 75)")
    parser.add_argument("--size", type=int, default=31, help="estimated kernel size (default 31)")
    parser.add_argument("--out", default=str(HERE / "results" / "blind_jpeg"), help="output stem (.md, .json)")
    args = parser.parse_args(argv)
    cases = parse_pairs(args.cases, "--cases", (int, int))
    settings = parse_pairs(args.settings, "--settings", (int, float, str), optional=1)

    import numpy as np
    import torch
    from PIL import Image

    from restorekit import create
    from restorekit.atomic import write_text_atomic
    from restorekit.bench import _load, collect_images, cpu_model
    from restorekit.bench_blind import _psnr_upto_shift, sse_upto_shift
    from restorekit.degrade import Blur, Compose, Noise
    from restorekit.errors import InputError
    from restorekit.estimate.kernel import KERNEL_STARTS, blind_degradation, check_relaxation, check_rounds, check_starts
    from restorekit.kernels import load_kernel

    try:
        settings = [(check_rounds(rounds, "ROUNDS"), check_relaxation(relaxation),
                     check_starts(KERNEL_STARTS if starts is None else starts.split("+")))
                    for rounds, relaxation, starts in settings]
    except InputError as error:
        raise SystemExit(f"error: --settings: {error}") from None
    torch.set_num_threads(1)
    sources = collect_images(args.data)
    pnp = create("pnp", progress=False)
    rows, lines = [], []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    names = [f"{r} rounds x{x:g}, {'+'.join(st)}" for r, x, st in settings]
    say(f"Blind `pnp` on JPEGs (quality {args.quality}, noise {args.sigma:g} before it, reflect border), PSNR up to "
        f"shift (dB); CPU: {cpu_model()}, one thread")
    say("")
    say("| image | kernel | " + " | ".join(names) + " | " + " | ".join(f"{n} - {names[0]}" for n in names[1:]) + " |")
    say("| --- | --- | " + " | ".join("---:" for _ in range(2 * len(names) - 1)) + " |")
    started = time.perf_counter()
    for index, kernel_number in cases:
        if not 0 <= index < len(sources):
            raise SystemExit(f"error: image index {index} is outside the {len(sources)} images of {args.data}")
        name, path = sources[index]
        x = _load(path)
        x = x[None] if x.ndim == 3 else x
        kernel = load_kernel(f"levin:{kernel_number}").to(x.dtype)
        y = Compose(Blur(kernel, "reflect"), Noise(args.sigma)).apply(x, seed=index).clamp(0, 1)
        buffer = io.BytesIO()
        pixels = (y[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(buffer, "JPEG", quality=args.quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255
        y_jpeg = torch.from_numpy(decoded.reshape(decoded.shape[0], decoded.shape[1], -1)).permute(2, 0, 1)[None]
        truth = x[0].double().numpy()
        psnrs = []
        for rounds, relaxation, starts in settings:
            degradation, _ = blind_degradation(y_jpeg, args.size, boundary="reflect", deblurrer=pnp, rounds=rounds,
                                               relaxation=relaxation, starts=starts)
            with torch.no_grad():
                restored = pnp(y_jpeg, degradation)[0].double().numpy()
            psnrs.append(_psnr_upto_shift(sse_upto_shift(restored, truth), truth))
        rows.append({"image": name, "kernel": f"levin:{kernel_number}", "psnr": psnrs})
        say(f"| {name} | levin:{kernel_number} | " + " | ".join(f"{p:.2f}" for p in psnrs) + " | "
            + " | ".join(f"{p - psnrs[0]:+.2f}" for p in psnrs[1:]) + " |")
    table = np.array([r["psnr"] for r in rows])
    say("| **mean** | | " + " | ".join(f"{p:.2f}" for p in table.mean(0)) + " | "
        + " | ".join(f"{d:+.3f} ({int((table[:, j] > table[:, 0]).sum())}/{len(rows)} higher)"
                     for j, d in enumerate(table.mean(0)[1:] - table.mean(0)[0], start=1)) + " |")
    say("")
    say(f"wall {time.perf_counter() - started:.0f} s")
    write_text_atomic(args.out + ".md", "\n".join(lines) + "\n")
    write_text_atomic(args.out + ".json", json.dumps({"settings": [list(s) for s in settings], "sigma": args.sigma,
                                                      "quality": args.quality, "cpu": cpu_model(), "cases": rows},
                                                     indent=1) + "\n")
    print(f"wrote {args.out}.md, {args.out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
