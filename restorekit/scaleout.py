"""Spreading ``restore`` and ``bench`` over processes started by ``torchrun``.

Launched by ``torchrun`` (``WORLD_SIZE`` > 1), a command joins the process
group of :mod:`restorekit.training.distributed` (gloo on the CPU, nccl on
GPUs), takes its share of the inputs with :func:`shard` (items ``rank``,
``rank + world_size``, ...), and hands what it measured or did to every
process with :func:`gather`; rank 0 then reports for all. Without
``torchrun`` the context is a single process and nothing changes::

    torchrun --nproc-per-node 4 -m restorekit.cli.main restore photos/ -o clean/ --method dncnn
    torchrun --nnodes 2 --nproc-per-node 8 ... -m restorekit.cli.main bench --data DIR --task denoise

Examples
--------
>>> from restorekit.scaleout import shard
>>> from restorekit.training.distributed import DistContext
>>> shard(list("abcde"), DistContext(rank=1, world_size=2))
['b', 'd']
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence, TypeVar

from .errors import RestorekitError
from .training.distributed import DistContext, cleanup, launched_by_torchrun, setup

T = TypeVar("T")


def start(device: str = "cpu") -> DistContext:
    """Join the ``torchrun`` process group (a single-process context without ``torchrun``).

    ``device`` ``"cuda"`` puts each process on GPU ``LOCAL_RANK`` (nccl);
    anything else uses gloo on the CPU.
    """
    if not launched_by_torchrun():
        return DistContext(device=str(device))
    return setup("cuda" if str(device).startswith("cuda") else "cpu")


def stop(ctx: DistContext) -> None:
    """Leave the process group joined by :func:`start`."""
    cleanup(ctx)


def shard(items: Sequence[T], ctx: DistContext) -> list[T]:
    """This process's share of ``items``: every ``world_size``-th one from index ``rank``."""
    return list(items[ctx.rank :: ctx.world_size])


def shard_indices(count: int, ctx: DistContext) -> range:
    """The indices of this process's share of ``count`` items (as :func:`shard` picks them)."""
    return range(ctx.rank, count, ctx.world_size)


def gather(obj: Any, ctx: DistContext) -> list[Any]:
    """``obj`` of every process, in rank order, on every process (``[obj]`` in a single process).

    ``obj`` must be picklable (``torch.distributed.all_gather_object``).
    """
    if not ctx.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def run_everywhere(work: Callable[[], T], ctx: DistContext) -> list[T]:
    """Call ``work()`` in every process and give every process all the results, in rank order.

    If ``work`` raises a :class:`~restorekit.errors.RestorekitError` in any
    process, every process raises one (its own, or the lowest failing
    rank's message), instead of the others waiting for it forever. The
    error carries ``failed_rank`` and ``reported_by_rank_0 = True``: the CLI
    reports it once, from rank 0, naming the rank.
    """
    try:
        value, error = work(), None
    except RestorekitError as exc:
        value, error = None, exc
    if not ctx.distributed:
        if error is not None:
            raise error
        return [value]
    parts = gather((error is None, value if error is None else str(error)), ctx)
    for rank, (ok, payload) in enumerate(parts):
        if not ok:
            # Every process raises; only rank 0 reports it (``failed_rank`` names where it happened).
            raised = error if error is not None else RestorekitError(payload)
            raised.failed_rank = ctx.rank if error is not None else rank
            raised.reported_by_rank_0 = True
            raise raised
    return [payload for _, payload in parts]


def merge_bench_results(parts: Sequence[Any]) -> Any:
    """One :class:`~restorekit.bench.BenchResult` from the parts measured by each rank.

    ``parts`` come from :func:`~restorekit.bench.run_benchmark` with
    ``part=(rank, world_size)`` on the same arguments. Per-image records
    are put back in image order and the rows recomputed from them; the
    degraded input's baseline is the image-weighted mean of the parts'. A
    method left out on any rank (it failed on one of its images) is left out
    of the whole result, as in a single process: every method is compared
    on all images or on none.
    """
    from .bench import INPUT_LABEL, BenchResult, BenchRow, _mean_row

    first = parts[0]
    settings = {**first.settings, "processes": len(parts)}
    order = {name: i for i, name in enumerate(settings["image_names"])}
    skipped, seen = [], set()
    for part in parts:
        for item in part.skipped:
            if item.method not in seen:
                seen.add(item.method)
                skipped.append(item)
    by_image = lambda record: order.get(record["image"], len(order))  # noqa: E731 - a sort key
    records = sorted((r for p in parts for r in p.records if r["method"] not in seen), key=by_image)
    rows = [
        _mean_row(spec, sigma, [r for r in records if r["method"] == spec and r["sigma"] == sigma])
        for sigma in settings["sigmas"]
        for spec in settings["methods"]
        if spec not in seen
    ]
    baseline = []
    for j, sigma in enumerate(settings["sigmas"]):
        measured = [p.baseline[j] for p in parts if p.baseline[j].images]
        n = sum(b.images for b in measured)
        mean = (lambda key: sum(getattr(b, key) * b.images for b in measured) / n) if n else (lambda key: math.nan)
        baseline.append(BenchRow(INPUT_LABEL, sigma, mean("psnr"), mean("ssim"), 0.0, n))
    examples = sorted((e for p in parts for e in p.examples), key=lambda e: order.get(e.image, len(order)))
    for example in examples:
        example.outputs = {k: v for k, v in example.outputs.items() if k not in seen}
    return BenchResult(rows=rows, baseline=baseline, records=records, skipped=skipped, settings=settings,
                       examples=examples)


__all__ = ["gather", "merge_bench_results", "run_everywhere", "shard", "shard_indices", "start", "stop"]
