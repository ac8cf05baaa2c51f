"""The README's blind example, end to end: a JPEG'd photo restored with ``restore --method pnp --kernel auto``.

A 256x256 crop of scikit-image's astronaut (rows 0-255, columns 128-383) is blurred by Levin's kernel 2
with the reflect border and noise 0.01 (``restorekit degrade --kernel levin:2 --noise 0.01 --seed 0``),
saved as JPEG at quality 75 (PIL), and restored by the CLI three ways: noise estimated (the blind path's
floor applies), ``--sigma 0.01`` (the true level) and ``--sigma`` the raw estimate (what the floor guards
against). Each result is scored against the clean crop, plain PSNR and PSNR up to a shift (the blind
kernel may move the image; ``restorekit.bench_blind.sse_upto_shift``, as the blind benchmark scores).

Run from the repository root (one thread, about a minute)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/blind_photo_example.py

Writes ``benchmarks/results/blind_photo_example.{json,md}`` (atomically).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _restorekit(*args: str) -> str:
    """Run ``python -m restorekit ARGS`` (this interpreter's install); its stderr, which reports the estimates."""
    done = subprocess.run([sys.executable, "-m", "restorekit", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"restorekit {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout + done.stderr


def _scores(image: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    from restorekit.bench_blind import _psnr_upto_shift, sse_upto_shift
    from restorekit.metrics import psnr

    a, b = image.transpose(2, 0, 1)[None], clean.transpose(2, 0, 1)[None]
    return float(psnr(a, b)), float(_psnr_upto_shift(sse_upto_shift(a, b), b))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=75, help="JPEG quality (default 75)")
    parser.add_argument("--out", default=str(HERE / "results" / "blind_photo_example"),
                        help="output stem: STEM.json and STEM.md (default benchmarks/results/blind_photo_example)")
    args = parser.parse_args(argv)

    import skimage.data
    from PIL import Image

    from restorekit.atomic import write_text_atomic
    from restorekit.bench import cpu_model

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        Image.fromarray(skimage.data.astronaut()[0:256, 128:384]).save(work / "clean.png")
        clean = np.asarray(Image.open(work / "clean.png"), dtype=np.float32) / 255
        _restorekit("degrade", str(work / "clean.png"), "-o", str(work / "blurred.npy"), "--kernel", "levin:2",
                    "--noise", "0.01", "--seed", "0", "--boundary", "reflect")
        blurred = np.load(work / "blurred.npy")
        buffer = io.BytesIO()
        Image.fromarray((np.clip(blurred, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buffer, "JPEG",
                                                                                    quality=args.quality)
        (work / "photo.jpg").write_bytes(buffer.getvalue())
        photo = np.asarray(Image.open(work / "photo.jpg"), dtype=np.float32) / 255
        plain, shifted = _scores(photo, clean)
        rows = [{"run": "the JPEG (input)", "psnr": plain, "psnr_upto_shift": shifted}]
        raw_estimate = None
        for label, extra in (("sigma estimated", []), ("--sigma 0.01 (true)", ["--sigma", "0.01"]),
                             ("--sigma the raw estimate", None)):
            if extra is None:
                extra = ["--sigma", f"{raw_estimate:.4f}"]
            said = _restorekit("restore", str(work / "photo.jpg"), "-o", str(work / "out.png"), "--method", "pnp",
                               "--kernel", "auto", "--no-progress", *extra)
            found = re.search(r"estimated ([0-9.]+), raised", said) or re.search(r"noise sigma ([0-9.]+) \(estimated", said)
            if raw_estimate is None and found:
                raw_estimate = float(found.group(1))
            out = np.asarray(Image.open(work / "out.png"), dtype=np.float32) / 255
            plain, shifted = _scores(out, clean)
            line = next((ln for ln in said.splitlines() if "estimated kernel" in ln), "").split(": ", 1)[-1]
            rows.append({"run": f"restore --method pnp --kernel auto, {label}", "psnr": plain,
                         "psnr_upto_shift": shifted, "said": line})
            print(f"{label}: {plain:.2f} dB ({shifted:.2f} up to shift); {line}", flush=True)
    md = ["Blind example: astronaut crop (rows 0-255, columns 128-383), Levin's kernel 2 (reflect), noise 0.01, "
          f"JPEG quality {args.quality}; `restore --method pnp --kernel auto` with the shipped prior.", "",
          "| run | PSNR (dB) | PSNR up to shift (dB) | what restore said |", "| --- | ---: | ---: | --- |"]
    md += [f"| {r['run']} | {r['psnr']:.2f} | {r['psnr_upto_shift']:.2f} | {r.get('said', '')} |" for r in rows]
    md += ["", f"Machine: {cpu_model()}, one thread (OMP_NUM_THREADS=1)."]
    stem = Path(args.out)
    write_text_atomic(stem.with_suffix(".md"), "\n".join(md) + "\n")
    write_text_atomic(stem.with_suffix(".json"), json.dumps({"quality": args.quality, "cpu": cpu_model(),
                                                             "rows": rows}, indent=1) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
