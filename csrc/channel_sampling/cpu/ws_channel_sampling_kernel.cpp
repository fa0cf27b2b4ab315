// Channel-axis weight sampling on the CPU (docs/design.md §3): the gather of the forward and the
// deterministic gather-sum of its backward (ws_channel_sampling.h).
#include <algorithm>
#include <vector>

#include "channel_sampling/ws_channel_sampling_args.h"
#include "common/ws_stable.h"

namespace wsnet {
namespace {

Tensor ws_sample_channels_cpu(const Tensor& condensed, int64_t out_channels,
                                  int64_t sample_stride, int64_t channel_repeat) {
  const Tensor c = as_contiguous(condensed);
  const ChannelSampling cs = sampling_of_condensed(c, out_channels, sample_stride, channel_repeat);
  Tensor weight = torch::stable::new_empty(c, sampled_weight_shape(c, cs));
  WS_DISPATCH_FLOATING_TYPES(c.scalar_type(), "ws_sample_channels_cpu", [&] {
    const scalar_t* src = c.const_data_ptr<scalar_t>();
    scalar_t* dst = weight.mutable_data_ptr<scalar_t>();
    // Filter n's M input channels are C copies of the Mc condensed rows n*S .. n*S + Mc - 1, which
    // lie next to each other: C block copies per filter, no index arithmetic per element (it
    // cost ~10 ns per element, so a 1000 x 784 WSLinear spent longer sampling than multiplying).
    const int64_t block = cs.condensed_channels * cs.inner;
    const int64_t repeats = cs.in_channels / cs.condensed_channels;
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, cs.in_channels * cs.inner));
    torch::stable::parallel_for(0, cs.out_channels, grain, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        const scalar_t* rows = src + cs.source_row(n, 0) * cs.inner;
        scalar_t* out = dst + n * cs.in_channels * cs.inner;
        for (int64_t c = 0; c < repeats; ++c) std::copy(rows, rows + block, out + c * block);
      }
    });
  });
  return weight;
}

Tensor ws_sample_channels_backward_cpu(const Tensor& grad_weight, int64_t condensed_len,
                                           int64_t sample_stride, int64_t channel_repeat) {
  const Tensor gw = as_contiguous(grad_weight);
  const ChannelSampling cs = sampling_of_grad(gw, condensed_len, sample_stride, channel_repeat);
  Tensor grad = torch::stable::new_empty(gw, condensed_shape(gw, cs));
  WS_DISPATCH_FLOATING_TYPES(gw.scalar_type(), "ws_sample_channels_backward_cpu", [&] {
    using acc_t = acc_type<scalar_t>;
    const scalar_t* src = gw.const_data_ptr<scalar_t>();
    scalar_t* dst = grad.mutable_data_ptr<scalar_t>();
    torch::stable::parallel_for(0, condensed_len * cs.inner, 256, [&](int64_t begin, int64_t end) {
      for (int64_t ck = begin; ck < end; ++ck) {
        dst[ck] = static_cast<scalar_t>(
            gather_row_gradient<scalar_t, acc_t>(src, cs, ck / cs.inner, ck % cs.inner));
      }
    });
  });
  return grad;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_ext, CPU, m) {
  m.impl("ws_sample_channels", TORCH_BOX(&ws_sample_channels_cpu));
  m.impl("ws_sample_channels_backward", TORCH_BOX(&ws_sample_channels_backward_cpu));
}

}  // namespace wsnet
