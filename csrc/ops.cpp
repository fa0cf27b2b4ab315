// Op schemas of wsnet_ext (DESIGN.md §6). Kernels register per device in cpu/ and cuda/, the
// autograd of ws_conv1d_forward in ws_conv1d_autograd.cpp; fake kernels and the autograd of
// ws_sample_channels are registered from Python (wsnet_ext/_ops.py).
#include <Python.h>
#include <torch/library.h>

#include <string>

#ifndef WSNET_TORCH_VERSION
#define WSNET_TORCH_VERSION "unknown"
#endif
#ifndef WSNET_CUDA_VERSION
#define WSNET_CUDA_VERSION ""
#endif

// `import wsnet_ext._C` loads this library, which runs the registrations below.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

namespace wsnet {

// What this binary was built against, "key=value;..." (read by wsnet_ext/_build.py).
std::string build_info() {
#ifdef WITH_CUDA
  const bool with_cuda = true;
#else
  const bool with_cuda = false;
#endif
  return std::string("cuda_kernels=") + (with_cuda ? "1" : "0") +
         ";torch=" + WSNET_TORCH_VERSION + ";cuda=" + WSNET_CUDA_VERSION;
}

}  // namespace wsnet

TORCH_LIBRARY(wsnet_ext, m) {
  // DESIGN.md §2 forward: y = conv1d(x, W(condensed), bias), W sampled from `condensed`.
  m.def(
      "ws_conv1d_forward(Tensor input, Tensor condensed, Tensor? bias, int kernel_size, "
      "int sample_stride, int channel_repeat, int stride, int[2] padding, int dilation) -> Tensor");
  // DESIGN.md §2 backward: (grad_input, grad_condensed, grad_bias); an output whose mask entry
  // is false comes back as an empty tensor.
  m.def(
      "ws_conv1d_backward(Tensor grad_output, Tensor input, Tensor condensed, int kernel_size, "
      "int sample_stride, int channel_repeat, int stride, int[2] padding, int dilation, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  // DESIGN.md §3 channel sampling: condensed (Lc, ...) -> weight (N, M, ...),
  // weight[n, m, ...] = condensed[n*S + m % Mc, ...], and its deterministic backward.
  m.def("ws_sample_channels(Tensor condensed, int out_channels, int sample_stride, "
        "int channel_repeat) -> Tensor");
  m.def("ws_sample_channels_backward(Tensor grad_weight, int condensed_len, int sample_stride, "
        "int channel_repeat) -> Tensor");
  m.def("_build_info() -> str", &wsnet::build_info);
}
