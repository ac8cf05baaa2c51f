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
BUILTIN_PLUGINS = ["wiener", "dncnn", "unet", "wiener_unet", "mlp_inpaint", "ffdnet", "interp", "pnp", "drunet", "cbm3d"]


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


# GPU architectures compiled for when TORCH_CUDA_ARCH_LIST is unset and no GPU is visible (CI, a laptop):
# Turing machine code plus its PTX, which every newer GPU (Ampere, Hopper, Blackwell...) compiles once at
# first load. One architecture instead of four keeps a fresh machine's build (and `make demo`) short, since
# kernels built where no GPU is visible cannot run there anyway. With a GPU visible, torch compiles for that
# GPU only (the GPU recipe does); set TORCH_CUDA_ARCH_LIST to choose yourself, e.g. "8.0;9.0;10.0+PTX".
DEFAULT_CUDA_ARCH_LIST = "7.5+PTX"


def _set_cuda_arch_list() -> None:
    import torch

    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and torch.cuda.device_count() == 0:
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_CUDA_ARCH_LIST
        print(f"restorekit: no GPU visible; compiling the CUDA kernels for TORCH_CUDA_ARCH_LIST={DEFAULT_CUDA_ARCH_LIST}")


def _cuda_blas_paths(cuda_home: str) -> tuple[list[str], list[str], list[str]]:
    """(include dirs, library dirs, link args) that give the csrc/cuda kernels cuBLAS.

    A full toolkit has cublas_v2.h and libcublas.so under CUDA_HOME. A minimal one (nvcc and
    cudart only, as in CI) does not, and neither has torch's own headers' dependency cusparse.h;
    then the headers and libcublas.so.N come from the NVIDIA wheels torch is installed with
    (site-packages/nvidia/cu13 or nvidia/<lib>), linked by file name with an rpath.
    """
    lib_dirs = [d for d in (os.path.join(cuda_home, "lib"), os.path.join(cuda_home, "lib64")) if os.path.isdir(d)]
    include_dirs: list[str] = []
    link_args: list[str] = []
    need_headers = not all(os.path.exists(os.path.join(cuda_home, "include", h)) for h in ("cublas_v2.h", "cusparse.h"))
    has_cublas = any(os.path.exists(os.path.join(d, "libcublas.so")) for d in lib_dirs)
    wheel_roots: list[str] = []
    try:
        import nvidia  # namespace package of the NVIDIA wheels

        wheel_roots = [d for root in nvidia.__path__ for d in sorted(glob.glob(os.path.join(root, "*")))]
    except ImportError:
        pass
    if need_headers:
        include_dirs = [os.path.join(d, "include") for d in wheel_roots
                        if glob.glob(os.path.join(d, "include", "cublas_v2.h"))
                        or glob.glob(os.path.join(d, "include", "cusparse.h"))]
    if has_cublas:
        link_args = ["-lcublas"]
    else:
        libs = sorted(lib for d in wheel_roots for lib in glob.glob(os.path.join(d, "lib", "libcublas.so.*")))
        if libs:
            link_args = [f"-L{os.path.dirname(libs[0])}", f"-l:{os.path.basename(libs[0])}",
                         f"-Wl,-rpath,{os.path.dirname(libs[0])}"]
    missing = []
    if need_headers and not any(os.path.exists(os.path.join(d, "cusparse.h")) for d in include_dirs):
        missing.append("the cuBLAS/cuSPARSE headers (cublas_v2.h, cusparse.h)")
    if not link_args:
        missing.append("libcublas")
    if missing:
        raise RuntimeError(
            f"Cannot build the CUDA kernels: {' and '.join(missing)} not found under CUDA_HOME={cuda_home} "
            "nor in the nvidia-* wheels. Install the CUDA toolkit's cuBLAS, or set RESTOREKIT_CUDA=0 "
            "for a CPU-only build."
        )
    return include_dirs, lib_dirs, link_args


def get_extensions():
    """restorekit._C from csrc/*.cpp (always) and csrc/cuda/*.cu (when _cuda_wanted())."""
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    cpu_sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")))
    cuda_sources = sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
    if not cpu_sources:
        return []
    extra = {"cxx": ["-O3", "-fopenmp"]}
    link = ["-fopenmp"]
    if cuda_sources and _cuda_wanted():
        cuda_home = os.environ["CUDA_HOME"]
        _set_cuda_arch_list()
        include_dirs, lib_dirs, blas_link = _cuda_blas_paths(cuda_home)
        # wheel headers after the toolkit's own (-isystem comes after every -I)
        system = [arg for d in include_dirs for arg in ("-isystem", d)]
        extra["cxx"] += system
        extra["nvcc"] = ["-O3", "--expt-relaxed-constexpr"] + system
        return [
            CUDAExtension(
                "restorekit._C",
                cpu_sources + cuda_sources,
                define_macros=[("RESTOREKIT_WITH_CUDA", "1")],
                library_dirs=lib_dirs,
                extra_compile_args=extra,
                extra_link_args=link + blas_link,
                py_limited_api=False,
            )
        ]
    return [CppExtension("restorekit._C", cpu_sources, extra_compile_args=extra, extra_link_args=link,
                         py_limited_api=False)]


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
        "restorekit": ["data/*.npy", "data/*.json", "scaffold/templates/*/*.tmpl", "scaffold/templates/*/*/*.tmpl",
                       "scaffold/templates/*/*/*/*.tmpl"],
        "restorekit_plugins": ["*/weights/*.pt", "*/weights/*.json"],
    },
    include_package_data=False,
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.1",
        "numpy",
        "scikit-image",
        "scipy",  # the CPU Wiener filter's FFT (restorekit.degrade); scikit-image needs it too
        "pypng",  # 16-bit colour PNG (Pillow cuts it to 8 bits); restorekit.imageio
        "pluggy>=1.3",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "test": ["pytest", "hypothesis"],
        "bm3d": ["bm3d"],
        # pocketfft's successor: the CPU Wiener filter's FFTs ~1.8x quicker (GPL-2.0-or-later, optional).
        "fft": ["ducc0"],
    },
    entry_points={
        "console_scripts": ["restorekit = restorekit.cli.main:main"],
        "restorekit.plugins": [f"{p} = restorekit_plugins.{p}" for p in BUILTIN_PLUGINS],
    },
    ext_modules=get_extensions(),
    cmdclass=_cmdclass(),
    zip_safe=False,
)
