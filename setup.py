"""Build and install restorekit, its built-in plugins and the compiled extension.

Install after torch, without build isolation (setup.py imports torch)::

    pip install torch==2.14.1 torchvision==0.29.1
    CUDA_HOME=/usr/local/cuda pip install --no-build-isolation -e .

The extension ``restorekit._C`` is built from ``csrc/`` (CPU kernels always;
the CUDA kernels in ``csrc/cuda/`` whenever nvcc and a CUDA build of torch are
present). Environment switches:

``RESTOREKIT_CUDA=0``   build the CPU kernels only, even where nvcc is present.
``RESTOREKIT_CUDA=1``   require the CUDA kernels: fail loudly if they cannot be built.
"""

from __future__ import annotations

import glob
import os

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CUDA_HOME_DEFAULT = "/usr/local/cuda"
BUILTIN_PLUGINS = ["wiener", "dncnn", "unet", "wiener_unet", "mlp_inpaint"]


def _cuda_wanted() -> bool:
    """Whether to compile csrc/cuda: on by default when nvcc and a CUDA torch exist."""
    import torch

    choice = os.environ.get("RESTOREKIT_CUDA", "").strip()
    os.environ.setdefault("CUDA_HOME", CUDA_HOME_DEFAULT)
    nvcc = os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc")
    available = torch.version.cuda is not None and os.path.exists(nvcc)
    if choice == "0":
        return False
    if choice == "1" and not available:
        raise RuntimeError(
            f"RESTOREKIT_CUDA=1 but the CUDA kernels cannot be built: nvcc at {nvcc} "
            f"{'exists' if os.path.exists(nvcc) else 'is missing'}, torch.version.cuda={torch.version.cuda}. "
            "Set CUDA_HOME to the CUDA toolkit or unset RESTOREKIT_CUDA."
        )
    return available


def get_extensions():
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    cpu_sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")))
    cuda_sources = sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
    if not cpu_sources:
        return []
    extra = {"cxx": ["-O3", "-fopenmp"]}
    kwargs = dict(extra_link_args=["-fopenmp"], py_limited_api=False)
    if cuda_sources and _cuda_wanted():
        cuda_home = os.environ["CUDA_HOME"]
        extra["nvcc"] = ["-O3", "--expt-relaxed-constexpr"]
        return [
            CUDAExtension(
                "restorekit._C",
                cpu_sources + cuda_sources,
                define_macros=[("RESTOREKIT_WITH_CUDA", "1")],
                extra_compile_args=extra,
                library_dirs=[os.path.join(cuda_home, "lib"), os.path.join(cuda_home, "lib64")],
                libraries=["cublas"],
                **kwargs,
            )
        ]
    return [CppExtension("restorekit._C", cpu_sources, extra_compile_args=extra, **kwargs)]


def _cmdclass():
    from torch.utils.cpp_extension import BuildExtension

    return {"build_ext": BuildExtension.with_options(use_ninja=True)}


setup(
    name="restorekit",
    version="0.1.0",
    description="Plugin-based image restoration on PyTorch with a compiled C++/CUDA core",
    long_description=open(os.path.join(ROOT, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["restorekit", "restorekit.*"])
    + ["restorekit_plugins"]
    + [f"restorekit_plugins.{p}" for p in BUILTIN_PLUGINS],
    package_dir={"restorekit_plugins": "plugins"},
    package_data={
        "restorekit": ["data/*.npy", "data/*.json"],
        "restorekit_plugins": ["*/weights/*.pt", "*/weights/*.json"],
    },
    include_package_data=False,
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.1",
        "numpy",
        "scikit-image",
        "pluggy>=1.3",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "test": ["pytest", "hypothesis"],
        "bm3d": ["bm3d"],
    },
    entry_points={
        "console_scripts": ["restorekit = restorekit.cli.main:main"],
        "restorekit.plugins": [f"{p} = restorekit_plugins.{p}" for p in BUILTIN_PLUGINS],
    },
    ext_modules=get_extensions(),
    cmdclass=_cmdclass(),
    zip_safe=False,
)
