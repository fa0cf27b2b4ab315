// The line-walking forward of WSConv1d on CUDA (docs/design.md §2.1-2.4 fused, no barrier per column).
//
// A block owns batch row b and outputs [t0, t0 + To): rows r = u - t0*s in [0, R). It folds its
// rows into shared memory (§2.1). Each sampling line is the set of points (r, v) with
// r - v*d = delta, a constant; filter n's segment for output t lies on the line
// delta = t*s - n*S*d (relative t), from column n*S to n*S + L - 1. One thread walks one line,
// keeping the line prefix (§2.3) in a register: q += P(r, v) (§2.2) column by column, parks q one
// column before each segment starts and emits q(end) - q(parked) (§2.4) at its end. No other
// thread reads what it computes, so the walk needs no barrier. Only lines with
// delta = 0 mod gcd(s, S*d) carry outputs (every other line when s = 2 divides S*d): the others
// get no thread, so P is evaluated only where an output needs it.
//
// On one line the valid filters form a progression n_first, n_first + dn, ... (dn = s / gcd(s, S*d));
// K = L / (dn*S) + 1 parked values are live at a time, kept in a per-thread ring in shared memory.
#pragma once

#include "common/ws_conv1d_geometry.h"

namespace wsnet {

struct LineTiles {
  int64_t outputs;   // To
  int64_t rows;      // R = (To - 1)*s + (L - 1)*d + 1
  int64_t t_tiles;   // ceil(T_out / To)
  int64_t dn;        // filter step between segments on one line
  int64_t line_step; // gcd(s, S*d): the spacing of the lines that carry outputs
  int64_t ring;      // K parked values per thread
  int64_t threads;   // threads per block (each walks lines tid, tid + threads, ...)
  int64_t shared_bytes;
};

// Same row tiling as the stream kernel: up to 512 rows, halved while the grid is short of blocks
// and the halo stays under half a tile. outputs = 0 when the shared memory does not suffice.
inline LineTiles choose_line_tiles(const Conv1dGeometry& g, int64_t acc_bytes, int64_t shared_limit,
                                   int64_t multiprocessors) {
  LineTiles chosen{};
  if (!narrow_ints_fit(g, 4096)) return chosen;  // the kernel narrows to int (a block holds < 4096 rows)
  const int64_t halo = g.halo_rows() + 1;
  const int64_t line_step = g.line_step();
  const int64_t dn = g.stride / line_step;
  const int64_t ring = g.kernel_size / (dn * g.sample_stride) + 1;
  const int64_t threads = 256;
  // the kernel's line and row indices are 32-bit
  if ((g.condensed_len + 512) * g.dilation + g.sample_stride * g.dilation * g.out_channels >= (int64_t(1) << 30)) {
    return chosen;
  }
  for (int64_t rows = 512; rows >= 32 && rows >= halo; rows /= 2) {
    const int64_t outputs = std::min<int64_t>((rows - halo) / g.stride + 1, g.out_len);
    const int64_t used_rows = (outputs - 1) * g.stride + halo;
    const int64_t bytes = (g.condensed_channels * used_rows + ring * threads) * acc_bytes;
    if (bytes > shared_limit) continue;
    const int64_t t_tiles = (g.out_len + outputs - 1) / outputs;
    chosen = {outputs, used_rows, t_tiles, dn, line_step, ring, threads, bytes};
    if (g.batch * t_tiles >= 2 * multiprocessors || rows / 2 < 2 * halo) break;
  }
  return chosen;
}

template <typename scalar_t, typename acc_t>
__global__ void forward_lines_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ cond,
                                     const scalar_t* __restrict__ bias, scalar_t* __restrict__ y,
                                     Conv1dGeometry g, LineTiles tiles) {
  extern __shared__ __align__(16) unsigned char lines_raw[];
  const int tid = threadIdx.x, block = blockDim.x;
  const int mc = static_cast<int>(g.condensed_channels), rows = static_cast<int>(tiles.rows);
  const int d = static_cast<int>(g.dilation), s = static_cast<int>(g.stride);
  const int S = static_cast<int>(g.sample_stride), L = static_cast<int>(g.kernel_size);
  const int lc = static_cast<int>(g.condensed_len), n_filters = static_cast<int>(g.out_channels);
  const int K = static_cast<int>(tiles.ring), dn = static_cast<int>(tiles.dn);
  const int sd = S * d;
  acc_t* f_s = reinterpret_cast<acc_t*>(lines_raw);  // (Mc, R): folded input rows
  acc_t* ring = f_s + mc * rows;                      // (K, threads): parked prefix values
  // the lines that can carry outputs: delta = delta_min + line * line_step, delta in [-(Lc-1)d, R)
  const int line_step = static_cast<int>(tiles.line_step);
  const int delta_min = -(((lc - 1) * d) / line_step) * line_step;
  const int n_lines = (rows - 1 - delta_min) / line_step + 1;
  for (int64_t tile = blockIdx.x; tile < g.batch * tiles.t_tiles; tile += gridDim.x) {  // uniform
    const int64_t b = tile / tiles.t_tiles;
    const int64_t t0 = (tile % tiles.t_tiles) * tiles.outputs;
    const int t_count = static_cast<int>(std::min(tiles.outputs, g.out_len - t0));
    for (int r = tid; r < rows; r += block) {  // fold (§2.1); zero past the padded input
      const int64_t u = t0 * s + r;
      const int64_t i = u < g.padded_len ? g.input_time(u) : -1;
      for (int j = 0; j < mc; ++j) {
        f_s[j * rows + r] = folded_input<acc_t>(x + b * g.in_channels * g.length, g, j, i);
      }
    }
    __syncthreads();
    int nonfinite = 0;
    for (int line = tid; line < n_lines; line += block) {
      const int delta = delta_min + line * line_step;
      // the first filter whose segment start row delta + n*S*d is >= 0 and a multiple of s
      int n_first = delta >= 0 ? 0 : (-delta + sd - 1) / sd;
      int k = 0;
      for (; k < dn; ++k, ++n_first) {
        if (((delta + n_first * sd) % s + s) % s == 0) break;
      }
      if (k == dn) continue;  // (cannot happen: delta = 0 mod gcd(s, S*d) meets a multiple of s)
      // the last filter whose output lies in this tile (row start <= (t_count-1)*s) and n < N
      const int n_by_t = ((t_count - 1) * s - delta) >= 0 ? ((t_count - 1) * s - delta) / sd : -1;
      const int n_hi = min(n_filters - 1, n_by_t);
      if (n_hi < n_first) continue;  // no output on this line
      const int n_last = n_first + (n_hi - n_first) / dn * dn;
      // walk columns n_first*S .. n_last*S + L - 1; the value parked before n_first is 0
      ring[0 * block + tid] = 0;
      int park_n = n_first + dn, park_i = 1, close_n = n_first, close_i = 0;
      acc_t q = 0;
      int r = delta + n_first * S * d;  // row of column n_first*S
      for (int v = n_first * S; v <= n_last * S + L - 1; ++v, r += d) {
        acc_t p = 0;  // §2.2
        for (int j = 0; j < mc; ++j) p += f_s[j * rows + r] * cond[static_cast<int64_t>(j) * lc + v];
        nonfinite |= !isfinite(p);
        q += p;  // §2.3
        if (park_n <= n_last && v == park_n * S - 1) {
          ring[(park_i % K) * block + tid] = q;
          park_n += dn;
          ++park_i;
        }
        if (v == close_n * S + L - 1) {  // §2.4
          acc_t out = q - ring[(close_i % K) * block + tid];
          if (bias != nullptr) out += static_cast<acc_t>(bias[close_n]);
          const int t_rel = (delta + close_n * sd) / s;
          y[(b * g.out_channels + close_n) * g.out_len + t0 + t_rel] = static_cast<scalar_t>(out);
          close_n += dn;
          ++close_i;
        }
      }
    }
    if (__syncthreads_or(nonfinite)) {  // uniform: NaN/Inf in P, use the definition (as conv1d does)
      for (int64_t k = tid; k < int64_t(t_count) * g.out_channels; k += block) {
        const int64_t n = k / t_count, t = t0 + k % t_count;
        y[(b * g.out_channels + n) * g.out_len + t] =
            static_cast<scalar_t>(cuda_definition_output(x, cond, bias, g, b, n, t));
      }
    }
    __syncthreads();  // f_s is rewritten by the next tile
  }
}

}  // namespace wsnet
