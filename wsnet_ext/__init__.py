"""wsnet_ext: WSNet weight-sampling layers (Jin et al., ICML 2018) with CPU and CUDA kernels."""

from ._build import build_info, cpu_kernel_isa, cuda_built, cuda_loaded
from . import _ops  # noqa: F401  (fake kernels and autograd of the ops)
from . import _switches as switches
from .channel_sampled import WSConv2d, WSLinear
from .conv1d import WSConv1d
from .convert import hashify, materialize, wsnetify
from .cpu_memory import keep_freed_cpu_memory
from .functional import sample_channels, sample_conv1d_weight, ws_conv1d
from .hashed import HashedConv1d, HashedConv2d, HashedLinear
from . import paths
from .paths import explain
from .quantize import model_bytes, quantize_condensed
from .summary import summary
from . import models

__version__ = "0.2.0"

__all__ = ["HashedConv1d", "HashedConv2d", "HashedLinear", "WSConv1d", "WSConv2d", "WSLinear",
           "build_info", "cpu_kernel_isa", "keep_freed_cpu_memory", "cuda_built", "cuda_loaded", "explain", "hashify", "materialize", "model_bytes", "models", "paths", "quantize_condensed",
           "sample_channels", "sample_conv1d_weight", "summary", "switches", "ws_conv1d", "wsnetify"]
