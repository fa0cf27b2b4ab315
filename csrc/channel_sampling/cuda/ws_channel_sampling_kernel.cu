// Channel-axis weight sampling on CUDA (docs/design.md §3): one thread per weight element for the
// gather, one per condensed element for the deterministic gather-sum of the backward.
#include <algorithm>
#include <vector>

#include "channel_sampling/ws_channel_sampling_args.h"
#include "cuda/ws_cuda_launch.h"
#include "cuda/ws_cuda_stable.h"

namespace wsnet {
namespace {

template <typename scalar_t>
__global__ void sample_channels_kernel(const scalar_t* __restrict__ condensed,
                                       scalar_t* __restrict__ weight, ChannelSampling cs) {
  const int64_t total = cs.out_channels * cs.in_channels * cs.inner;
  WS_GRID_STRIDE_LOOP(i, total) {
    const int64_t k = i % cs.inner, nm = i / cs.inner;
    weight[i] = condensed[cs.source_row(nm / cs.in_channels, nm % cs.in_channels) * cs.inner + k];
  }
}

template <typename scalar_t, typename acc_t>
__global__ void sample_channels_backward_kernel(const scalar_t* __restrict__ grad_weight,
                                                scalar_t* __restrict__ grad, ChannelSampling cs) {
  const int64_t total = cs.condensed_len * cs.inner;
  WS_GRID_STRIDE_LOOP(i, total) {
    grad[i] = static_cast<scalar_t>(
        gather_row_gradient<scalar_t, acc_t>(grad_weight, cs, i / cs.inner, i % cs.inner));
  }
}

Tensor ws_sample_channels_cuda(const Tensor& condensed, int64_t out_channels,
                                   int64_t sample_stride, int64_t channel_repeat) {
  const DeviceGuard guard(condensed.get_device_index());
  const Tensor c = as_contiguous(condensed);
  const ChannelSampling cs = sampling_of_condensed(c, out_channels, sample_stride, channel_repeat);
  Tensor weight = torch::stable::new_empty(c, sampled_weight_shape(c, cs));
  if (weight.numel() == 0) return weight;
  WS_DISPATCH_FLOATING_TYPES(c.scalar_type(), "ws_sample_channels_cuda", [&] {
    sample_channels_kernel<scalar_t><<<grid_for(weight.numel()), kThreads, 0,
                                       current_cuda_stream(c.get_device_index())>>>(
        c.const_data_ptr<scalar_t>(), weight.mutable_data_ptr<scalar_t>(), cs);
    WS_CUDA_LAUNCH_CHECK();
  });
  return weight;
}

Tensor ws_sample_channels_backward_cuda(const Tensor& grad_weight, int64_t condensed_len,
                                            int64_t sample_stride, int64_t channel_repeat) {
  const DeviceGuard guard(grad_weight.get_device_index());
  const Tensor gw = as_contiguous(grad_weight);
  const ChannelSampling cs = sampling_of_grad(gw, condensed_len, sample_stride, channel_repeat);
  Tensor grad = torch::stable::new_empty(gw, condensed_shape(gw, cs));
  if (grad.numel() == 0) return grad;
  WS_DISPATCH_FLOATING_TYPES(gw.scalar_type(), "ws_sample_channels_backward_cuda", [&] {
    using acc_t = acc_type<scalar_t>;
    sample_channels_backward_kernel<scalar_t, acc_t><<<grid_for(grad.numel()), kThreads, 0,
                                                       current_cuda_stream(gw.get_device_index())>>>(
        gw.const_data_ptr<scalar_t>(), grad.mutable_data_ptr<scalar_t>(), cs);
    WS_CUDA_LAUNCH_CHECK();
  });
  return grad;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_ext, CUDA, m) {
  m.impl("ws_sample_channels", TORCH_BOX(&ws_sample_channels_cuda));
  m.impl("ws_sample_channels_backward", TORCH_BOX(&ws_sample_channels_backward_cuda));
}

}  // namespace wsnet
