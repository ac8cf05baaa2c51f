"""Choose the prior's architecture by measured quality per CPU second (issue 13).

Trains each candidate denoiser from scratch on the same random 64x64 CBSD432 crops with the same
noise (sigma drawn per crop: 90% uniform in [0, 0.21], 10% uniform in [0, 0.01]), interleaved in
rounds so that a busy machine slows every candidate alike, and counts each candidate's own CPU
seconds (``time.thread_time``, one thread). After every round it prints the validation PSNR at
sigma 0.1 on the central 128x128 crops of CBSD432's last 8 images (the sigma given to the model),
with the inference time of one 481x321 colour image, and finally writes the curves as JSON and PNG.

Run::

    OMP_NUM_THREADS=1 python benchmarks/compare_prior_architectures.py --rounds 30,60,120,180 \
        --out benchmarks/results/prior_architectures
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from drunet.model import DRUNet  # noqa: E402
from ffdnet.model import FFDNet  # noqa: E402

from restorekit.degrade import Noise  # noqa: E402
from restorekit.training.machine import cpu_name  # noqa: E402

CANDIDATES = {
    "ffdnet 10x32": lambda: FFDNet(3, 10, 32),
    "drunet 16-128 b2": lambda: DRUNet(3, (16, 32, 64, 128), 2),
    "drunet 32-256 b1": lambda: DRUNet(3, (32, 64, 128, 256), 1),
    "drunet 24-192 b2": lambda: DRUNet(3, (24, 48, 96, 192), 2),
}




def draw_sigmas(n: int, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, generator=g)
    low = torch.rand(n, generator=g) < 0.1
    return torch.where(low, u * 0.01, u * 0.21)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/CBSD432"))
    ap.add_argument("--rounds", default="30,60,120,180", help="cumulative CPU seconds per candidate")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/prior_architectures"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    from restorekit.metrics import psnr
    from restorekit.training import load_images

    images = load_images(args.data, progress=False)
    train, val = images[:-8], images[-8:]
    gval = torch.Generator().manual_seed(123)
    val_clean = []
    for im in val:
        _, h, w = im.shape
        val_clean.append(im[:, h // 2 - 64:h // 2 + 64, w // 2 - 64:w // 2 + 64])
    val_clean = torch.stack(val_clean)
    val_noisy = Noise(0.1).apply(val_clean, generator=gval)  # restorekit.degrade's noise
    val_in = torch.cat([val_noisy, torch.full_like(val_clean[:, :1], 0.1)], 1)
    big = torch.rand(1, 4, 321, 481)

    state = {}
    for name, make in CANDIDATES.items():
        torch.manual_seed(0)
        net = make()
        with torch.no_grad():
            net(big)
            t = time.perf_counter()
            net(big)
            infer = time.perf_counter() - t
        state[name] = {"net": net, "opt": torch.optim.Adam(net.parameters(), lr=args.lr),
                       "gen": torch.Generator().manual_seed(1), "cpu": 0.0, "steps": 0,
                       "curve": [], "infer_s": infer,
                       "params": sum(p.numel() for p in net.parameters())}
    rounds = [float(r) for r in args.rounds.split(",")]
    for budget in rounds:
        for name, s in state.items():
            net, opt, g = s["net"], s["opt"], s["gen"]
            while s["cpu"] < budget:
                t0 = time.thread_time()
                idx = torch.randint(len(train), (args.batch,), generator=g)
                crops = []
                for i in idx.tolist():
                    im = train[i]
                    _, h, w = im.shape
                    y = int(torch.randint(h - args.patch + 1, (1,), generator=g))
                    x = int(torch.randint(w - args.patch + 1, (1,), generator=g))
                    c = im[:, y:y + args.patch, x:x + args.patch]
                    if torch.rand(1, generator=g) < 0.5:
                        c = c.flip(-1)
                    c = torch.rot90(c, int(torch.randint(4, (1,), generator=g)), (-2, -1))
                    crops.append(c)
                clean = torch.stack(crops)
                sig = draw_sigmas(args.batch, g).view(-1, 1, 1, 1)
                noisy = Noise(sig.flatten()).apply(clean, generator=g)  # one sigma per crop
                inp = torch.cat([noisy, sig.expand(-1, 1, args.patch, args.patch)], 1)
                loss = torch.nn.functional.mse_loss(net(inp), clean)
                opt.zero_grad()
                loss.backward()
                opt.step()
                s["steps"] += 1
                s["cpu"] += time.thread_time() - t0
            with torch.no_grad():
                net.eval()
                value = float(psnr(net(val_in).clamp(0, 1), val_clean))
                net.train()
            s["curve"].append({"cpu_s": round(s["cpu"], 1), "steps": s["steps"], "val_psnr": round(value, 3)})
            print(f"{name:18s} cpu {s['cpu']:6.0f}s steps {s['steps']:5d} val@0.1 {value:.3f} dB "
                  f"(infer 481x321 {s['infer_s']:.2f}s, {s['params'] / 1e3:.0f}k params)", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"cpu": cpu_name(), "threads": 1, "precision": "float32", "batch": args.batch, "patch": args.patch,
              "lr": args.lr, "validation": "CBSD432 last 8 images, central 128x128, sigma 0.1 given",
              "candidates": {n: {k: s[k] for k in ("params", "infer_s", "curve")} for n, s in state.items()}}
    (out / "curves.json").write_text(json.dumps(record, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for n, s in state.items():
        ax.plot([c["cpu_s"] for c in s["curve"]], [c["val_psnr"] for c in s["curve"]], "o-",
                label=f"{n} ({s['infer_s']:.2f} s/img)")
    ax.set_xlabel("training CPU seconds (one thread)")
    ax.set_ylabel("validation PSNR at sigma 0.1 (dB)")
    ax.set_title(f"prior candidates, {record['cpu']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
