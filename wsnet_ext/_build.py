"""Loads the compiled library and tells what it was built with."""

from __future__ import annotations

import functools
import importlib.util
import os

import torch

_REBUILD = "rebuild it against the installed torch: pip install --no-build-isolation --force-reinstall --no-deps ."

if importlib.util.find_spec(f"{__package__}._C") is None:
    raise ImportError(
        f"wsnet_ext: the compiled library _C is not in {os.path.dirname(__file__)}: build it with "
        "`pip install --no-build-isolation -e .` (or, if wsnet_ext is installed elsewhere, run "
        "Python outside the source checkout)")
try:
    from . import _C  # noqa: F401  (registers the wsnet_ext ops)
except ImportError as error:  # e.g. undefined symbols after a torch upgrade
    raise ImportError(
        f"wsnet_ext: its compiled library failed to load under torch {torch.__version__} ({error}); "
        f"{_REBUILD}") from error


@functools.lru_cache(maxsize=None)
def build_info() -> dict:
    """{'cuda_kernels': bool, 'torch': version built against, 'cuda': CUDA version or ''}."""
    fields = dict(item.split("=", 1) for item in torch.ops.wsnet_ext._build_info().split(";"))
    return {"cuda_kernels": fields["cuda_kernels"] == "1", "torch": fields["torch"], "cuda": fields["cuda"]}


def cpu_kernel_isa() -> str:
    """The build of the CPU kernels this processor runs: 'avx512', 'avx2' or 'baseline'
    (WSNET_CPU_ISA=avx2|baseline caps it)."""
    return torch.ops.wsnet_ext._cpu_kernel_isa()


def cuda_built() -> bool:
    """Whether this build of wsnet_ext holds its CUDA kernels."""
    return build_info()["cuda_kernels"]


def check_torch_version() -> None:
    built = build_info()["torch"]
    if built != torch.__version__:
        raise ImportError(
            f"wsnet_ext was built against torch {built} but torch {torch.__version__} is installed; {_REBUILD}")


check_torch_version()
