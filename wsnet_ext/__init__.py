"""wsnet_ext: WSNet weight-sampling layers (Jin et al., ICML 2018) with CPU and CUDA kernels."""

from ._build import build_info, cpu_kernel_isa, cuda_built
from . import _ops  # noqa: F401  (fake kernels and autograd of the ops)
from .conv1d import WSConv1d
from .functional import sample_conv1d_weight, ws_conv1d

__version__ = "0.1.0"

__all__ = ["WSConv1d", "build_info", "cpu_kernel_isa", "cuda_built", "sample_conv1d_weight", "ws_conv1d"]
