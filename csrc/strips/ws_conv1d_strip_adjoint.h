// The fused strip backward of WSConv1d (docs/design.md §2 backward; issue "Fused CUDA backward"),
// written once for host and device: the CUDA kernel (cuda/ws_conv1d_strip_adjoint_kernel.cuh)
// and its host model (host_model/ws_conv1d_strip_adjoint_model.cpp) call these functions.
//
// A block owns a strip of Ru padded input rows [u0, u0 + Ru) of one batch item: every gradient of
// those rows is complete inside the block, so strips need no carries. The outputs that touch the
// strip, t in [t_lo, t_hi], form the block's *frame*: rows [t_lo*s, t_hi*s + (L-1)*d]. Per column
// tile of CT condensed columns:
//   * walkers build the dP tile on chip: along each sampling line dP is a running box sum,
//     +gy at a segment's first column and -gy after its last (the gy of open segments wait in a
//     register ring, as the forward's parked sums do); only the strip's own rows are stored;
//   * grad_f[r, j] += sum_v dP[r, v] * condensed[j, v] accumulates in shared memory (§2: df), on
//     tensor cores for Mc >= 8 (below: CUDA cores, adjoint_accumulate_grad_f);
//   * grad_condensed[j, v] += sum_r f[r, j] * dP[r, v] goes to the block's own slice of a partial
//     buffer (§2: dcondensed), which a second kernel adds up in a fixed order.
// At the strip's end grad_f goes to every channel repeat of grad_input. dP never reaches global
// memory; no atomics: bitwise-deterministic results for a given grid. For Mc >= 8 the two products
// run on tensor cores (TF32 or 3xTF32, as the forward); for Mc < 8 on CUDA cores.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/ws_conv1d_geometry.h"
#include "strips/ws_conv1d_strips.h"

