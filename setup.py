"""Builds wsnet_ext: CPU kernels always, CUDA kernels whenever torch has CUDA and a CUDA toolkit
is found (no GPU is needed to compile them).

Environment:
  WSNET_CPU_ONLY=1     skip the CUDA kernels (quick local iteration)
  WSNET_FORCE_CUDA=1   fail unless the CUDA kernels can be built
  WSNET_SANITIZE=1     build the CPU kernels with AddressSanitizer and UBSan (debug; CPU only)
  CUDA_HOME            toolkit root; default /usr/local/cuda
  TORCH_CUDA_ARCH_LIST GPU architectures; default: the visible GPU's, else DEFAULT_ARCHS
"""

import glob
import os
import sys

from setuptools import find_packages, setup

DEFAULT_ARCHS = "7.5;8.0;9.0;10.0+PTX"  # T4, A100, H100, B200; PTX runs on newer GPUs


def say(message: str) -> None:
    print(f"wsnet_ext setup: {message}", file=sys.stderr, flush=True)


def find_cuda_home():
    """The CUDA toolkit root, checked to hold the headers. torch guesses CUDA_HOME from the
    nvcc on PATH, which is wrong when that nvcc is a wrapper script, so we look ourselves."""
    candidates = [os.environ["CUDA_HOME"]] if os.environ.get("CUDA_HOME") else ["/usr/local/cuda"]
    for root in candidates:
        if os.path.isfile(os.path.join(root, "include", "cuda_runtime.h")) and \
                os.path.isfile(os.path.join(root, "bin", "nvcc")):
            return os.path.realpath(root), None
    return None, f"no CUDA toolkit at {candidates[0]} (needs include/cuda_runtime.h and bin/nvcc)"


def flag(name: str) -> bool:
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


cuda_home, why_not = find_cuda_home()
if cuda_home:
    os.environ["CUDA_HOME"] = cuda_home  # before torch.utils.cpp_extension reads it

import torch  # noqa: E402
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402

if flag("WSNET_CPU_ONLY") or flag("WSNET_SANITIZE"):
    build_cuda, why_not = False, "WSNET_CPU_ONLY or WSNET_SANITIZE is set"
elif torch.version.cuda is None:
    build_cuda, why_not = False, f"torch {torch.__version__} is a CPU-only build"
else:
    build_cuda = cuda_home is not None
if flag("WSNET_FORCE_CUDA") and not build_cuda:
    raise SystemExit(f"wsnet_ext setup: WSNET_FORCE_CUDA is set but the CUDA kernels can't be built: {why_not}")

here = os.path.dirname(os.path.abspath(__file__))
sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "cpu", "*.cpp")))
macros = [("WSNET_TORCH_VERSION", f'"{torch.__version__}"')]
cxx_flags = ["-O3", "-Wno-psabi"]  # torch adds its own -std (C++17 up to 2.9, C++20 after)
link_flags = []
if sys.platform.startswith("linux"):
    # at::parallel_for is OpenMP inline code: without -fopenmp it silently runs on one thread.
    # libgomp.so.1 then resolves to the copy torch has already loaded.
    cxx_flags.append("-fopenmp")
    link_flags.append("-fopenmp")
if flag("WSNET_SANITIZE"):
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"]
    cxx_flags = [f for f in cxx_flags if f != "-O3"] + ["-O1"] + sanitize
    link_flags += sanitize
    say("building with AddressSanitizer and UBSan: run Python with LD_PRELOAD of libasan (see scripts/sanitize.sh)")
if build_cuda:
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCHS
    say(f"building CPU and CUDA kernels (toolkit {cuda_home}, torch CUDA {torch.version.cuda}, "
        f"archs {os.environ.get('TORCH_CUDA_ARCH_LIST', 'of the visible GPU')})")
    sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
    macros += [("WITH_CUDA", None), ("WSNET_CUDA_VERSION", f'"{torch.version.cuda}"')]
    extension = CUDAExtension(
        "wsnet_ext._C", sources, define_macros=macros,
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-lineinfo"]}, extra_link_args=link_flags)
else:
    say(f"building CPU kernels only: {why_not}")
    extension = CppExtension("wsnet_ext._C", sources, define_macros=macros,
                             extra_compile_args={"cxx": cxx_flags}, extra_link_args=link_flags)

setup(
    name="wsnet_ext",
    version="0.1.0",
    description="WSNet weight-sampling layers with integral-image CPU and CUDA kernels",
    packages=find_packages(include=["wsnet_ext", "wsnet_ext.*"]),
    ext_modules=[extension],
    cmdclass={"build_ext": BuildExtension},
    install_requires=["torch>=2.4", "numpy"],
    python_requires=">=3.9",
)
