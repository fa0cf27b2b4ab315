// Channel-axis weight sampling on CUDA (DESIGN.md §3): one thread per weight element for the
// gather, one per condensed element for the deterministic gather-sum of the backward.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../ws_channel_sampling_args.h"

namespace wsnet {
namespace {

constexpr int kThreads = 256;

int64_t blocks_for(int64_t work) {
  return std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, int64_t(1) << 20));
}

template <typename scalar_t>
__global__ void sample_channels_kernel(const scalar_t* __restrict__ condensed,
                                       scalar_t* __restrict__ weight, ChannelSampling cs) {
  const int64_t total = cs.out_channels * cs.in_channels * cs.inner;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = i % cs.inner, nm = i / cs.inner;
    weight[i] = condensed[cs.source_row(nm / cs.in_channels, nm % cs.in_channels) * cs.inner + k];
  }
}

template <typename scalar_t, typename acc_t>
__global__ void sample_channels_backward_kernel(const scalar_t* __restrict__ grad_weight,
                                                scalar_t* __restrict__ grad, ChannelSampling cs) {
  const int64_t total = cs.condensed_len * cs.inner;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    grad[i] = static_cast<scalar_t>(
        gather_row_gradient<scalar_t, acc_t>(grad_weight, cs, i / cs.inner, i % cs.inner));
  }
}

at::Tensor ws_sample_channels_cuda(const at::Tensor& condensed, int64_t out_channels,
                                   int64_t sample_stride, int64_t channel_repeat) {
  const c10::cuda::CUDAGuard guard(condensed.device());
  const at::Tensor c = condensed.contiguous();
  const ChannelSampling cs = sampling_of_condensed(c, out_channels, sample_stride, channel_repeat);
  at::Tensor weight = at::empty(sampled_weight_shape(c, cs), c.options());
  if (weight.numel() == 0) return weight;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "ws_sample_channels_cuda", [&] {
    sample_channels_kernel<scalar_t><<<blocks_for(weight.numel()), kThreads, 0,
                                       c10::cuda::getCurrentCUDAStream()>>>(
        c.const_data_ptr<scalar_t>(), weight.mutable_data_ptr<scalar_t>(), cs);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return weight;
}

at::Tensor ws_sample_channels_backward_cuda(const at::Tensor& grad_weight, int64_t condensed_len,
                                            int64_t sample_stride, int64_t channel_repeat) {
  const c10::cuda::CUDAGuard guard(grad_weight.device());
  const at::Tensor gw = grad_weight.contiguous();
  const ChannelSampling cs = sampling_of_grad(gw, condensed_len, sample_stride, channel_repeat);
  at::Tensor grad = at::empty(condensed_shape(gw, cs), gw.options());
  if (grad.numel() == 0) return grad;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, gw.scalar_type(), "ws_sample_channels_backward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    sample_channels_backward_kernel<scalar_t, acc_t><<<blocks_for(grad.numel()), kThreads, 0,
                                                       c10::cuda::getCurrentCUDAStream()>>>(
        gw.const_data_ptr<scalar_t>(), grad.mutable_data_ptr<scalar_t>(), cs);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad;
}

}  // namespace

TORCH_LIBRARY_IMPL(wsnet_ext, CUDA, m) {
  m.impl("ws_sample_channels", &ws_sample_channels_cuda);
  m.impl("ws_sample_channels_backward", &ws_sample_channels_backward_cuda);
}

}  // namespace wsnet
