// The column-streaming forward of WSConv1d on CUDA (docs/design.md §2.1-2.4 fused in one kernel).
//
// A block owns one batch row b and a run of outputs [t0, t0 + To): the padded input rows
// u = t0*s + r, 0 <= r < R = (To - 1)*s + (L - 1)*d + 1, one thread per row. It folds its rows of
// the input into shared memory (§2.1), then sweeps the condensed filter's columns v = 0 .. Lc-1:
//   p = sum_j f[j, u] * condensed[j, v]                   (§2.2, one element of P)
//   Q_v[r] = p + Q_{v-1}[r - d]                           (§2.3, the line prefix, lines clipped at
//                                                          the block's first row and column 0)
// Filter n's segment for output t runs from (row t*s, col n*S) to (t*s + (L-1)*d, n*S + L - 1) along
// one line, so y[n, t] = Q at its end minus Q one step before its start (§2.4). The start value is
// parked in a small ring in shared memory until the end column arrives; it is zero where the step
// before the start leaves the block (n = 0, or t = t0). Only two columns of Q live at a time: P is
// never stored. One barrier per column orders the exchange of Q between rows.
#pragma once

#include "common/ws_conv1d_geometry.h"

namespace wsnet {

struct StreamTiles {
  int64_t outputs;     // To
  int64_t rows;        // R
  int64_t threads;     // R rounded up to a warp
  int64_t ring;        // K = L / S + 1 parked start values per output (K * S > L: a slot is free
                       // again before the next filter that maps to it starts)
  int64_t t_tiles;     // ceil(T_out / To)
  int64_t shared_bytes;
};

inline int64_t stream_shared_bytes(const Conv1dGeometry& g, int64_t threads, int64_t outputs,
                                   int64_t ring, int64_t acc_bytes) {
  return ((g.condensed_channels + 2) * threads + ring * outputs) * acc_bytes;
}

// The largest power-of-two row count (<= 512) that fits the shared-memory budget, halved while the
// grid has fewer than two blocks per multiprocessor and the halo stays under half a block.
// outputs = 0 when nothing fits (the caller falls back to the tile kernel).
inline StreamTiles choose_stream_tiles(const Conv1dGeometry& g, int64_t acc_bytes,
                                       int64_t shared_limit, int64_t multiprocessors) {
  StreamTiles chosen{};
  if (!narrow_ints_fit(g, 4096)) return chosen;  // the kernel narrows to int (a block holds <= 512 rows)
  const int64_t halo = g.halo_rows() + 1;
  const int64_t ring = g.kernel_size / g.sample_stride + 1;
  for (int64_t rows = 512; rows >= 32 && rows >= halo; rows /= 2) {
    const int64_t outputs = std::min<int64_t>((rows - halo) / g.stride + 1, g.out_len);
    const int64_t used_rows = (outputs - 1) * g.stride + halo;
    const int64_t threads = (used_rows + 31) / 32 * 32;
    const int64_t bytes = stream_shared_bytes(g, threads, outputs, ring, acc_bytes);
    if (bytes > shared_limit) continue;
    const int64_t t_tiles = (g.out_len + outputs - 1) / outputs;
    chosen = {outputs, used_rows, threads, ring, t_tiles, bytes};
    if (g.batch * t_tiles >= 2 * multiprocessors || rows / 2 < 2 * halo) break;
  }
  return chosen;
}

// y[b, n, t] by the definition (definition_output, ws_conv1d_geometry.h) from the whole input and
// condensed filter (Mc, Lc). Used where NaN or Inf appear: the line prefix sums (and the channel
// fold, which adds +Inf and -Inf before the multiply) would spread them differently from conv1d.
template <typename scalar_t, typename acc_t>
__device__ inline acc_t cuda_definition_output(const scalar_t* __restrict__ x, const acc_t* __restrict__ cond,
                                               const scalar_t* __restrict__ bias, const Conv1dGeometry& g,
                                               int64_t b, int64_t n, int64_t t) {
  return definition_output<acc_t>(x + b * g.in_channels * g.length, cond, g.condensed_len, 1, g, n, t,
                                  bias != nullptr ? static_cast<acc_t>(bias[n]) : acc_t(0));
}

template <typename scalar_t, typename acc_t>
__global__ void forward_stream_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ cond,
                                      const scalar_t* __restrict__ bias, scalar_t* __restrict__ y,
                                      Conv1dGeometry g, StreamTiles tiles) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const int r = threadIdx.x;
  const int mc = static_cast<int>(g.condensed_channels), width = static_cast<int>(tiles.threads);
  const int d = static_cast<int>(g.dilation), s = static_cast<int>(g.stride);
  const int S = static_cast<int>(g.sample_stride), L = static_cast<int>(g.kernel_size);
  const int lc = static_cast<int>(g.condensed_len), n_filters = static_cast<int>(g.out_channels);
  const int K = static_cast<int>(tiles.ring), to = static_cast<int>(tiles.outputs);
  const int halo = (L - 1) * d;
  acc_t* f_s = reinterpret_cast<acc_t*>(shared_raw);  // (Mc, width): folded input rows
  acc_t* q_s = f_s + mc * width;                       // (2, width): Q of the last two columns
  acc_t* ring = q_s + 2 * width;                       // (K, To): parked start values
  for (int64_t tile = blockIdx.x; tile < g.batch * tiles.t_tiles; tile += gridDim.x) {  // uniform
    const int64_t b = tile / tiles.t_tiles;
    const int64_t t0 = (tile % tiles.t_tiles) * tiles.outputs;
    const int t_count = static_cast<int>(std::min(tiles.outputs, g.out_len - t0));
    const int64_t u = t0 * s + r;
    // fold (§2.1): f[j, u] = sum_c xp[b, c*Mc + j, u]; zero past the rows this tile needs
    const int64_t i = (r < tiles.rows && u < g.padded_len) ? g.input_time(u) : -1;
    for (int j = 0; j < mc; ++j) {
      f_s[j * width + r] = folded_input<acc_t>(x + b * g.in_channels * g.length, g, j, i);
    }
    // this row ends output t_end's segments (row t_end*s + (L-1)*d) and sits one step before
    // t_start's (row t_start*s - d); -1: neither. Indices relative to t0.
    const int t_end = (r >= halo && (r - halo) % s == 0 && (r - halo) / s < t_count) ? (r - halo) / s : -1;
    const int t_start = ((r + d) % s == 0 && (r + d) / s < t_count) ? (r + d) / s : -1;
    // the step before t_end's start leaves the block (row < 0): nothing was parked for it
    const bool end_starts_at_top = t_end >= 0 && t_end * s < d;
    int nonfinite = 0;
    int n_park = 1, n_close = 0;  // next filter whose column n*S - 1 / n*S + L - 1 is due
    for (int v = 0; v < lc; ++v) {
      acc_t p = 0;  // §2.2
      for (int j = 0; j < mc; ++j) p += f_s[j * width + r] * cond[static_cast<int64_t>(j) * lc + v];
      nonfinite |= !isfinite(p);
      const acc_t q = p + ((v > 0 && r >= d) ? q_s[((v - 1) & 1) * width + r - d] : acc_t(0));  // §2.3
      q_s[(v & 1) * width + r] = q;
      if (v == n_park * S - 1) {  // park the value one step before filter n_park's segments
        if (n_park < n_filters && t_start >= 0) ring[(n_park % K) * to + t_start] = q;
        ++n_park;
      }
      if (v == n_close * S + L - 1) {  // filter n_close's last column: §2.4
        if (n_close < n_filters && t_end >= 0) {
          const acc_t before = (n_close == 0 || end_starts_at_top) ? acc_t(0) : ring[(n_close % K) * to + t_end];
          acc_t out = q - before;
          if (bias != nullptr) out += static_cast<acc_t>(bias[n_close]);
          y[(b * g.out_channels + n_close) * g.out_len + t0 + t_end] = static_cast<scalar_t>(out);
        }
        ++n_close;
      }
      __syncthreads();  // Q_v and the ring are complete before column v + 1 reads them
    }
    if (__syncthreads_or(nonfinite)) {  // uniform: NaN/Inf in P, use the definition (as conv1d does)
      for (int64_t k = r; k < int64_t(t_count) * g.out_channels; k += blockDim.x) {
        const int64_t n = k / t_count, t = t0 + k % t_count;
        y[(b * g.out_channels + n) * g.out_len + t] =
            static_cast<scalar_t>(cuda_definition_output(x, cond, bias, g, b, n, t));
      }
    }
    __syncthreads();  // f_s is rewritten by the next tile
  }
}

}  // namespace wsnet
