// Host-side checks of the channel-sampling ops' arguments (see ws_channel_sampling.h).
#pragma once

#include <limits>
#include <vector>

#include "channel_sampling/ws_channel_sampling.h"
#include "common/ws_conv1d_op_args.h"  // kMaxOption
#include "common/ws_stable.h"

namespace wsnet {

inline ChannelSampling make_channel_sampling(int64_t condensed_len, int64_t inner,
                                             int64_t out_channels, int64_t sample_stride,
                                             int64_t channel_repeat) {
  WS_CHECK(out_channels >= 1 && sample_stride >= 1 && channel_repeat >= 1,
                    "ws_sample_channels: expected out_channels, sample_stride and channel_repeat "
                    ">= 1, got ", out_channels, ", ", sample_stride, ", ", channel_repeat);
  WS_CHECK(out_channels <= kMaxOption && sample_stride <= kMaxOption && channel_repeat <= kMaxOption,
           "ws_sample_channels: expected out_channels, sample_stride and channel_repeat < 2^31, got ",
           out_channels, ", ", sample_stride, ", ", channel_repeat);
  ChannelSampling cs{};
  cs.out_channels = out_channels;
  cs.sample_stride = sample_stride;
  cs.condensed_len = condensed_len;
  cs.condensed_channels = condensed_len - (out_channels - 1) * sample_stride;
  WS_CHECK(cs.condensed_channels >= 1,
                    "ws_sample_channels: expected condensed length Mc + (out_channels - 1) * "
                    "sample_stride with Mc >= 1, got ", condensed_len, " for out_channels ",
                    out_channels, " and sample_stride ", sample_stride);
  WS_CHECK(cs.condensed_channels <= std::numeric_limits<int64_t>::max() / channel_repeat,
           "ws_sample_channels: expected condensed channels * channel_repeat < 2^63, got ",
           cs.condensed_channels, " * ", channel_repeat);
  cs.in_channels = cs.condensed_channels * channel_repeat;
  cs.inner = inner;
  return cs;
}

// The sampling of a condensed tensor (Lc, ...) into out_channels filters; checked.
inline ChannelSampling sampling_of_condensed(const Tensor& condensed, int64_t out_channels,
                                             int64_t sample_stride, int64_t channel_repeat) {
  WS_CHECK(condensed.dim() >= 1, "ws_sample_channels: expected condensed of shape "
                    "(Lc, ...), got ", shape_of(condensed));
  const int64_t rows = condensed.size(0);
  return make_channel_sampling(rows, rows > 0 ? condensed.numel() / rows : 0, out_channels,
                               sample_stride, channel_repeat);
}

// The sampling whose weight gradient is grad_weight (N, M, ...); checked.
inline ChannelSampling sampling_of_grad(const Tensor& grad_weight, int64_t condensed_len,
                                        int64_t sample_stride, int64_t channel_repeat) {
  WS_CHECK(grad_weight.dim() >= 2, "ws_sample_channels_backward: expected grad_weight "
                    "of shape (N, M, ...), got ", shape_of(grad_weight));
  const int64_t nm = grad_weight.size(0) * grad_weight.size(1);
  const ChannelSampling cs = make_channel_sampling(
      condensed_len, nm > 0 ? grad_weight.numel() / nm : 0, grad_weight.size(0), sample_stride,
      channel_repeat);
  WS_CHECK(grad_weight.size(1) == cs.in_channels, "ws_sample_channels_backward: expected ",
                    cs.in_channels, " input channels in grad_weight, got ", shape_of(grad_weight));
  return cs;
}

// (N, M, ...) of the weight sampled from condensed (Lc, ...), and (Lc, ...) back from (N, M, ...).
inline std::vector<int64_t> sampled_weight_shape(const Tensor& condensed, const ChannelSampling& cs) {
  std::vector<int64_t> shape{cs.out_channels, cs.in_channels};
  for (int64_t i = 1; i < condensed.dim(); ++i) shape.push_back(condensed.size(i));
  return shape;
}
inline std::vector<int64_t> condensed_shape(const Tensor& grad_weight, const ChannelSampling& cs) {
  std::vector<int64_t> shape{cs.condensed_len};
  for (int64_t i = 2; i < grad_weight.dim(); ++i) shape.push_back(grad_weight.size(i));
  return shape;
}

}  // namespace wsnet
