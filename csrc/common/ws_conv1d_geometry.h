// Index math of WSConv1d (docs/design.md §2), written once and compiled for host and device:
// the geometry of a call, the fold and the definition at one point (used by the CUDA kernels and
// by both devices' NaN / Inf paths), and the local line prefix of a tile.
//
// Coordinates: u is a row of the zero-padded input (0 <= u < Tp), v a column of the condensed
// filter (0 <= v < Lc). Output (n, t) is the sum of the inner-product map P over its *segment*:
// the L points (t*s + l*d, n*S + l), l = 0..L-1, which lie on one sampling line of slope d.
//
// Tiles of rows use a *local* line prefix sum Q inside the tile:
//   Q[r, v] = P[r, v] + Q[r - d, v - 1]            (zero outside the tile)           (§2 step 3)
// A segment that lies inside the tile then sums to
//   Q[last_row, last_col] - Q[first_row - d, first_col - 1]                          (§2 step 4)
// because both prefixes walk back along the same line and differ exactly by the segment. The CPU
// tiles (tiles/cpu/ws_conv1d_tile_kernels.h) and the CUDA line / stream walkers keep Q column by column
// in registers; line_prefix_sum and segment_sum below are that rule over a whole tile in memory,
// as the CUDA P-tile kernel (forward_tile_kernel) holds it.
#pragma once

#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define WS_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define WS_HOST_DEVICE inline
#endif

