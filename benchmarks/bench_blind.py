"""Blind deblurring on CBSD68 x Levin's kernels: the issue-14 "Done when" measurement.

Each of the first --limit CBSD68 images is blurred by each of Levin et al.'s 8 kernels (circular
boundary) with Gaussian noise of sigma 0.01 (image i's noise from seed i), then restored by pnp
twice: with the kernel (--size x --size) and the noise level estimated from the blurred image
(restorekit.estimate_kernel, refined --refine times by deblurring with the method and re-estimating,
as restore --kernel auto does; restorekit.estimate.kernel.estimate_sigma), and with the true kernel
and sigma. The score is Levin's error ratio (blind SSE over known-kernel SSE, each up to a shift,
restorekit.bench_blind.sse_upto_shift). Targets: ratio <= 3 for >= 95% of the cases, mean ratio
<= 1.5, <= 30 s per 481x321 image for estimation plus restoration on one thread.

Writes (atomically, after every case, so a stopped run keeps what it measured and a rerun with the
same --json resumes): the JSON of every case (ratios, PSNRs, seconds, estimated kernels), the
Markdown table and the figure of estimated against true kernels.

--report-only rewrites the table and figure from the JSON without running (a stopped run).

Run (one thread, niced, on the shared machine):
  OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/bench_blind.py --limit 20
or split over two cores, then joined:
  for r in 0 1; do OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_blind.py --part $r/2 & done; wait
  .venv/bin/python benchmarks/bench_blind.py --merge 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("RESTOREKIT_DATA", HERE.parent.parent / "shared" / "data"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA / "CBSD68"), help="clean images (default: CBSD68)")
    parser.add_argument("--limit", type=int, default=20, help="first N images (default 20)")
    parser.add_argument("--kernels", default="levin:all", help="kernel set (default levin:all)")
    parser.add_argument("--method", default="pnp", help="deblurrer for both restorations (default pnp)")
    parser.add_argument("--sigma", type=float, default=0.01, help="true noise level (default 0.01)")
    parser.add_argument("--size", type=int, default=31, help="estimated kernel size (default 31)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default=str(HERE / "results" / "blind_cbsd68_levin"),
                        help="output stem: STEM.json, STEM.md (default benchmarks/results/blind_cbsd68_levin)")
    parser.add_argument("--figure", default=str(HERE / "figures" / "blind_kernels_levin.png"),
                        help="figure of estimated against true kernels")
    parser.add_argument("--report-only", action="store_true",
                        help="do not run: write the table and figure from STEM.json as it stands (e.g. a stopped run)")
    parser.add_argument("--refine", type=int, default=None, metavar="N",
                        help="rounds of the kernel's refinement with the method (default: restore --kernel auto's, "
                             "restorekit.estimate.kernel.REFINE_ROUNDS; 0: the coarse-to-fine estimate alone)")
    parser.add_argument("--part", default=None, metavar="R/W",
                        help="run only part R of W (cases R, R+W, ...) into STEM.partR.json, e.g. one process per "
                             "core; then --merge W")
    parser.add_argument("--merge", type=int, default=None, metavar="W",
                        help="join STEM.part0.json ... STEM.part{W-1}.json into STEM.json, table and figure")
    args = parser.parse_args(argv)

    import torch

    from restorekit.bench import cpu_model
    from restorekit.bench_blind import GOOD_RATIO, BlindResult, run_blind_benchmark

    torch.set_num_threads(args.threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)

    def report(case) -> None:
        print(f"{case.image} {case.kernel}: ratio {case.ratio:.2f}, PSNR blind {case.psnr_blind:.2f} / known "
              f"{case.psnr_known:.2f} dB, sigma est {case.sigma_estimated:.4f}, {case.seconds_estimate:.1f} s "
              f"estimate + restore {case.seconds_blind:.1f} s (CPU {case.cpu_seconds_blind:.1f} s)", flush=True)

    started = time.perf_counter()
    if args.part is not None:
        try:
            rank, world = (int(v) for v in args.part.split("/"))
        except ValueError:
            parser.error(f"--part takes R/W such as 0/2, got {args.part!r}")
        result = run_blind_benchmark(args.data, args.kernels, args.method, sigma=args.sigma, size=args.size,
                                     limit=args.limit, checkpoint=f"{args.out}.part{rank}.json", progress=False,
                                     report=report, refine=args.refine, part=(rank, world))
        print(f"part {rank}/{world}: {len(result.cases)} cases in {args.out}.part{rank}.json; join with --merge {world}")
        return 0
    if args.merge is not None:
        result = BlindResult.merge([BlindResult.from_json(f"{args.out}.part{r}.json") for r in range(args.merge)])
    elif args.report_only:
        result = BlindResult.from_json(args.out + ".json")
    else:
        result = run_blind_benchmark(args.data, args.kernels, args.method, sigma=args.sigma, size=args.size,
                                     limit=args.limit, checkpoint=args.out + ".json", progress=False, report=report,
                                     refine=args.refine)
    result.write_json(args.out + ".json")
    result.write_markdown(args.out + ".md")
    result.figure(args.figure, images=8)
    print(result.to_markdown())
    seconds = [c.cpu_seconds_blind if c.cpu_seconds_blind == c.cpu_seconds_blind else c.seconds_blind
               for c in result.cases]  # CPU time where recorded: one unshared thread
    print(f"CPU: {cpu_model()}, torch threads {torch.get_num_threads()}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; wall {time.perf_counter() - started:.0f} s")
    print(f"targets: ratio <= {GOOD_RATIO:g} for {100 * result.share_good:.1f}% of {len(result.cases)} cases "
          f"(target >= 95%): {'met' if result.share_good >= 0.95 else 'MISSED'}; mean ratio {result.mean_ratio:.3f} "
          f"(target <= 1.5): {'met' if result.mean_ratio <= 1.5 else 'MISSED'}; max seconds per image, CPU time where recorded, "
          f"{max(seconds):.1f} (target <= 30): {'met' if max(seconds) <= 30 else 'MISSED'}")
    print(f"wrote {args.out}.json, {args.out}.md, {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
