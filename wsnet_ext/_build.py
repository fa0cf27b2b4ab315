"""Loads the compiled libraries and tells what they were built with.

_C (op schemas and CPU kernels) and _C_cuda (CUDA kernels) use only PyTorch's stable ABI and hold
no Python symbol: built once, they load on every torch from the floor they were built for (2.10)
on, in Python (here: torch.ops.load_library, then ctypes for their C functions) or in a C++
program. The CUDA library is loaded only beside a CUDA torch of the CUDA major it was built for."""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import warnings

import torch

from . import _switches

_REINSTALL = "reinstall it: pip install --no-build-isolation --force-reinstall --no-deps ."


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("+")[0].split(".")[:2])


class _Library:
    """One compiled library of wsnet_ext, loaded by torch.ops.load_library (its static
    initializers register the ops) and reached through its C functions with ctypes
    (csrc/common/ws_c_api.h): the libraries hold no Python symbol, so a C++ program with libtorch alone
    loads them too (examples/deploy/)."""

    def __init__(self, path: str, prefix: str):
        torch.ops.load_library(path)
        self.path = path
        self._c = ctypes.CDLL(path)
        self._set = getattr(self._c, f"{prefix}_set_switch")
        self._get = getattr(self._c, f"{prefix}_get_switch")
        self._set.argtypes, self._set.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        self._get.argtypes, self._get.restype = [ctypes.c_int], ctypes.c_int

    def set_switch(self, ident: int, value: int) -> None:
        if not self._set(ident, value):
            raise ValueError(f"set_switch: expected a switch id the library knows, got {ident}")

    def get_switch(self, ident: int) -> int:
        value = self._get(ident)
        if value < 0:
            raise ValueError(f"get_switch: expected a switch id the library knows, got {ident}")
        return value

    def text(self, name: str) -> str:
        function = getattr(self._c, name)
        function.restype = ctypes.c_char_p
        return function().decode()


def _library_path(name: str) -> str | None:
    """The file of wsnet_ext.<name> (an abi3 shared library), without importing it."""
    spec = importlib.util.find_spec(f"{__package__}.{name}")
    return spec.origin if spec is not None and spec.origin else None


_C_PATH = _library_path("_C")
if _C_PATH is None:
    raise ImportError(
        f"wsnet_ext: the compiled library _C is not in {os.path.dirname(__file__)}: build it with "
        "`pip install --no-build-isolation -e .` (or, if wsnet_ext is installed elsewhere, run "
        "Python outside the source checkout)")
try:
    _C = _Library(_C_PATH, "wsnet")  # registers the wsnet_ext op schemas and CPU kernels
except OSError as error:
    raise ImportError(
        f"wsnet_ext: its compiled library failed to load under torch {torch.__version__} ({error}); "
        f"{_REINSTALL}") from error

_FIELDS = dict(item.split("=", 1) for item in _C.text("wsnet_build_info").split(";"))
_switches.attach(_C)


def check_torch_version() -> None:
    """The running torch must be at least the floor the libraries were built for."""
    floor = _FIELDS["floor"]
    if _version_tuple(torch.__version__) < _version_tuple(floor):
        raise ImportError(
            f"wsnet_ext needs torch >= {floor} (built against torch {_FIELDS['torch']} for that floor), "
            f"but torch {torch.__version__} is installed; upgrade torch, or {_REINSTALL}")


check_torch_version()


def _load_cuda() -> tuple[bool, str, str]:
    """(built, CUDA version built for, why not loaded or ''). Loads the CUDA kernels when it can."""
    built_for = _FIELDS["cuda"]
    cuda_path = _library_path("_C_cuda")
    if not built_for or cuda_path is None:
        return False, "", "this build has no CUDA kernels"
    if torch.version.cuda is None:
        return True, built_for, f"torch {torch.__version__} is a CPU-only build"
    if built_for.split(".")[0] != torch.version.cuda.split(".")[0]:
        warnings.warn(f"wsnet_ext: its CUDA kernels were built for CUDA {built_for}, but torch "
                      f"{torch.__version__} uses CUDA {torch.version.cuda}: they are not loaded (the "
                      f"CPU kernels work); to use them, {_REINSTALL}", stacklevel=3)
        return True, built_for, f"built for CUDA {built_for}, torch uses CUDA {torch.version.cuda}"
    try:
        cuda_library = _Library(cuda_path, "wsnet_cuda")  # registers the CUDA kernels
    except OSError as error:
        warnings.warn(f"wsnet_ext: its CUDA library failed to load ({error}): the CUDA kernels are "
                      f"unavailable, the CPU kernels work; {_REINSTALL}", stacklevel=3)
        return True, built_for, f"the CUDA library failed to load: {error}"
    _switches.attach(cuda_library)
    return True, built_for, ""


_CUDA_BUILT, _CUDA_BUILT_FOR, _CUDA_NOT_LOADED = _load_cuda()


@functools.lru_cache(maxsize=None)
def build_info() -> dict:
    """What was built and what runs: {'cuda_kernels': CUDA kernels built, 'cuda_loaded': and loaded
    in this process, 'cuda': CUDA version they were built for, 'torch': torch built against,
    'torch_floor': oldest torch the build loads on, 'torch_running': this process's torch,
    'cuda_not_loaded': why not, when not}."""
    return {"cuda_kernels": _CUDA_BUILT, "cuda_loaded": _CUDA_BUILT and not _CUDA_NOT_LOADED,
            "cuda": _CUDA_BUILT_FOR, "torch": _FIELDS["torch"], "torch_floor": _FIELDS["floor"],
            "torch_running": torch.__version__, "cuda_not_loaded": _CUDA_NOT_LOADED}


def cpu_kernel_isa() -> str:
    """The build of the CPU kernels this processor runs: 'avx512', 'avx2' or 'baseline'
    (the cpu_isa switch caps it: WSNET_CPU_ISA=avx2|baseline, or wsnet_ext.switches)."""
    return _C.text("wsnet_cpu_kernel_isa")


def cuda_built() -> bool:
    """Whether this build of wsnet_ext holds its CUDA kernels."""
    return _CUDA_BUILT


def cuda_loaded() -> bool:
    """Whether the CUDA kernels are loaded in this process (built, and torch is a CUDA build of
    the same CUDA major)."""
    return build_info()["cuda_loaded"]