namespace wsnet {

// floor((T + pad_total - d*(L-1) - 1) / s) + 1, for T_out >= 1 checks the numerator first.
WS_HOST_DEVICE int64_t conv_out_length(int64_t length, int64_t pad_total, int64_t dilation,
                                       int64_t kernel_size, int64_t stride) {
  const int64_t span = length + pad_total - dilation * (kernel_size - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// Shapes and options of one ws_conv1d call, with the line coordinates of §2.
WS_HOST_DEVICE int64_t gcd64(int64_t a, int64_t b) {
  while (b != 0) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

struct Conv1dGeometry {
  int64_t batch;               // B
  int64_t in_channels;         // M
  int64_t length;              // T
  int64_t condensed_channels;  // Mc = M / C
  int64_t condensed_len;       // Lc
  int64_t out_channels;        // N
  int64_t kernel_size;         // L
  int64_t sample_stride;       // S
  int64_t stride;              // s
  int64_t pad_left;            // p (left); 'same' may pad one more on the right
  int64_t pad_right;
  int64_t dilation;            // d
  int64_t padded_len;          // Tp = T + pad_left + pad_right
  int64_t out_len;             // T_out

  // Column of tap 0 of filter n: the window [n*S, n*S + L) of the condensed filter.
  WS_HOST_DEVICE int64_t first_col(int64_t n) const { return n * sample_stride; }
  WS_HOST_DEVICE int64_t last_col(int64_t n) const { return n * sample_stride + kernel_size - 1; }
  // Padded row of tap 0 and tap L-1 of output t.
  WS_HOST_DEVICE int64_t first_row(int64_t t) const { return t * stride; }
  WS_HOST_DEVICE int64_t last_row(int64_t t) const {
    return t * stride + (kernel_size - 1) * dilation;
  }
  // Rows a segment spans beyond its first: the halo a tile needs, (L-1)*d.
  WS_HOST_DEVICE int64_t halo_rows() const { return (kernel_size - 1) * dilation; }
  // rows a sampling line advances between the outputs it serves: gcd(s, S*d) (§2.3)
  WS_HOST_DEVICE int64_t line_step() const { return gcd64(stride, sample_stride * dilation); }
  // Time index in the unpadded input of padded row u, or -1 inside the zero padding.
  WS_HOST_DEVICE int64_t input_time(int64_t u) const {
    const int64_t i = u - pad_left;
    return (i >= 0 && i < length) ? i : -1;
  }
  // Rows [t0*s, last_row(t1-1)] hold every segment of outputs t0 <= t < t1.
  WS_HOST_DEVICE int64_t tile_rows(int64_t t0, int64_t t1) const {
    return last_row(t1 - 1) - first_row(t0) + 1;
  }
};

// Step 1 of §2 at one point: f[j, u] = sum over the repeats c of xp[c*Mc + j, u], for batch row
// x_b (M, T); zero in the padding (input_time < 0). Every CUDA fold calls this; the CPU fold
// (tiles/cpu/ws_conv1d_kernel.cpp) reads whole rows and phases and adds them in the same order.
template <typename acc_t, typename scalar_t>
WS_HOST_DEVICE acc_t folded_input(const scalar_t* x_b, const Conv1dGeometry& g, int64_t j,
                                  int64_t input_time) {
  acc_t sum = 0;
  if (input_time >= 0) {
    for (int64_t m = j; m < g.in_channels; m += g.condensed_channels) {
      sum += static_cast<acc_t>(x_b[m * g.length + input_time]);
    }
  }
  return sum;
}

// Output (n, t) of batch row x_b (M, T) by the definition itself (§2): `start` (the bias, or 0)
// plus, over taps l and input channels m in that order, x[m, t*s + l*d - p] * condensed[m % Mc,
// n*S + l], zero padding included as zeros (so 0 * Inf gives NaN, as in conv1d). The condensed
// filter's (j, v) is cond[j * j_stride + v * v_stride]. Used where NaN or Inf appear, and as
// the CUDA fallback for shapes no tile fits; O(L * M) per output.
template <typename acc_t, typename scalar_t>
WS_HOST_DEVICE acc_t definition_output(const scalar_t* x_b, const acc_t* cond, int64_t j_stride,
                                       int64_t v_stride, const Conv1dGeometry& g, int64_t n,
                                       int64_t t, acc_t start) {
  acc_t sum = start;
  for (int64_t l = 0; l < g.kernel_size; ++l) {
    const int64_t i = g.input_time(g.first_row(t) + l * g.dilation);
    const int64_t v = g.first_col(n) + l;
    for (int64_t m = 0; m < g.in_channels; ++m) {
      const acc_t xv = i >= 0 ? static_cast<acc_t>(x_b[m * g.length + i]) : acc_t(0);
      sum += xv * cond[(m % g.condensed_channels) * j_stride + v * v_stride];
    }
  }
  return sum;
}

// The CUDA line, stream and adjoint kernels keep rows, columns and products of two options (S*d,
// (Lc-1)*d, a tile's rows plus outputs*s) in 32-bit registers. They are chosen only for shapes where
// every such value stays below 2^30, checked here in 64 bits (each option is < 2^31 after the op's
// checks, so the products cannot overflow); other shapes go to the 64-bit kernels (direct, gather).
// `tile_rows`: the most rows a block of the kernel holds.
inline bool narrow_ints_fit(const Conv1dGeometry& g, int64_t tile_rows) {
  constexpr int64_t kLimit = int64_t(1) << 30;
  return g.condensed_len < kLimit && g.condensed_channels < kLimit && g.out_channels < kLimit &&
         g.condensed_len * g.dilation + g.sample_stride * g.dilation + 2 * tile_rows < kLimit;
}

// Segment sum from a local line prefix Q (row-major, `ld` elements per row) whose row 0 is padded
// row `row0` and column 0 is condensed column `col0`. The segment must lie inside the tile.
template <typename acc_t>
WS_HOST_DEVICE acc_t segment_sum(const acc_t* q, int64_t ld, const Conv1dGeometry& g, int64_t n,
                                 int64_t t, int64_t row0, int64_t col0) {
  const int64_t r_first = g.first_row(t) - row0;
  const int64_t c_first = g.first_col(n) - col0;
  const int64_t r_last = g.last_row(t) - row0;
  const int64_t c_last = g.last_col(n) - col0;
  acc_t sum = q[r_last * ld + c_last];
  if (r_first >= g.dilation && c_first >= 1) {
    sum -= q[(r_first - g.dilation) * ld + (c_first - 1)];
  }
  return sum;
}

// In-place local line prefix sum of a row-major (rows x cols) tile: q[r, v] += q[r - d, v - 1].
// Rows go in order, so each row adds a finished row d above it (§2 step 3, and the adjoint's).
template <typename acc_t>
WS_HOST_DEVICE void line_prefix_sum(acc_t* q, int64_t rows, int64_t cols, int64_t d) {
  for (int64_t r = d; r < rows; ++r) {
    acc_t* row = q + r * cols;
    const acc_t* above = q + (r - d) * cols;
    for (int64_t v = 1; v < cols; ++v) row[v] += above[v - 1];
  }
}

}  // namespace wsnet
