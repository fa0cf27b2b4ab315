// Channel-axis weight sampling on the CPU (DESIGN.md §3): the gather of the forward and the
// deterministic gather-sum of its backward (ws_channel_sampling.h).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../ws_channel_sampling_args.h"

namespace wsnet {
namespace {

at::Tensor ws_sample_channels_cpu(const at::Tensor& condensed, int64_t out_channels,
                                  int64_t sample_stride, int64_t channel_repeat) {
  TORCH_CHECK_VALUE(condensed.dim() >= 1, "ws_sample_channels: expected condensed of shape "
                    "(Lc, ...), got ", condensed.sizes());
  const at::Tensor c = condensed.contiguous();
  const ChannelSampling cs = make_channel_sampling(c.size(0), c.numel() / std::max<int64_t>(1, c.size(0)),
                                                   out_channels, sample_stride, channel_repeat);
  std::vector<int64_t> shape{cs.out_channels, cs.in_channels};
  for (int64_t i = 1; i < c.dim(); ++i) shape.push_back(c.size(i));
  at::Tensor weight = at::empty(shape, c.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "ws_sample_channels_cpu", [&] {
    const scalar_t* src = c.const_data_ptr<scalar_t>();
    scalar_t* dst = weight.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, cs.out_channels * cs.in_channels, 64, [&](int64_t begin, int64_t end) {
      for (int64_t nm = begin; nm < end; ++nm) {
        const scalar_t* row = src + cs.source_row(nm / cs.in_channels, nm % cs.in_channels) * cs.inner;
        std::copy(row, row + cs.inner, dst + nm * cs.inner);
      }
    });
  });
  return weight;
}

at::Tensor ws_sample_channels_backward_cpu(const at::Tensor& grad_weight, int64_t condensed_len,
                                           int64_t sample_stride, int64_t channel_repeat) {
  TORCH_CHECK_VALUE(grad_weight.dim() >= 2, "ws_sample_channels_backward: expected grad_weight "
                    "of shape (N, M, ...), got ", grad_weight.sizes());
  const at::Tensor gw = grad_weight.contiguous();
  const int64_t inner = gw.numel() / std::max<int64_t>(1, gw.size(0) * gw.size(1));
  const ChannelSampling cs = make_channel_sampling(condensed_len, inner, gw.size(0), sample_stride,
                                                   channel_repeat);
  TORCH_CHECK_VALUE(gw.size(1) == cs.in_channels, "ws_sample_channels_backward: expected ",
                    cs.in_channels, " input channels in grad_weight, got ", gw.sizes());
  std::vector<int64_t> shape{condensed_len};
  for (int64_t i = 2; i < gw.dim(); ++i) shape.push_back(gw.size(i));
  at::Tensor grad = at::empty(shape, gw.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, gw.scalar_type(), "ws_sample_channels_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* src = gw.const_data_ptr<scalar_t>();
    scalar_t* dst = grad.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, condensed_len * cs.inner, 256, [&](int64_t begin, int64_t end) {
      for (int64_t ck = begin; ck < end; ++ck) {
        dst[ck] = static_cast<scalar_t>(
            gather_row_gradient<scalar_t, acc_t>(src, cs, ck / cs.inner, ck % cs.inner));
      }
    });
  });
  return grad;
}

}  // namespace

TORCH_LIBRARY_IMPL(wsnet_ext, CPU, m) {
  m.impl("ws_sample_channels", &ws_sample_channels_cpu);
  m.impl("ws_sample_channels_backward", &ws_sample_channels_backward_cpu);
}

}  // namespace wsnet