namespace wsnet {

constexpr int kAdjointThreads = 256;
constexpr int kAdjointLinesPerThread = 3;

struct AdjointPlan {
  int64_t rows;        // Ru: the strip's own padded rows (0: the shape does not fit this kernel)
  int64_t rows_pad;    // rows of F, dP and G: Ru, rounded up to 16 on the MMA path (zeros past Ru)
  int64_t j_pad;       // columns of F, C and G: Mc, rounded up to 16 on the MMA path (zeros past Mc)
  int64_t strips;      // ceil(Tp / Ru) per batch item
  int64_t frame_rows;  // the most rows a frame spans: Ru - 1 + 2*(L-1)*d + s, at most
  int64_t line_step, dn, ring;  // as the forward's (ws_conv1d_strips.h)
  int64_t delta_min, lines;     // carrying lines of a frame: delta = delta_min + i*line_step
  int64_t col_tiles;   // ceil(Lc / CT)
  int64_t ld_f, ld_c, ld_p, ld_g;  // F (rows_pad x ld_f), C (CT x ld_c), dP column-major (CT x ld_p), G
  int64_t grid;        // persistent blocks; each owns slice blockIdx of the partial buffer
  int64_t threads;
  int64_t f_offset, c_offset, p_offset, g_offset, scratch_offset, shared_floats;
  int precision;       // StripPrecision: kFma (CUDA-core products) or kTf32 / kTf32x3 (tensor cores)
};

// Shared-memory offsets (floats) of F(r, j), C(v - v0, j), dP(v - v0, r), G(r, j).
// The ring size the kernel is instantiated for (the plan allows K <= 8).
inline int adjoint_ring_template(int64_t ring) { return ring <= 4 ? 4 : 8; }
WS_HOST_DEVICE int64_t adjoint_f_index(const AdjointPlan& p, int64_t r, int64_t j) { return p.f_offset + r * p.ld_f + j; }
WS_HOST_DEVICE int64_t adjoint_c_index(const AdjointPlan& p, int64_t vl, int64_t j) { return p.c_offset + vl * p.ld_c + j; }
WS_HOST_DEVICE int64_t adjoint_p_index(const AdjointPlan& p, int64_t vl, int64_t r) { return p.p_offset + vl * p.ld_p + r; }
WS_HOST_DEVICE int64_t adjoint_g_index(const AdjointPlan& p, int64_t r, int64_t j) { return p.g_offset + r * p.ld_g + j; }

// The plan, or rows = 0 where the kernel does not fit. Strips of up to 256 rows, halved while the
// frame's lines exceed kAdjointLinesPerThread per thread or the shared memory exceeds the limit.
// MMA path (Mc >= 8): both products on tensor cores, m16n8k8 TF32 (ws_conv1d_strips.h's maps):
//   grad_f  (rows x Mc)  = dP (rows x CT) . C (CT x Mc):  A = dP read (row, k = v): v*ld_p + r, so
//                          ld_p = 8 (mod 32) makes a fragment load hit 32 banks; B = C read
//                          (k = v, n = j): v*ld_c + j, ld_c = 8 (mod 32) likewise.
//   partial (Mc x CT)    = F^T (Mc x rows) . dP (rows x CT): A = F read (m = j, k = r): r*ld_f + j,
//                          ld_f = 8 (mod 32); B = dP read (k = r, n = v): v*ld_p + r, which with
//                          ld_p = 8 (mod 32) is a 2-way conflict (the transposed read of the same
//                          tile cannot be conflict-free for both; counted by the host model).
inline AdjointPlan choose_adjoint_plan(const Conv1dGeometry& g, StripPrecision precision,
                                       int64_t shared_limit, int64_t max_grid) {
  AdjointPlan none{};
  if (g.out_len == 0 || g.batch == 0 || !narrow_ints_fit(g, 2048)) return none;
  const bool mma = precision != StripPrecision::kFma;
  if (mma && g.condensed_channels < kStripMinMmaChannels) return none;
  const StripLineGeometry lg = strip_line_geometry(g);
  const int64_t line_step = lg.line_step, dn = lg.dn, ring = lg.ring;
  if (ring > 8) return none;
  const int64_t mc = g.condensed_channels;
  const auto to_8_mod_32 = [](int64_t n) { return strip_pad_to(n, 8, 32); };
  for (int64_t rows = 256; rows >= 8; rows /= 2) {
    AdjointPlan p{};
    p.precision = int(precision);
    p.rows = std::min<int64_t>(rows, g.padded_len);
    p.rows_pad = mma ? strip_round_up(p.rows, 16) : p.rows;
    p.j_pad = mma ? strip_round_up(mc, 16) : mc;
    p.strips = (g.padded_len + p.rows - 1) / p.rows;
    p.frame_rows = p.rows - 1 + 2 * g.halo_rows() + g.stride;
    p.line_step = line_step;
    p.dn = dn;
    p.ring = ring;
    p.delta_min = -(g.out_channels - 1) * g.sample_stride * g.dilation;
    p.lines = (p.frame_rows - 1 - p.delta_min) / line_step + 1;
    p.col_tiles = (g.condensed_len + kStripColumns - 1) / kStripColumns;
    // FMA path: ld_p odd, so the products' column walks over dP hit distinct banks
    p.ld_p = mma ? to_8_mod_32(p.rows_pad) : p.rows + 1;
    p.ld_f = mma ? to_8_mod_32(p.j_pad) : mc;
    p.ld_c = p.ld_f;
    p.ld_g = mma ? p.j_pad + 4 : mc;
    p.threads = kAdjointThreads;
    p.grid = std::max<int64_t>(1, std::min<int64_t>(g.batch * p.strips, max_grid));
    p.f_offset = 0;
    p.c_offset = p.rows_pad * p.ld_f;
    p.p_offset = p.c_offset + kStripColumns * p.ld_c;
    p.g_offset = p.p_offset + kStripColumns * p.ld_p;
    p.scratch_offset = p.g_offset + p.rows_pad * p.ld_g;
    // MMA: one 16 x 8 accumulator tile per warp for the partial's split over rows
    p.shared_floats = p.scratch_offset + (mma ? (p.threads / 32) * 128 : 0);
    if (p.lines <= kAdjointLinesPerThread * p.threads && p.shared_floats * 4 <= shared_limit) return p;
  }
  return none;
}

// The partial's MMA work of one column tile: items (16 condensed channels x 8 columns), each
// split over `splits` warps by ranges of rows (k-steps of 8) when there are fewer items than
// warps; the splits' accumulators meet in scratch and are added in warp order (deterministic).
WS_HOST_DEVICE int adjoint_partial_items(const AdjointPlan& p) { return int(p.j_pad / 16) * (kStripColumns / 8); }
WS_HOST_DEVICE int adjoint_partial_splits(const AdjointPlan& p) {
  const int items = adjoint_partial_items(p), warps = int(p.threads) / 32;
  return items >= warps ? 1 : warps / items;
}
// k-steps [first, last) of split `split` of the strip's rows_pad / 8 steps
WS_HOST_DEVICE void adjoint_split_steps(const AdjointPlan& p, int split, int splits, int& first, int& last) {
  const int steps = int(p.rows_pad / 8);
  first = steps * split / splits;
  last = steps * (split + 1) / splits;
}

// One line's walk through a frame (frame row r = delta + v*d at column v).
template <int KT>
struct AdjointWalker {
  float run;           // sum of the gy of the segments open at this column (§2 backward)
  float ring[KT];      // gy of open segments, newest first: ring[K-1] closes next
  int v_next, v_last_open, v_end;  // next column; last column where a segment opens; last column
  int row;             // frame row of column v_next
  int next_open, next_close;
  int open_n, open_t;  // filter and frame-relative output of the next segment to open
};

// Sets up line `line` of a frame with `t_count` outputs; false when it carries none.
template <int KT>
WS_HOST_DEVICE bool adjoint_walker_setup(const AdjointPlan& p, const Conv1dGeometry& g, int line,
                                         int t_count, AdjointWalker<KT>& w) {
  if (line >= p.lines) return false;
  const int s = int(g.stride), S = int(g.sample_stride), d = int(g.dilation), L = int(g.kernel_size);
  const int sd = S * d, dn = int(p.dn);
  const int delta = int(p.delta_min + int64_t(line) * p.line_step);
  int n_first = 0, n_last = 0;
  if (!line_segment_filters(delta, s, sd, dn, t_count, int(g.out_channels), n_first, n_last)) return false;
  w.run = 0;
  for (int i = 0; i < KT; ++i) w.ring[i] = 0;
  w.v_next = n_first * S;
  w.v_last_open = n_last * S;
  w.v_end = n_last * S + L - 1;
  w.row = delta + w.v_next * d;
  w.next_open = n_first * S;
  w.next_close = n_first * S + L - 1;
  w.open_n = n_first;
  w.open_t = (delta + n_first * sd) / s;
  return true;
}

// Walks columns w.v_next .. v_stop - 1: gy(n, t) reads grad_output (frame-relative t), put(v, r,
// value) stores dP at frame row r (the caller keeps only the strip's own rows).
template <int KT, typename Gy, typename Put>
WS_HOST_DEVICE void adjoint_walk(AdjointWalker<KT>& w, int v_stop, const AdjointPlan& p,
                                 const Conv1dGeometry& g, Gy&& gy, Put&& put) {
  const int d = int(g.dilation), K = int(p.ring), dn = int(p.dn);
  const int period = dn * int(g.sample_stride);
  const int t_step = int(p.dn * g.sample_stride * g.dilation / g.stride);
  const int stop = strip_min(v_stop, w.v_end + 1);
  for (; w.v_next < stop; ++w.v_next, w.row += d) {
    if (w.v_next == w.next_open) {  // a segment opens here: +gy (past the last one: a 0, which
      // keeps the ring's positions, so the segment that closes next stays at ring[K-1])
      const float value = w.v_next <= w.v_last_open ? gy(w.open_n, w.open_t) : 0.f;
WS_UNROLL
      for (int i = KT - 1; i > 0; --i) w.ring[i] = w.ring[i - 1];
      w.ring[0] = value;
      w.run += value;
      w.next_open += period;
      w.open_n += dn;
      w.open_t += t_step;
    }
    put(w.v_next, w.row, w.run);
    if (w.v_next == w.next_close) {  // the oldest open segment ends here: -gy after this column
      w.run -= ring_at(w.ring, K - 1);
      w.next_close += period;
    }
  }
}

// Frame of strip u0: outputs [t_lo, t_lo + t_count) touch rows [u0, u0 + Ru); t_count = 0 if none.
WS_HOST_DEVICE void adjoint_frame(const AdjointPlan& p, const Conv1dGeometry& g, int64_t u0,
                                  int64_t& t_lo, int64_t& t_count) {
  const int64_t s = g.stride, first = u0 - g.halo_rows();
  t_lo = first <= 0 ? 0 : (first + s - 1) / s;
  const int64_t last_row = std::min<int64_t>(u0 + p.rows, g.padded_len) - 1;
  const int64_t t_hi = std::min<int64_t>(last_row / s, g.out_len - 1);
  t_count = t_hi >= t_lo ? t_hi - t_lo + 1 : 0;
}

// dP[b, u, v] by its definition (the taps l = v mod S, v mod S + S, ... whose row u - l*d starts an
// output), for blocks that met NaN or Inf in grad_output: a running sum would carry it along the
// whole line. O(L / S) per point.
template <typename scalar_t>
WS_HOST_DEVICE float adjoint_point_value(const scalar_t* gy_b, const Conv1dGeometry& g, int64_t u, int64_t v) {
  float sum = 0.f;
  for (int64_t l = v % g.sample_stride; l < g.kernel_size && l <= v; l += g.sample_stride) {
    const int64_t row = u - l * g.dilation;
    if (row < 0) break;
    if (row % g.stride != 0) continue;
    const int64_t n = (v - l) / g.sample_stride, t = row / g.stride;
    if (n < g.out_channels && t < g.out_len) sum += static_cast<float>(gy_b[n * g.out_len + t]);
  }
  return sum;
}

// The per-strip and per-tile fills, as thread `tid` of `threads` does them (store(index, value)
// writes shared memory): F (folded own rows, zero past Ru and Mc) and G = 0; the condensed slab
// (zero past Lc and Mc) and dP = 0 (lines that carry no output leave their points at 0).
template <typename scalar_t, typename Store>
WS_HOST_DEVICE void adjoint_fold(const AdjointPlan& p, const Conv1dGeometry& g, const scalar_t* x_b, int64_t u0,
                                 int own_rows, int tid, int threads, Store&& store) {
  const int mc = int(g.condensed_channels), rows = int(p.rows_pad);
  for (int k = tid; k < rows * int(p.j_pad); k += threads) {  // rows fastest: coalesced reads of x
    const int r = k % rows, j = k / rows;
    store(adjoint_f_index(p, r, j), (r < own_rows && j < mc) ? folded_input<float>(x_b, g, j, g.input_time(u0 + r)) : 0.f);
    store(adjoint_g_index(p, r, j), 0.f);
  }
}

template <typename Store>
WS_HOST_DEVICE void adjoint_load_tile(const AdjointPlan& p, const Conv1dGeometry& g, const float* cond, int v0,
                                      int tid, int threads, Store&& store) {
  const int mc = int(g.condensed_channels);
  for (int k = tid; k < kStripColumns * int(p.j_pad); k += threads) {  // columns fastest: coalesced
    const int vl = k % kStripColumns, j = k / kStripColumns, v = v0 + vl;
    store(adjoint_c_index(p, vl, j), (v < g.condensed_len && j < mc) ? cond[int64_t(j) * g.condensed_len + v] : 0.f);
  }
  for (int k = tid; k < kStripColumns * int(p.ld_p); k += threads) store(p.p_offset + k, 0.f);
}

// dP of a tile by its definition (after NaN/Inf met in grad_output), own rows only.
template <typename scalar_t, typename Store>
WS_HOST_DEVICE void adjoint_pointwise_tile(const AdjointPlan& p, const Conv1dGeometry& g, const scalar_t* gy_b,
                                           int64_t u0, int own_rows, int v0, int tid, int threads, Store&& store) {
  for (int k = tid; k < own_rows * kStripColumns; k += threads) {
    const int r = k % own_rows, vl = k / own_rows;
    if (v0 + vl < g.condensed_len) store(adjoint_p_index(p, vl, r), adjoint_point_value(gy_b, g, u0 + r, v0 + vl));
  }
}

// grad_input of every channel repeat from G: the strip's unpadded rows, coalesced in time.
template <typename scalar_t>
WS_HOST_DEVICE void adjoint_write_grad_input(const AdjointPlan& p, const Conv1dGeometry& g, const float* smem,
                                             int64_t b, int64_t u0, int own_rows, scalar_t* grad_input,
                                             int tid, int threads) {
  const int mc = int(g.condensed_channels);
  const int64_t repeats = g.in_channels / mc;
  for (int k = tid; k < own_rows * mc; k += threads) {
    const int r = k % own_rows, j = k / own_rows;
    const int64_t i = g.input_time(u0 + r);
    if (i < 0) continue;
    const scalar_t value = static_cast<scalar_t>(smem[adjoint_g_index(p, r, j)]);
    for (int64_t c = 0; c < repeats; ++c) grad_input[(b * g.in_channels + c * mc + j) * g.length + i] = value;
  }
}

// grad_f[r, j] += sum over the tile's columns of dP[v, r] * C[v, j], for the pairs k = tid,
// tid + threads, ... of the strip's (Ru x Mc) (shared memory: dP column-major, C (CT x Mc)).
WS_HOST_DEVICE void adjoint_accumulate_grad_f(float* smem, const AdjointPlan& p, int64_t mc, int own_rows,
                                              int tid, int threads) {
  for (int k = tid; k < own_rows * int(mc); k += threads) {
    const int r = k % own_rows, j = k / own_rows;
    float sum = 0.f;
    for (int vl = 0; vl < kStripColumns; ++vl) {
      sum += smem[adjoint_p_index(p, vl, r)] * smem[adjoint_c_index(p, vl, j)];
    }
    smem[adjoint_g_index(p, r, j)] += sum;
  }
}

// partial[j, col0 + vl] += sum over the strip's rows of F[r, j] * dP[vl, r], for the pairs
// k = tid, tid + threads, ... of (Mc x CT); `partial` is this block's own (Mc x Lc) slice.
WS_HOST_DEVICE void adjoint_accumulate_partial(const float* smem, const AdjointPlan& p, const Conv1dGeometry& g,
                                               int own_rows, int v0, float* partial, int tid, int threads) {
  const int mc = int(g.condensed_channels);
  for (int k = tid; k < mc * kStripColumns; k += threads) {
    const int vl = k % kStripColumns, j = k / kStripColumns;
    if (v0 + vl >= g.condensed_len) continue;
    float sum = 0.f;
    for (int r = 0; r < own_rows; ++r) sum += smem[adjoint_f_index(p, r, j)] * smem[adjoint_p_index(p, vl, r)];
    partial[int64_t(j) * g.condensed_len + v0 + vl] += sum;
  }
}

}  // namespace wsnet
