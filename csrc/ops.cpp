// Op schemas of wsnet_ext (docs/design.md, "Ops"), and the C functions of the library
// (common/ws_c_api.h). Kernels register per device from each family's cpu/ and cuda/ folders (the
// CUDA ones in a second library, _C_cuda; the op entries in cuda/); fake kernels and autograd are registered from Python (wsnet_ext/_ops.py). Only
// PyTorch's stable ABI is used, and nothing of Python: one binary for every torch >= 2.10, loadable
// by Python (wsnet_ext/_build.py) and by a C++ program with libtorch alone (examples/deploy/).
#include <string>

#include "common/ws_c_api.h"
#include "common/ws_stable.h"

#ifndef WSNET_TORCH_VERSION
#define WSNET_TORCH_VERSION "unknown"
#endif
#ifndef WSNET_TORCH_FLOOR
#define WSNET_TORCH_FLOOR "unknown"
#endif
#ifndef WSNET_CUDA_VERSION
#define WSNET_CUDA_VERSION ""
#endif

namespace wsnet {
std::string cpu_kernel_isa();  // tiles/cpu/ws_conv1d_kernel.cpp
}  // namespace wsnet

STABLE_TORCH_LIBRARY(wsnet_ext, m) {
  // forward: y = conv1d(x, W(condensed), bias), W sampled from `condensed`
  m.def(
      "ws_conv1d_forward(Tensor input, Tensor condensed, Tensor? bias, int kernel_size, "
      "int sample_stride, int channel_repeat, int stride, int[2] padding, int dilation) -> Tensor");
  // backward: (grad_input, grad_condensed, grad_bias); an output whose mask entry is false comes
  // back as an empty tensor.
  m.def(
      "ws_conv1d_backward(Tensor grad_output, Tensor input, Tensor condensed, int kernel_size, "
      "int sample_stride, int channel_repeat, int stride, int[2] padding, int dilation, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  // channel sampling: condensed (Lc, ...) -> weight (N, M, ...),
  // weight[n, m, ...] = condensed[n*S + m % Mc, ...], and its deterministic backward.
  m.def("ws_sample_channels(Tensor condensed, int out_channels, int sample_stride, "
        "int channel_repeat) -> Tensor");
  m.def("ws_sample_channels_backward(Tensor grad_weight, int condensed_len, int sample_stride, "
        "int channel_repeat) -> Tensor");
  // HashedNets' virtual weight (hashed/cpu/ws_hashed_weight_kernel.cpp), CPU only: V = [w; -w][index],
  // and its backward (the adjoint: a deterministic scatter-add into the 2B signed slots); each is
  // the other's adjoint (autograd in wsnet_ext/_ops.py).
  m.def("ws_hashed_weight(Tensor real_weight, Tensor index) -> Tensor");
  m.def("ws_hashed_weight_backward(Tensor grad_virtual, Tensor index, int buckets) -> Tensor");
}

// "key=value;...": what this binary was built against, and the CUDA version _C_cuda was built
// for ('' when it was not built) (read by wsnet_ext/_build.py).
WS_C_EXPORT const char* wsnet_build_info() {
  static const std::string info = std::string("torch=") + WSNET_TORCH_VERSION + ";floor=" + WSNET_TORCH_FLOOR +
                                  ";cuda=" + WSNET_CUDA_VERSION;
  return info.c_str();
}

// Which build of the CPU tile functions this processor runs (tiles/cpu/ws_conv1d_isa.h): avx512, avx2 or
// baseline, under the cpu_isa switch as it is now.
WS_C_EXPORT const char* wsnet_cpu_kernel_isa() {
  static thread_local std::string isa;
  isa = wsnet::cpu_kernel_isa();
  return isa.c_str();
}

WS_SWITCH_C_API(wsnet)
