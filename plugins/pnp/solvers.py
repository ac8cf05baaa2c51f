"""Half-quadratic splitting and ADMM with a denoiser in place of the prior's proximal step.

Both minimise ``||y - A x||^2 + prior(x)`` by splitting ``x`` from a copy
``z`` the prior acts on, alternating

* the data step ``x = argmin_x ||y - A x||^2 + rho_k ||x - v||^2``
  (``data_step(v, rho_k)``, the degradation's ``prox``), and
* the prior step ``z = denoise(x', k)``: the denoiser at level ``sigma_k``.

HQS (DPIR's solver) uses ``v = z``. ADMM adds the scaled dual ``u``:
``v = z - u``, the denoiser gets ``x + u``, then ``u += x - z``; as ``rho_k``
grows from one iteration to the next, ``u`` is rescaled by
``rho_{k-1} / rho_k`` so the unscaled multiplier is kept (Boyd et al.,
"Distributed Optimization and Statistical Learning via ADMM", 2011, 3.4.1).
Both return the last denoiser output, or with ``average=N`` the mean of the
last ``N`` denoiser outputs (with ``ensemble`` cycling, each seen in another
flip or rotation: a self-ensemble of the final iterates at no extra cost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:  # pragma: no cover - no torch at registration (params.py imports SOLVERS)
    import torch

DataStep = Callable[["torch.Tensor", float], "torch.Tensor"]
Denoise = Callable[["torch.Tensor", int], "torch.Tensor"]

SOLVERS = ("hqs", "admm")


class _Tail:
    """The mean of the denoiser outputs of the last ``count`` of ``total`` iterations (at least the last one)."""

    def __init__(self, total: int, count: int) -> None:
        self.first = total - max(1, min(int(count), total))
        self.sum = None
        self.seen = 0

    def add(self, k: int, z: torch.Tensor) -> None:
        if k >= self.first:
            self.sum = z.clone() if self.sum is None else self.sum.add_(z)
            self.seen += 1

    def mean(self, last: torch.Tensor) -> torch.Tensor:
        return last if self.seen <= 1 else self.sum / self.seen


def hqs(data_step: DataStep, denoise: Denoise, x0: torch.Tensor, rhos: list[float],
        steps: Iterable[int] | None = None, average: int = 1) -> torch.Tensor:
    """Half-quadratic splitting from ``x0``: ``z = denoise(data_step(z, rho_k), k)`` for each ``k``.

    ``steps`` iterates over ``range(len(rhos))`` (a progress bar may wrap it);
    the result is the mean of the last ``average`` denoiser outputs.
    """
    z = x0
    tail = _Tail(len(rhos), average)
    for k in steps if steps is not None else range(len(rhos)):
        z = denoise(data_step(z, rhos[k]), k)
        tail.add(k, z)
    return tail.mean(z)


def admm(data_step: DataStep, denoise: Denoise, x0: torch.Tensor, rhos: list[float],
         steps: Iterable[int] | None = None, average: int = 1) -> torch.Tensor:
    """ADMM from ``z = x0``, ``u = 0`` with the penalty ``rho_k`` of each iteration ``k``; as :func:`hqs` returns."""
    z = x0
    tail = _Tail(len(rhos), average)
    u = x0.new_zeros(x0.shape)
    previous = None
    for k in steps if steps is not None else range(len(rhos)):
        rho = rhos[k]
        if previous is not None:
            u = u * (previous / rho)
        x = data_step(z - u, rho)
        z = denoise(x + u, k)
        tail.add(k, z)
        u = u + x - z
        previous = rho
    return tail.mean(z)


def solver(name: str) -> Callable[..., "torch.Tensor"]:
    """The solver function called ``name`` (one of :data:`SOLVERS`)."""
    return {"hqs": hqs, "admm": admm}[name]
