// Polyphase split of a strided WSConv1d for the CPU kernels: 1/g of the integral-image work.
//
// With dilation 1, y[n, t] = sum_l sum_j f[j, s*t + l] * condensed[j, n*S + l]. When g divides the
// stride s, the sample stride S and the kernel size L, write l = g*a + p (phase p < g): padded row
// s*t + g*a + p is row (s/g)*t + a of the input's phase p (padded rows = p mod g), and column
// n*S + g*a + p is column (S/g)*n + a of the condensed filter's phase p. So the layer equals a
// WSConv1d with the g phases as g*Mc condensed channels, stride s/g, sample stride S/g, kernel L/g,
// and Tp/g rows: its inner-product map P (docs/design.md §2) has 1/g of the multiply-adds and 1/g^2 of
// the entries. SoundNet's strided layers (s = 2, S and L even) halve their work.
//
// The split costs no pass of its own: the kernels' fold reads the phases straight from the input
// (InputLayout), the backward writes grad_input back the same way, and the condensed filter and
// its gradient are read and written in the caller's layout by index. The cpu_polyphase switch
// (WSNET_CPU_POLYPHASE=0) turns it off (tests compare both paths).
// The CUDA kernels skip the lines that carry no output themselves and do not use this.
#pragma once

#include <algorithm>
#include <numeric>
#include <utility>

#include "common/ws_conv1d_geometry.h"
#include "common/ws_switches.h"

namespace wsnet {

struct Polyphase {
  int64_t phases = 1;  // g; 1: no split
  int64_t rows = 0;    // rows of each phase that outputs reach: (T_out - 1) * s/g + L/g
};

inline Polyphase plan_polyphase(const Conv1dGeometry& g) {
  if (g.dilation != 1 || get_switch(Switch::kCpuPolyphase) == 0) return {};
  const int64_t phases = std::gcd(std::gcd(g.stride, g.sample_stride), g.kernel_size);
  if (phases == 1) return {};
  return {phases, (g.out_len - 1) * (g.stride / phases) + g.kernel_size / phases};
}

// The split problem's geometry: g*Mc condensed channels, Lc/g columns, kernel L/g, sample
// stride S/g, stride s/g, and `rows` unpadded rows (the phases carry the padding).
inline Conv1dGeometry split_geometry(const Conv1dGeometry& g, const Polyphase& plan) {
  const int64_t ph = plan.phases;
  Conv1dGeometry split = g;
  split.in_channels = g.in_channels * ph;
  split.condensed_channels = g.condensed_channels * ph;
  split.condensed_len = g.condensed_len / ph;
  split.kernel_size = g.kernel_size / ph;
  split.sample_stride = g.sample_stride / ph;
  split.stride = g.stride / ph;
  split.pad_left = split.pad_right = 0;
  split.length = split.padded_len = plan.rows;
  return split;
}

// Where the kernels' rows come from in the caller's input x (B, M, T): row r of phase p (p < phases)
// is input row phases*r + p - pad_left of channel c*Mc + j, folded into channel p*Mc + j. One phase
// is the unsplit input.
struct InputLayout {
  int64_t channels;   // M
  int64_t mc;         // Mc of the caller's condensed filter
  int64_t length;     // T
  int64_t pad_left;
  int64_t phases;
};

inline InputLayout input_layout(const Conv1dGeometry& g, const Polyphase& plan) {
  return {g.in_channels, g.condensed_channels, g.length, g.pad_left, plan.phases};
}

inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Rows [begin, end) of [0, rows) whose input row base + phases*r lies in [0, T).
inline std::pair<int64_t, int64_t> rows_inside(const InputLayout& in, int64_t base, int64_t rows) {
  const int64_t begin = std::clamp<int64_t>(-floor_div(base, in.phases), 0, rows);
  const int64_t end = std::clamp<int64_t>(floor_div(in.length - 1 - base, in.phases) + 1, begin, rows);
  return {begin, end};
}

// The input rows a split backward writes no grad_input to: row i = phases*r + p - pad_left is
// written for every phase row r < rows, so only [phases*rows - pad_left, T) (past the last output's
// reach) is left, and only it needs zeros. (Zeroing all of grad_input first wrote conv1's 3.5 MB
// twice.)
inline int64_t unreached_rows_begin(const Conv1dGeometry& g, const Polyphase& plan) {
  return std::clamp<int64_t>(plan.phases * plan.rows - g.pad_left, 0, g.length);
}

}  // namespace wsnet
