"""Loading the compiled extension ``restorekit._C``, and saying clearly when it is missing.

The extension registers the ops ``torch.ops.restorekit.{linear, relu, linear_relu}`` and their
backward ops. Nothing here builds anything at import: :func:`load` imports the already built
module, :func:`load_jit` compiles ``csrc/`` just in time (development only, needs ninja and a
compiler).

Loading is in the shape of pytorch/extension-cpp, in one direction: this module imports the
compiled module (``restorekit._C``, or the JIT build), then :mod:`restorekit.nn.ops`, whose import
registers the ops' fake kernels. ``ops`` imports nothing from here.

Examples
--------
>>> from restorekit.nn import extension
>>> info = extension.status()          # what `restorekit doctor` prints
>>> info["built"] in (True, False) and "cuda kernels" in info
True
>>> if extension.available():
...     import torch
...     y = torch.ops.restorekit.relu(torch.tensor([-1.0, 2.0]))
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ExtensionMissingError

BUILD_HINT = (
    "Build it from the source checkout with "
    "'CUDA_HOME=/usr/local/cuda pip install --no-build-isolation -e .' (or 'make build'); "
    "RESTOREKIT_CUDA=0 builds the CPU kernels only. For development, "
    "restorekit.nn.extension.load_jit() compiles csrc/ just in time. "
    "Meanwhile backend='python' uses the reference autograd Functions."
)

_module: ModuleType | None = None
_error: str | None = None
_tried = False
_warned = False


def _import_compiled() -> ModuleType:
    """Import the built extension (a separate function so tests can simulate its absence)."""
    return importlib.import_module("restorekit._C")


def _finish(module: ModuleType) -> ModuleType:
    """Record ``module`` (which has defined the ops) as the extension, then import ``ops``.

    Importing :mod:`restorekit.nn.ops` registers the fake kernels, as extension-cpp's package
    ``__init__`` does with ``from . import _C, ops``.
    """
    global _module, _error, _tried
    importlib.import_module(f"{__package__}.ops")
    importlib.import_module(f"{__package__}.bm3d_ops").register_fake()  # False for a build without bm3d
    _module, _error, _tried = module, None, True
    return module


def load() -> ModuleType:
    """Import ``restorekit._C`` (once), then :mod:`restorekit.nn.ops` (the ops' fake kernels).

    Returns
    -------
    module
        The extension module; its attribute ``cuda_built`` says whether it has CUDA kernels.

    Raises
    ------
    ExtensionMissingError
        When the extension is not built (or fails to load), with the reason and how to build it.
    """
    global _error, _tried
    if _module is not None:
        return _module
    if not _tried:
        _tried = True
        try:
            return _finish(_import_compiled())
        except ImportError as exc:  # OSError from dlopen surfaces as ImportError too
            _error = f"{type(exc).__name__}: {exc}"
    raise ExtensionMissingError(f"The compiled extension restorekit._C is not available ({_error}). {BUILD_HINT}")


def available() -> bool:
    """Whether the compiled ops can be used (the extension is built and loads)."""
    try:
        load()
    except ExtensionMissingError:
        return False
    return True


def cuda_built() -> bool:
    """Whether the loaded extension contains the CUDA kernels (False if it is not loaded)."""
    return available() and bool(getattr(_module, "cuda_built", False))


def warn_missing_once(stacklevel: int = 3) -> None:
    """Warn (once per process) that the Python fallback is used because the extension is missing."""
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"restorekit._C is not available ({_error}); using the slower Python reference backend. {BUILD_HINT}",
        RuntimeWarning,
        stacklevel=stacklevel,
    )


def status() -> dict[str, Any]:
    """What ``restorekit doctor`` prints about the extension.

    Returns
    -------
    dict
        ``built`` (bool), ``cuda kernels`` (built / not built / n.a.), ``GPU`` (whether torch sees
        one), ``path`` of the loaded module or ``error`` and ``fix`` when it is missing.
    """
    import torch

    ok = available()
    info: dict[str, Any] = {"built": ok}
    if ok:
        info["cuda kernels"] = "built" if cuda_built() else "not built (CPU only; rebuild with RESTOREKIT_CUDA=1)"
        info["path"] = getattr(_module, "__file__", "?")
        info["ops"] = ", ".join(f"restorekit::{name}" for name in getattr(_module, "ops", ()))
    else:
        info["cuda kernels"] = "n.a."
        info["error"] = _error
        info["fix"] = BUILD_HINT
    info["GPU"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none visible"
    return info


def source_dir() -> Path:
    """The ``csrc/`` folder of the source checkout this package was installed from (editable)."""
    return Path(__file__).resolve().parents[2] / "csrc"


def load_jit(with_cuda: bool | None = None, verbose: bool = False) -> ModuleType:
    """Compile ``csrc/`` just in time with ninja and load it (for development).

    Use it instead of ``restorekit._C``, not beside it: both register the same op namespace, so if
    the ops are already loaded this returns the loaded module without compiling.

    Parameters
    ----------
    with_cuda : bool, optional
        Compile the CUDA kernels too. Default: when torch has CUDA and ``CUDA_HOME`` has nvcc.
    verbose : bool
        Show the compiler's output.

    Returns
    -------
    module
        The JIT-built extension (cached under ``TORCH_EXTENSIONS_DIR``, by default
        ``~/.cache/torch_extensions``; later calls reuse the build while the sources are unchanged).

    Examples
    --------
    >>> from restorekit.nn import extension
    >>> ext = extension.load_jit(with_cuda=False)  # doctest: +SKIP
    >>> ext.cuda_built                             # doctest: +SKIP
    False
    """
    global _module, _error, _tried
    if _module is not None:
        return _module
    import torch
    from torch.utils import cpp_extension

    try:  # ops already registered (by restorekit._C or an earlier JIT build)
        torch.ops.restorekit.linear_relu.default
    except (AttributeError, RuntimeError):
        pass
    else:
        if available():
            return _module  # type: ignore[return-value]
    src = source_dir()
    if not (src / "registration.cpp").exists():
        raise ExtensionMissingError(f"load_jit needs the source checkout; {src} has no registration.cpp. {BUILD_HINT}")
    os.environ.setdefault("CUDA_HOME", "/usr/local/cuda")
    cuda_home = os.environ["CUDA_HOME"]
    if with_cuda is None:
        with_cuda = torch.version.cuda is not None and os.path.exists(os.path.join(cuda_home, "bin", "nvcc"))
    sources = sorted(str(p) for p in src.glob("*.cpp"))
    cflags, cuda_cflags, ldflags = ["-O3", "-fopenmp"], ["-O3", "--expt-relaxed-constexpr"], ["-fopenmp"]
    if with_cuda:
        sources += sorted(str(p) for p in (src / "cuda").glob("*.cu"))
        cflags.append("-DRESTOREKIT_WITH_CUDA=1")
        cuda_cflags.append("-DRESTOREKIT_WITH_CUDA=1")
        includes, libdirs, blas = _cuda_blas_flags(cuda_home)
        system = [arg for d in includes for arg in ("-isystem", d)]
        cflags += system
        cuda_cflags += system
        ldflags += [f"-L{d}" for d in libdirs] + blas
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and torch.cuda.device_count() == 0:
            os.environ["TORCH_CUDA_ARCH_LIST"] = "9.0+PTX"  # nothing to detect: any one architecture
    module = cpp_extension.load(
        name="restorekit_C_jit" + ("_cuda" if with_cuda else ""),
        sources=sources,
        extra_cflags=cflags,
        extra_cuda_cflags=cuda_cflags,
        extra_ldflags=ldflags,
        with_cuda=with_cuda,
        verbose=verbose,
    )
    return _finish(module)


def _cuda_blas_flags(cuda_home: str) -> tuple[list[str], list[str], list[str]]:
    """Include dirs, library dirs and link flags for cuBLAS (as setup.py's _cuda_blas_paths).

    A minimal CUDA toolkit lacks the cuBLAS/cuSPARSE headers and libcublas.so; then they come from
    the NVIDIA wheels torch is installed with.
    """
    import glob

    libdirs = [d for d in (os.path.join(cuda_home, "lib"), os.path.join(cuda_home, "lib64")) if os.path.isdir(d)]
    try:
        import nvidia

        wheels = [d for root in nvidia.__path__ for d in sorted(glob.glob(os.path.join(root, "*")))]
    except ImportError:
        wheels = []
    includes = []
    if not all(os.path.exists(os.path.join(cuda_home, "include", h)) for h in ("cublas_v2.h", "cusparse.h")):
        includes = [os.path.join(d, "include") for d in wheels
                    if any(os.path.exists(os.path.join(d, "include", h)) for h in ("cublas_v2.h", "cusparse.h"))]
    if any(os.path.exists(os.path.join(d, "libcublas.so")) for d in libdirs):
        return includes, libdirs, ["-lcublas"]
    libs = sorted(lib for d in wheels for lib in glob.glob(os.path.join(d, "lib", "libcublas.so.*")))
    if not libs:
        raise ExtensionMissingError(f"load_jit(with_cuda=True): no libcublas under {cuda_home} or the nvidia wheels")
    where = os.path.dirname(libs[0])
    return includes, libdirs, [f"-L{where}", f"-l:{os.path.basename(libs[0])}", f"-Wl,-rpath,{where}"]
