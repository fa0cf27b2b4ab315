// Schemas of the test-only library of host models (strips/host_model/): the CUDA strip kernels'
// schedules run thread by thread on the CPU, so tests prove the kernels' index math without a GPU.
// Not part of the package: tests/helpers.py builds this folder with torch.utils.cpp_extension and
// loads it; the ops live in their own namespace, wsnet_host_models.
#include "common/ws_stable.h"
#include "strips/ws_conv1d_strips.h"

namespace {

// The kernels' own formula, for tests that pass a real card's limit to the models.
int64_t strip_shared_limit(int64_t optin_per_block, int64_t per_multiprocessor) {
  return wsnet::strip_shared_limit_for(optin_per_block, per_multiprocessor);
}

}  // namespace

STABLE_TORCH_LIBRARY(wsnet_host_models, m) {
  // the strip forward (ws_conv1d_strip_model.cpp): (output, int64 stats); precision 0 fma,
  // 1 tf32, 2 3xtf32 (strips/ws_conv1d_strips.h)
  m.def("ws_conv1d_strip_model(Tensor input, Tensor condensed, Tensor? bias, int kernel_size, "
        "int sample_stride, int channel_repeat, int stride, int[2] padding, int dilation, "
        "int precision, int shared_limit, int multiprocessors) -> (Tensor, Tensor)");
  // the fused strip backward (ws_conv1d_strip_adjoint_model.cpp): (grad_input, grad_condensed,
  // int64 stats)
  m.def("ws_conv1d_strip_adjoint_model(Tensor grad_output, Tensor input, Tensor condensed, int kernel_size, "
        "int sample_stride, int channel_repeat, int stride, int[2] padding, int dilation, "
        "bool[3] output_mask, int precision, int shared_limit, int max_grid) -> (Tensor, Tensor, Tensor)");
  m.def("strip_shared_limit(int optin_per_block, int per_multiprocessor) -> int");
}

STABLE_TORCH_LIBRARY_IMPL(wsnet_host_models, CompositeExplicitAutograd, m) {
  m.impl("strip_shared_limit", TORCH_BOX(&strip_shared_limit));
}
