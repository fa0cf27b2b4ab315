// Op schemas of wsnet_ext (docs/design.md, "Ops"), and the Python module `wsnet_ext._C` that
// loading this library creates. Kernels register per device in cpu/ and cuda/ (the CUDA ones in a
// second library, wsnet_ext._C_cuda); fake kernels and autograd are registered from Python
// (wsnet_ext/_ops.py). Only PyTorch's stable ABI and Python's limited API are used: one binary for
// every torch >= 2.10 and every CPython >= 3.10.
#include <Python.h>

#include <string>

#include "ws_stable.h"
#include "ws_python_module.h"

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
std::string cpu_kernel_isa();  // cpu/ws_conv1d_kernel.cpp
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
  // test-only: the host model of the CUDA strip forward (cpu/ws_conv1d_strip_model.cpp), returning
  // (output, int64 stats); precision 0 fma, 1 tf32, 2 3xtf32 (ws_conv1d_strips.h)
  m.def("ws_conv1d_strip_model(Tensor input, Tensor condensed, Tensor? bias, int kernel_size, "
        "int sample_stride, int channel_repeat, int stride, int[2] padding, int dilation, "
        "int precision, int shared_limit, int multiprocessors) -> (Tensor, Tensor)");
  // test-only: the host model of the fused CUDA strip backward (cpu/ws_conv1d_strip_adjoint_model.cpp):
  // (grad_input, grad_condensed, int64 stats)
  m.def("ws_conv1d_strip_adjoint_model(Tensor grad_output, Tensor input, Tensor condensed, int kernel_size, "
        "int sample_stride, int channel_repeat, int stride, int[2] padding, int dilation, "
        "bool[3] output_mask, int precision, int shared_limit, int max_grid) -> (Tensor, Tensor, Tensor)");
  m.def("ws_sample_channels_backward(Tensor grad_weight, int condensed_len, int sample_stride, "
        "int channel_repeat) -> Tensor");
  // HashedNets' virtual weight (cpu/ws_hashed_weight_kernel.cpp), CPU only: V = [w; -w][index],
  // and its backward (the adjoint: a deterministic scatter-add into the 2B signed slots); each is
  // the other's adjoint (autograd in wsnet_ext/_ops.py).
  m.def("ws_hashed_weight(Tensor real_weight, Tensor index) -> Tensor");
  m.def("ws_hashed_weight_backward(Tensor grad_virtual, Tensor index, int buckets) -> Tensor");
}

namespace {

// "key=value;...": what this binary was built against, and the CUDA version wsnet_ext._C_cuda was
// built for ('' when it was not built) (read by wsnet_ext/_build.py).
PyObject* build_info(PyObject*, PyObject*) {
  const std::string info = std::string("torch=") + WSNET_TORCH_VERSION +
                           ";floor=" + WSNET_TORCH_FLOOR + ";cuda=" + WSNET_CUDA_VERSION;
  return PyUnicode_FromString(info.c_str());
}

// Which build of the CPU tile functions this processor runs (cpu/ws_conv1d_isa.h).
PyObject* cpu_kernel_isa(PyObject*, PyObject*) {
  return PyUnicode_FromString(wsnet::cpu_kernel_isa().c_str());
}

PyMethodDef methods[] = {
    {"build_info", build_info, METH_NOARGS, "What this library was built against."},
    WS_SET_SWITCH_METHOD,
    {"cpu_kernel_isa", cpu_kernel_isa, METH_NOARGS, "avx512, avx2 or baseline."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};

}  // namespace

// `import wsnet_ext._C` loads this library, which runs the registrations above.
extern "C" PyObject* PyInit__C(void) { return PyModule_Create(&module_def); }
