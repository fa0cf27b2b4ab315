// Index math of channel-axis weight sampling (docs/design.md §3), for host and device.
// condensed (Lc, K) -> weight (N, M, K): weight[n, m, k] = condensed[n*S + m % Mc, k], with
// Lc = Mc + (N - 1) * S and M = Mc * C. (WSConv2d: K = kh * kw; WSLinear: K = 1.)
#pragma once

#include <cstdint>

#include "common/ws_conv1d_geometry.h"  // WS_HOST_DEVICE

namespace wsnet {

struct ChannelSampling {
  int64_t out_channels;        // N
  int64_t in_channels;         // M
  int64_t condensed_channels;  // Mc
  int64_t condensed_len;       // Lc
  int64_t sample_stride;       // S
  int64_t inner;               // K: elements per (n, m), e.g. kh * kw

  // Row of the condensed tensor that weight[n, m, :] reads.
  WS_HOST_DEVICE int64_t source_row(int64_t n, int64_t m) const {
    return n * sample_stride + m % condensed_channels;
  }
  // Filters n that read condensed row c: n*S <= c < n*S + Mc, i.e. n in [n_first, n_last].
  WS_HOST_DEVICE int64_t first_reader(int64_t c) const {
    const int64_t lowest = c - condensed_channels + 1;  // n*S >= lowest
    return lowest <= 0 ? 0 : (lowest + sample_stride - 1) / sample_stride;
  }
  WS_HOST_DEVICE int64_t last_reader(int64_t c) const {
    const int64_t n = c / sample_stride;
    return n < out_channels - 1 ? n : out_channels - 1;
  }
};

// grad_condensed[c, k] = sum over every (n, m) that reads row c of grad_weight[n, m, k], added
// in a fixed order (n, then the repeats of m) so the result is deterministic.
template <typename scalar_t, typename acc_t>
WS_HOST_DEVICE acc_t gather_row_gradient(const scalar_t* grad_weight, const ChannelSampling& cs,
                                         int64_t c, int64_t k) {
  acc_t sum = 0;
  for (int64_t n = cs.first_reader(c); n <= cs.last_reader(c); ++n) {
    const int64_t j = c - n * cs.sample_stride;  // condensed channel within filter n
    for (int64_t m = j; m < cs.in_channels; m += cs.condensed_channels) {
      sum += static_cast<acc_t>(grad_weight[(n * cs.in_channels + m) * cs.inner + k]);
    }
  }
  return sum;
}

}  // namespace wsnet
