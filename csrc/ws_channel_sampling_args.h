// Host-side checks of the channel-sampling ops' arguments (see ws_channel_sampling.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "ws_channel_sampling.h"

namespace wsnet {

inline ChannelSampling make_channel_sampling(int64_t condensed_len, int64_t inner,
                                             int64_t out_channels, int64_t sample_stride,
                                             int64_t channel_repeat) {
  TORCH_CHECK_VALUE(out_channels >= 1 && sample_stride >= 1 && channel_repeat >= 1,
                    "ws_sample_channels: expected out_channels, sample_stride and channel_repeat "
                    ">= 1, got ", out_channels, ", ", sample_stride, ", ", channel_repeat);
  ChannelSampling cs{};
  cs.out_channels = out_channels;
  cs.sample_stride = sample_stride;
  cs.condensed_len = condensed_len;
  cs.condensed_channels = condensed_len - (out_channels - 1) * sample_stride;
  TORCH_CHECK_VALUE(cs.condensed_channels >= 1,
                    "ws_sample_channels: expected condensed length Mc + (out_channels - 1) * "
                    "sample_stride with Mc >= 1, got ", condensed_len, " for out_channels ",
                    out_channels, " and sample_stride ", sample_stride);
  cs.in_channels = cs.condensed_channels * channel_repeat;
  cs.inner = inner;
  return cs;
}

}  // namespace wsnet
