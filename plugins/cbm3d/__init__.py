"""CBM3D plugin: a compiled, permissively licensed BM3D / CBM3D denoiser told the noise level.

How it works: the collaborative filtering of Dabov et al. (2007), written from the papers in
restorekit's compiled core (``csrc/bm3d_cpu.cpp`` with OpenMP, ``csrc/cuda/bm3d_cuda.cu``; the op
``torch.ops.restorekit.bm3d``). A colour image is taken to the opponent colour space; similar 8x8
blocks are grouped by matching on the luminance, and each group is filtered in a 3-D transform
domain, the same groups serving the two chrominances. Stage 1 hard-thresholds the groups' spectra;
stage 2 matches again on its estimate and applies the empirical Wiener filter. Gray images run
the same two stages on their one channel. See :mod:`restorekit_plugins.cbm3d.restorer` for the
profile. It declares ``uses_noise_level``, so ``pnp`` can use it as its prior
(``--param denoiser=cbm3d``).

The ``bm3d`` restorer of the restorekit-skimage example (the ``bm3d`` PyPI package, free for
non-commercial use only) stays the reference it is measured against
(``benchmarks/bench_cbm3d.py``).
"""

from restorekit import hookimpl


@hookimpl
def register_restorers(register):
    # The class is the one declaration of name, tasks and parameters; its module imports no torch.
    from .restorer import CBM3DRestorer

    register(CBM3DRestorer)
