"""Builds wsnet_ext: CPU kernels always, CUDA kernels whenever torch has CUDA and a CUDA toolkit
is found (no GPU is needed to compile them).

Both libraries use only PyTorch's stable ABI (torch/csrc/stable, torch/headeronly, the C shims),
built for TORCH_FLOOR, and Python's limited API: the wheel is tagged abi3 and loads on every
torch >= TORCH_FLOOR and every CPython >= 3.10. wsnet_ext._C holds the op schemas and the CPU
kernels; wsnet_ext._C_cuda the CUDA kernels, loaded only beside a CUDA torch of the same CUDA major.

Environment:
  WSNET_CPU_ONLY=1     skip the CUDA kernels (quick local iteration)
  WSNET_FORCE_CUDA=1   fail unless the CUDA kernels can be built
  WSNET_SANITIZE=1     build the CPU kernels with AddressSanitizer and UBSan (debug; CPU only)
  CUDA_HOME            toolkit root; default /usr/local/cuda
  TORCH_CUDA_ARCH_LIST GPU architectures; default: the visible GPU's, else DEFAULT_ARCHS
"""

import glob
import os
import subprocess
import sys

from setuptools import find_packages, setup

DEFAULT_ARCHS = "7.5;8.0;9.0;10.0+PTX"  # T4, A100, H100, B200; PTX runs on newer GPUs
TORCH_FLOOR = (2, 10)  # the oldest torch the libraries load on
PYTHON_FLOOR = "cp310"  # the abi3 tag: every CPython from 3.10 on


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
torch_major_minor = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
if torch_major_minor < TORCH_FLOOR:
    raise SystemExit(f"wsnet_ext setup: building needs torch >= {TORCH_FLOOR[0]}.{TORCH_FLOOR[1]} "
                     f"(its stable ABI headers), found {torch.__version__}")
floor_text = f"{TORCH_FLOOR[0]}.{TORCH_FLOOR[1]}"
# TORCH_TARGET_VERSION: the stable headers offer only what torch TORCH_FLOOR has ([major][minor] in
# the top two bytes of a uint64); the libraries then load on every torch from the floor on.
target_version = f"0x{TORCH_FLOOR[0]:02x}{TORCH_FLOOR[1]:02x}000000000000"
macros = [("TORCH_TARGET_VERSION", target_version), ("WSNET_TORCH_VERSION", f'"{torch.__version__}"'),
          ("WSNET_TORCH_FLOOR", f'"{floor_text}"'),
          ("WSNET_CUDA_VERSION", f'"{torch.version.cuda if build_cuda else ""}"')]  # of _C_cuda, if built


def gcc_only_flags() -> list:
    """With GCC: no general-register spills into vector registers (they took the vector registers
    of the CPU forward's multiply-add loop, whose fold vectors then went to the stack). Clang has
    no such switch and needs none."""
    try:
        version = subprocess.run([os.environ.get("CXX", "c++"), "--version"], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [] if "clang" in version.lower() else ["-mtune-ctrl=^inter_unit_moves_to_vec,^inter_unit_moves_from_vec"]


cxx_flags = ["-O3", "-Wno-psabi"] + gcc_only_flags()  # torch adds its own -std (C++17 up to 2.9, C++20 after)
link_flags = []
if flag("WSNET_SANITIZE"):
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"]
    cxx_flags = [f for f in cxx_flags if f != "-O3"] + ["-O1"] + sanitize
    link_flags += sanitize
    say("building with AddressSanitizer and UBSan: run Python with LD_PRELOAD of libasan (see scripts/sanitize.sh)")

# csrc/: one folder per kernel family (tiles/, strips/, channel_sampling/, hashed/), each with its
# cpu/ and cuda/ code, common/ for what all share, cuda/ for the CUDA library's op entries; includes
# are rooted at csrc/. strips/host_model/ is test-only: tests/helpers.py builds it on demand.
csrc = os.path.join(here, "csrc")
cpu_sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "*", "cpu", "*.cpp")))
extensions = [CppExtension("wsnet_ext._C", cpu_sources, include_dirs=[csrc], define_macros=macros, py_limited_api=True,
                           extra_compile_args={"cxx": cxx_flags}, extra_link_args=link_flags)]
if build_cuda:
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCHS
    say(f"building CPU and CUDA kernels (toolkit {cuda_home}, torch CUDA {torch.version.cuda}, "
        f"archs {os.environ.get('TORCH_CUDA_ARCH_LIST', 'of the visible GPU')}, torch floor {floor_text})")
    cuda_sources = sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")) + glob.glob(os.path.join("csrc", "cuda", "*.cpp")) +
                          glob.glob(os.path.join("csrc", "*", "cuda", "*.cu")))
    cuda_macros = macros + [("USE_CUDA", None)]
    extensions.append(CUDAExtension(
        "wsnet_ext._C_cuda", cuda_sources, include_dirs=[csrc], define_macros=cuda_macros, py_limited_api=True,
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-lineinfo"]}, extra_link_args=link_flags))
else:
    say(f"building CPU kernels only (torch floor {floor_text}): {why_not}")

setup(
    name="wsnet_ext",
    version="0.2.0",
    description="WSNet weight-sampling layers with integral-image CPU and CUDA kernels",
    packages=find_packages(include=["wsnet_ext", "wsnet_ext.*"]),
    ext_modules=extensions,
    cmdclass={"build_ext": BuildExtension},
    install_requires=[f"torch>={floor_text}", "numpy"],
    python_requires=">=3.10",
    options={"bdist_wheel": {"py_limited_api": PYTHON_FLOOR}},
)
