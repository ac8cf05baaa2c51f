"""Plug-and-play plugin: any registered denoiser restores blur, missing pixels and low resolution.

How it works: ``pnp`` solves ``min_x ||y - A x||^2 + prior(x)`` by splitting
(half-quadratic splitting, DPIR's solver, for deblurring; ADMM for inpainting
and super-resolution; ``solvers.py``). Each
iteration alternates the data step, the degradation's closed-form or
conjugate-gradient proximal operator ``degradation.prox(y, z, rho_k)``, with
the prior step, a call of the denoiser named by ``denoiser`` through the
public Restorer interface, ``denoiser(x, Noise(sigma_k))``. ``sigma_k`` falls
log-spaced from 49/255 to the measurement's noise level and
``rho_k = rho * sigma^2 / sigma_k^2`` (DPIR's schedule; ``schedule.py``);
inpainting starts from a biharmonic fill and runs from 49/255 to at least
2/255. Iteration ``k`` denoises the ``k % 8``-th flip or rotation of the image
(``ensemble``, on by default; ``ensemble.py``); inpainting and super-resolution
return the mean of the last 8 denoiser outputs (``average``) and, for a
noise-free measurement, one more data step (``final_data_step``). The denoiser is found by name
in the registry that builds ``pnp``, so a third party's denoiser installed by
entry point, or one in a private registry, works unchanged; a blind one
(``uses_noise_level`` False) works too, with a warning, since it cannot follow
the schedule. On the reflect border the data step runs at most
``cg_iterations`` conjugate-gradient iterations (or pads, solves in closed
form and crops: ``reflect_step=pad``, ``datastep.py``).

The solver is also a training path: ``PnPRestorer.forward`` runs the same
iterations differentiably (the gradient through the last 8), so ``fit``
trains a denoiser's network as the prior pnp runs it
(``restorekit train drunet --pnp-share``). A denoiser class may ship weights
trained so for a task (``pnp_weights = {task: weights}``); pnp builds the
denoiser with them for that task (``tuned``, on by default).

Registration is lazy: this file imports no torch; ``restorer.py`` is imported
when the restorer is first built.
"""

from restorekit import RestorerSpec, hookimpl

from .params import PARAMS, SUMMARY

TASKS = frozenset({"deblur", "inpaint", "superresolve"})


@hookimpl
def register_restorers(register):
    register(RestorerSpec(
        name="pnp",
        tasks=TASKS,
        params=PARAMS,
        factory="restorekit_plugins.pnp.restorer:PnPRestorer",
        summary=SUMMARY,
    ))
