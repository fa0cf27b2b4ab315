// Per-tile work of the CPU kernels (docs/design.md §2), on raw float/double buffers, written as plain
// fixed-width loops that the compiler vectorizes. The tile entry points are compiled once per
// x86 ISA level (AVX-512, AVX2+FMA, baseline) and picked at load time (target_clones).
//
// The tile works *column by column* of the condensed filter. With the transposed prefix
// Q_v[r] = P[r, v] + Q_{v-1}[r - d] (the line recurrence of §2 step 3 read along v), column v
// only needs column v - 1, so a tile keeps two rows-long columns instead of a whole P tile, and
// every output is finished the moment its segment's last column is reached:
//   y[n, t] = Q_{last_col(n)}[t*s + (L-1)*d] - Q_{first_col(n)-1}[t*s - d]       (§2 step 4)
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "common/ws_conv1d_geometry.h"

#define WS_INLINE __attribute__((always_inline)) inline
// A function of its own built for AVX-512 (forward_tile_by_rows runs only in the AVX-512 build,
// ws_conv1d_isa.h, and a function not inlined there does not inherit that build's target).
#if defined(__GNUC__) && defined(__x86_64__)
#define WS_AVX512_NOINLINE __attribute__((noinline, target("arch=x86-64-v4")))
#else
#define WS_AVX512_NOINLINE __attribute__((noinline))
#endif
#if defined(__clang__)
#define WS_UNROLL_COLUMN_BLOCK _Pragma("unroll")
#else
#define WS_UNROLL_COLUMN_BLOCK _Pragma("GCC unroll 4")
#endif

namespace wsnet {
namespace tile {

constexpr int64_t kColumnBlock = 4;  // columns of P computed together (register blocking)
constexpr int64_t kRowBlock = 64;    // buffers' rows are padded to a multiple of this

inline int64_t padded_rows(int64_t rows) { return (rows + kRowBlock - 1) / kRowBlock * kRowBlock; }

// Buffers of one tile, owned by the caller (one set per thread).
template <typename acc_t>
struct Workspace {
  const acc_t* fold;        // (Mc, fold_ld): folded input rows, zero past `rows`
  const acc_t* cond_t;      // (Lc padded to kColumnBlock, Mc): condensed^T, zero padded
  acc_t* block;             // backward: the dP tile, Lc (padded to kColumnBlock) columns of ld_grid
  acc_t* column;            // forward: kColumnBlock + 1 prefix columns of (pad + ld)
  int64_t ld;               // padded rows of the tile
  int64_t ld_grid;          // backward: stride of a dP column: pad + halo + ld, padded
  int64_t pad;              // zeros in front of each prefix column, >= d
  int64_t fold_ld;          // stride of a fold (and grad_fold) row: fold_stride(ld)
  acc_t* carry;             // forward_tile_by_rows: a vector per swept column (carry_size)
  int32_t* events;          // forward_tile_by_rows: per swept column, who opens / closes (events_size)
};

// A fold row's stride: ld plus one cache line. With ld a multiple of 1024 floats (`long`'s tiles:
// 2048 rows), the Mc rows a register block reads would all fall into the same L1 sets and evict
// each other (16 rows, 12 ways).
inline int64_t fold_stride(int64_t ld) { return ld + 16; }

// forward_tile_by_rows's carry: one vector (at most 64 bytes, 16 floats) per condensed column,
// plus a column block (a sweep starts at a column block's start).
inline int64_t carry_size(int64_t condensed_len) { return (condensed_len + 2 * kColumnBlock) * 16; }

// forward_tile_by_rows's events: per swept column the filter that opens there and the filter that
// closes there (or -1), and per column block a mask of the columns with either.
inline int64_t events_size(int64_t condensed_len) { return 3 * (condensed_len + 2 * kColumnBlock); }

// kBytes-wide vectors of the compiler's vector extension, as wide as the registers of the build
// they are compiled for: 64 bytes (zmm) for AVX-512, 32 (ymm) for AVX2, 16 (xmm) for baseline.
template <typename T, int kBytes>
struct Vector {
  typedef T type __attribute__((vector_size(kBytes)));
};
template <typename T, int kBytes>
struct LaneIndex;  // the integer vector that indexes a Vector's lanes
template <int kBytes>
struct LaneIndex<float, kBytes> {
  typedef int32_t type __attribute__((vector_size(kBytes)));
};
template <int kBytes>
struct LaneIndex<double, kBytes> {
  typedef int64_t type __attribute__((vector_size(kBytes)));
};
template <typename T, int kBytes>
constexpr int64_t kLanes = kBytes / sizeof(T);

template <int kBytes, typename T>
WS_INLINE typename Vector<T, kBytes>::type load(const T* p) {
  typename Vector<T, kBytes>::type v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
template <int kBytes, typename T>
WS_INLINE void store(T* p, typename Vector<T, kBytes>::type v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

// Shuffle index for q[r - d .. r - d + lanes) out of the two whole vectors that hold it, d < lanes:
// lane i takes element lanes - d + i of (earlier vector | later vector).
template <typename T, int kBytes>
WS_INLINE typename LaneIndex<T, kBytes>::type shift_index(int64_t d) {
  typename LaneIndex<T, kBytes>::type index;
  for (int64_t i = 0; i < kLanes<T, kBytes>; ++i) index[i] = kLanes<T, kBytes> - d + i;
  return index;
}

// Lanes `index` of the pair (earlier | later): GCC's two-vector shuffle with a run-time index.
// Clang has no such builtin (its __builtin_shufflevector takes constant indices), so clang builds
// never take the register path (kRuntimeShuffle below); this fallback through memory only keeps
// them compiling.
#if defined(__clang__)
constexpr bool kRuntimeShuffle = false;
template <typename V, typename I>
WS_INLINE V shift_pair(V earlier, V later, I index) {
  using T = std::remove_reference_t<decltype(earlier[0])>;
  constexpr int64_t n = sizeof(V) / sizeof(T);
  T both[2 * n];
  __builtin_memcpy(both, &earlier, sizeof(V));
  __builtin_memcpy(both + n, &later, sizeof(V));
  V out;
  for (int64_t i = 0; i < n; ++i) out[i] = both[index[i]];
  return out;
}
#else
constexpr bool kRuntimeShuffle = true;
template <typename V, typename I>
WS_INLINE V shift_pair(V earlier, V later, I index) {
  return __builtin_shuffle(earlier, later, index);
}
#endif

// y[t] (op)= q[t*s + offset] for t in [0, count); stride 1 and 2 spelled out to vectorize.
template <int kMode, typename acc_t>  // kMode 0: y = -q, 1: y = q + b, 2: y += q + b
WS_INLINE void gather_column(acc_t* y, const acc_t* q, int64_t offset, int64_t s, int64_t count,
                             acc_t b) {
  auto apply = [&](int64_t t, acc_t value) {
    if (kMode == 0) y[t] = -value;
    else if (kMode == 1) y[t] = value + b;
    else y[t] += value + b;
  };
  if (s == 1) {
    for (int64_t t = 0; t < count; ++t) apply(t, q[t + offset]);
  } else if (s == 2) {
    for (int64_t t = 0; t < count; ++t) apply(t, q[2 * t + offset]);
  } else {
    for (int64_t t = 0; t < count; ++t) apply(t, q[s * t + offset]);
  }
}

// gather_column for a whole row block at stride 1 (count == kCount, a multiple of the lanes): the
// same values in the same order, in whole vectors with no loop or remainder to set up.
// forward_tile_by_rows runs two gathers per filter per row block (`long`: 256 per block of 64
// rows; all its gathers took ~1 of its ~5 ms; this form: 4.97 -> 4.73 ms, cpu_kernels/HISTORY.md).
template <int kMode, int kBytes, int64_t kCount, typename acc_t>
WS_INLINE void gather_block(acc_t* y, const acc_t* q, acc_t b) {
  using V = typename Vector<acc_t, kBytes>::type;
  constexpr int64_t kLane = kLanes<acc_t, kBytes>;
  static_assert(kCount % kLane == 0, "whole vectors");
  for (int64_t i = 0; i < kCount; i += kLane) {
    const V value = load<kBytes>(q + i);
    if (kMode == 0) store<kBytes>(y + i, -value);
    else if (kMode == 1) store<kBytes>(y + i, value + b);
    else store<kBytes>(y + i, load<kBytes>(y + i) + (value + b));
  }
}

// Asks for the cache lines of y[0, count) ahead of their first write: the forward's first write into
// a fresh output line otherwise waits on its read-for-ownership. (A read prefetch, prefetcht0, in
// these builds, which do not assume PREFETCHW; a line no other core holds arrives exclusive, which
// is all the write needs.)
template <typename acc_t>
WS_INLINE void prefetch_for_write(const acc_t* y, int64_t count) {
  constexpr int64_t kLine = 64 / sizeof(acc_t);
  for (int64_t i = 0; i < count; i += kLine) __builtin_prefetch(y + i, 1, 3);
}

// P[r0 + r, v0 + k] for kVecs vectors of rows and the kColumnBlock columns from v0 (§2 step 2):
// the register block both forward sweeps compute, acc[k][i] = sum_j fold[j][r0 + i*lanes ..] * c[k][j],
// from fold = the fold's row r0 (rows fold_ld apart) and c = condensed^T's row v0.
template <typename acc_t, int kBytes, int64_t kVecs>
WS_INLINE void product_block(const acc_t* fold, int64_t fold_ld, const acc_t* c, int64_t mc,
                             typename Vector<acc_t, kBytes>::type (&acc)[kColumnBlock][kVecs]) {
  using V = typename Vector<acc_t, kBytes>::type;
  constexpr int64_t kLane = kLanes<acc_t, kBytes>;
  for (int64_t k = 0; k < kColumnBlock; ++k) {
    for (int64_t i = 0; i < kVecs; ++i) acc[k][i] = V{};
  }
  for (int64_t j = 0; j < mc; ++j) {
    V f[kVecs];
    for (int64_t i = 0; i < kVecs; ++i) f[i] = load<kBytes>(fold + j * fold_ld + i * kLane);
    for (int64_t k = 0; k < kColumnBlock; ++k) {
      const acc_t ckj = c[k * mc + j];
      for (int64_t i = 0; i < kVecs; ++i) acc[k][i] += f[i] * ckj;
    }
  }
}

// Forward of outputs [t0, t1) of filters [n0, n1) into y[n * ld_y + (t - t0)]. Row 0 of the tile is
// padded row t0*s. Per block of kColumnBlock columns and kRows rows, the inner products
// P[r, v0..v0+3] (§2 step 2) go straight from registers into the line prefix (§2 step 3):
//   Q_v[r] = P[r, v] + Q_{v-1}[r - d],
// then the outputs whose segments open or close at these columns are gathered (§2 step 4). A
// filter range sweeps only its own columns, from the block holding filter n0's first one: the
// prefix then starts later along every line, which adds the same constant to both ends of each
// segment, so the differences are the same sums (rounded differently).
template <typename acc_t, int kBytes, int64_t kVecs>
WS_INLINE void forward_tile(const Workspace<acc_t>& w, const Conv1dGeometry& g, const acc_t* bias,
                            int64_t t0, int64_t t1, int64_t n0, int64_t n1, acc_t* y_tile, int64_t ld_y) {
  using V = typename Vector<acc_t, kBytes>::type;
  constexpr int64_t kLane = kLanes<acc_t, kBytes>;
  constexpr int64_t kRows = kVecs * kLane;
  static_assert(kRowBlock % kRows == 0, "a register block must tile the padded rows");
  const int64_t count = t1 - t0, mc = g.condensed_channels;
  const int64_t s = g.stride, d = g.dilation, S = g.sample_stride, L = g.kernel_size;
  // Local row of output t0's last tap, and of its first tap minus d (a negative row: that
  // difference term is 0, so outputs t - t0 < ceil(d / s) open with 0).
  const int64_t last = g.halo_rows(), before_first = -d;
  const int64_t skip = (d + s - 1) / s < count ? (d + s - 1) / s : count;
  // columns [v_begin, v_end): from the column block of filter n0's first column to n1 - 1's last
  const int64_t v_begin = n0 * S / kColumnBlock * kColumnBlock, v_end = (n1 - 1) * S + L;
  if (n0 > 0 && n0 * S == v_begin) {  // filter n0 opens before the sweep, where Q_{v_begin - 1} = 0
    for (int64_t t = 0; t < count; ++t) y_tile[n0 * ld_y + t] = 0;
  }
  acc_t* cols[kColumnBlock + 1];  // cols[0] = Q_{v0-1}, cols[k+1] = Q_{v0+k}
  for (int64_t k = 0; k <= kColumnBlock; ++k) {
    cols[k] = w.column + k * (w.pad + w.ld) + w.pad;
    for (int64_t r = -w.pad; r < 0; ++r) cols[k][r] = 0;
  }
  for (int64_t r = 0; r < w.ld; ++r) cols[0][r] = 0;  // Q_{-1}
  // Q_{v-1}[r - d] from memory (where d < lanes on a GCC AVX-512 build, forward_tile_by_rows runs
  // instead and shifts it in registers)
  for (int64_t v0 = v_begin; v0 < v_end; v0 += kColumnBlock) {
    for (int64_t r0 = 0; r0 < w.ld; r0 += kRows) {
      V acc[kColumnBlock][kVecs];
      product_block<acc_t, kBytes, kVecs>(w.fold + r0, w.fold_ld, w.cond_t + v0 * mc, mc, acc);
      for (int64_t k = 0; k < kColumnBlock; ++k) {
        for (int64_t i = 0; i < kVecs; ++i) {
          const int64_t r = r0 + i * kLane;
          store<kBytes>(cols[k + 1] + r, acc[k][i] + load<kBytes>(cols[k] + r - d));
        }
      }
    }
    for (int64_t k = 0; k < kColumnBlock && v0 + k < v_end; ++k) {
      const int64_t v = v0 + k;
      const acc_t* q = cols[k + 1];
      // filter n = (v + 1) / S opens here: its first column is v + 1
      if ((v + 1) % S == 0 && (v + 1) / S >= n0 && (v + 1) / S < n1) {
        acc_t* y = y_tile + ((v + 1) / S) * ld_y;
        for (int64_t t = 0; t < skip; ++t) y[t] = 0;
        gather_column<0>(y + skip, q, before_first + skip * s, s, count - skip, acc_t(0));
      }
      // filter n = (v - L + 1) / S closes here: its last column is v
      if (v + 1 >= L && (v + 1 - L) % S == 0 && (v + 1 - L) / S >= n0) {
        const int64_t n = (v + 1 - L) / S;
        if (n == 0) gather_column<1>(y_tile, q, last, s, count, bias ? bias[0] : acc_t(0));
        else gather_column<2>(y_tile + n * ld_y, q, last, s, count, bias ? bias[n] : acc_t(0));
      }
    }
    acc_t* oldest = cols[0];  // the last column becomes Q_{v0-1} of the next block
    cols[0] = cols[kColumnBlock];
    cols[kColumnBlock] = oldest;
  }
}

// One row block of forward_tile_by_rows where every gather reads exactly the block's rows (stride
// 1, whole blocks of openings and closings at offset 0: all row blocks but a tile's first and
// last), as a function of its own with only the state that sweep needs, so that its loop keeps it
// in registers (inlined into forward_tile_by_rows, GCC spilled the loop's scalars to the stack).
// The columns' Q stay in registers and the gathers read them there: y = -Q_v where a filter opens,
// y (+)= Q_v + bias where one closes; the same sums in the same order as the general path.
// Column c of the sweep: opens[c] / closes[c] the filter opening / closing there, or -1.
template <typename acc_t, int kBytes, int64_t kVecs>
WS_AVX512_NOINLINE void row_block_in_registers(
    const acc_t* fold, int64_t fold_ld, int64_t mc, const acc_t* cond, acc_t* carry, const int32_t* opens,
    const int32_t* closes, int64_t columns, acc_t* y_open, acc_t* y_close, int64_t ld_y, const acc_t* bias,
    int64_t prefetch_count, typename LaneIndex<acc_t, kBytes>::type index) {
  using V = typename Vector<acc_t, kBytes>::type;
  constexpr int64_t kLane = kLanes<acc_t, kBytes>;
  constexpr int64_t kRows = kVecs * kLane;
  V prev[kVecs + 1];  // Q_{v-1}: its vector above the block, then the block's rows
  for (int64_t i = 0; i <= kVecs; ++i) prev[i] = V{};  // Q_{v_begin - 1} = 0
  for (int64_t c0 = 0; c0 < columns; c0 += kColumnBlock) {
    V acc[kColumnBlock][kVecs];
    product_block<acc_t, kBytes, kVecs>(fold, fold_ld, cond + c0 * mc, mc, acc);
    // unrolled, so that acc[k] stays in registers (as a loop GCC kept acc in memory: the sweep took
    // ~13% longer on `long`'s filters, ~30% at one condensed channel; benchmarks/tile_harness)
    WS_UNROLL_COLUMN_BLOCK
    for (int64_t k = 0; k < kColumnBlock; ++k) {  // Q_v[r] = P[r, v] + Q_{v-1}[r - d]
      V next[kVecs + 1];
      next[0] = load<kBytes>(carry + (c0 + k) * kLane);  // Q_v above the block
      for (int64_t i = 0; i < kVecs; ++i) next[i + 1] = acc[k][i] + shift_pair(prev[i], prev[i + 1], index);
      store<kBytes>(carry + (c0 + k) * kLane, next[kVecs]);  // for the next row block
      const int32_t n_open = opens[c0 + k], n_close = closes[c0 + k];
      if (n_open >= 0) {
        acc_t* y = y_open + n_open * ld_y;
        for (int64_t i = 0; i < kVecs; ++i) store<kBytes>(y + i * kLane, -next[i + 1]);
        prefetch_for_write(y + kRows, prefetch_count);
      }
      if (n_close >= 0) {
        const acc_t b = bias ? bias[n_close] : acc_t(0);
        acc_t* y = y_close + n_close * ld_y;
        for (int64_t i = 0; i < kVecs; ++i) {
          const V value = next[i + 1] + b;
          store<kBytes>(y + i * kLane, n_close == 0 ? value : load<kBytes>(y + i * kLane) + value);
        }
      }
      for (int64_t i = 0; i <= kVecs; ++i) prev[i] = next[i];
    }
  }
}

// The same forward, row block by row block: each block of kRows rows sweeps all the tile's
// columns with its fold rows (Mc x kRows) held in L1, where forward_tile reads the whole tile's
// fold from L2 once per column block (`long`: 128 KB per 4 columns, as many bytes as the block's
// multiply-adds can hide). The line prefix Q_v[r] = P[r, v] + Q_{v-1}[r - d] takes Q_{v-1} of this
// block from registers and its rows above the block from `carry` (per column, the last vector of
// the previous block; d < lanes), and the outputs are gathered from the block's rows of the
// columns where their segments open (y = -Q) or close (y += Q + bias). A segment opens d rows
// above its output's first tap and closes (L-1)*d rows below, so for each output the opening is
// written in an earlier row block than the closing, or at an earlier column of the same one.
// Needs a runtime two-vector shuffle (GCC's __builtin_shuffle) and d < lanes; forward_tile
// covers the rest.
template <typename acc_t, int kBytes, int64_t kVecs>
WS_INLINE void forward_tile_by_rows(const Workspace<acc_t>& w, const Conv1dGeometry& g, const acc_t* bias,
                                    int64_t t0, int64_t t1, int64_t n0, int64_t n1, acc_t* y_tile,
                                    int64_t ld_y) {
  using V = typename Vector<acc_t, kBytes>::type;
  constexpr int64_t kLane = kLanes<acc_t, kBytes>;
  constexpr int64_t kRows = kVecs * kLane;
  const int64_t count = t1 - t0, mc = g.condensed_channels;
  const int64_t s = g.stride, d = g.dilation, S = g.sample_stride, L = g.kernel_size;
  const int64_t last = g.halo_rows(), before_first = -d;  // as in forward_tile
  const int64_t skip = (d + s - 1) / s < count ? (d + s - 1) / s : count;
  const int64_t v_begin = n0 * S / kColumnBlock * kColumnBlock, v_end = (n1 - 1) * S + L;
  // y = 0 where no opening is written: all of filter n0 if it opens before the sweep (Q = 0
  // there), the first `skip` outputs of the filters that open inside it (rows < 0)
  for (int64_t n = n0; n < n1; ++n) {
    if (n == 0) continue;  // filter 0's closing writes y = Q + bias
    const int64_t zeros = n * S == v_begin ? count : skip;
    for (int64_t t = 0; t < zeros; ++t) y_tile[n * ld_y + t] = 0;
  }
  const int64_t sweep = (v_end - v_begin + kColumnBlock - 1) / kColumnBlock * kColumnBlock;
  acc_t* carry = w.carry;  // carry[(v - v_begin) * kLane ...]: Q_v's rows [r0 - kLane, r0)
  for (int64_t i = 0; i < sweep * kLane; ++i) carry[i] = 0;
  const auto index = shift_index<acc_t, kBytes>(d);
  // outputs t in [t_from, count) whose row o + t*s lies in [r0, r0 + kRows)
  const auto outputs_in_block = [&](int64_t o, int64_t t_from, int64_t r0) {
    const int64_t above = r0 - o, below = r0 + kRows - o;  // t*s in [above, below)
    int64_t lo = above <= 0 ? 0 : (above + s - 1) / s, hi = below <= 0 ? 0 : (below + s - 1) / s;
    lo = lo > t_from ? lo : t_from;
    hi = hi < count ? hi : count;
    return std::pair<int64_t, int64_t>{lo, hi > lo ? hi : lo};
  };
  // the first filter opening inside the sweep (filter n0 opens before it when n0*S == v_begin)
  const int64_t first_opening = n0 * S == v_begin ? n0 + 1 : n0;
  // per swept column c = v - v_begin: the filter whose first column is v + 1 (opens at v) and the
  // filter whose last column is v (closes at v), or -1; per column block, which columns have either
  // (the same for every row block, so found once per tile)
  int32_t* const opens = w.events;
  int32_t* const closes = opens + sweep;
  int32_t* const masks = closes + sweep;
  for (int64_t c = 0; c < sweep; ++c) opens[c] = closes[c] = -1;
  for (int64_t c = 0; c < sweep / kColumnBlock; ++c) masks[c] = 0;
  for (int64_t n = first_opening; n < n1; ++n) {
    opens[n * S - 1 - v_begin] = static_cast<int32_t>(n);
    masks[(n * S - 1 - v_begin) / kColumnBlock] |= 1 << ((n * S - 1 - v_begin) % kColumnBlock);
  }
  for (int64_t n = n0; n < n1; ++n) {
    closes[n * S + L - 1 - v_begin] = static_cast<int32_t>(n);
    masks[(n * S + L - 1 - v_begin) / kColumnBlock] |= 1 << ((n * S + L - 1 - v_begin) % kColumnBlock);
  }
  for (int64_t r0 = 0; r0 < w.ld; r0 += kRows) {
    // outputs whose segments open (row t*s - d) / close (row t*s + (L-1)*d) in this block's rows
    const auto [open_lo, open_hi] = outputs_in_block(before_first, skip, r0);
    const auto [close_lo, close_hi] = outputs_in_block(last, 0, r0);
    const int64_t open_offset = before_first + open_lo * s - r0, close_offset = last + close_lo * s - r0;
    // stride 1 and a whole block of outputs: the gathers run as whole vectors (gather_block)
    const bool whole_open = s == 1 && open_hi - open_lo == kRows;
    const bool whole_close = s == 1 && close_hi - close_lo == kRows;
    if (whole_open && whole_close && open_offset == 0 && close_offset == 0) {
      row_block_in_registers<acc_t, kBytes, kVecs>(
          w.fold + r0, w.fold_ld, mc, w.cond_t + v_begin * mc, carry, opens, closes, v_end - v_begin,
          y_tile + open_lo, y_tile + close_lo, ld_y, bias,
          open_hi + kRows / s + 1 < count ? kRows / s + 1 : count - open_hi, index);
      continue;
    }
    // Q of the column block's columns, through memory (L1): q[k + 1] holds column v0 + k, q[0]
    // column v0 - 1 (from the block before), each as its rows just above this row block (one
    // vector), then the block's rows; the gathers read the columns from here.
    constexpr int64_t kQ = kLane + kRows;
    acc_t* q[kColumnBlock + 1];
    for (int64_t k = 0; k <= kColumnBlock; ++k) q[k] = w.column + k * kQ;
    for (int64_t i = 0; i < kQ; ++i) q[0][i] = 0;  // Q_{v_begin - 1} = 0
    for (int64_t v0 = v_begin; v0 < v_end; v0 += kColumnBlock) {
      V acc[kColumnBlock][kVecs];
      product_block<acc_t, kBytes, kVecs>(w.fold + r0, w.fold_ld, w.cond_t + v0 * mc, mc, acc);
      acc_t* carry_v0 = carry + (v0 - v_begin) * kLane;
      V prev[kVecs + 1];  // Q_{v-1}: its vector above the block, then the block's rows
      for (int64_t i = 0; i <= kVecs; ++i) prev[i] = load<kBytes>(q[0] + i * kLane);
      // the columns a gather reads (the last one is also the next block's Q_{v0-1})
      const int64_t c0 = v0 - v_begin;
      const unsigned gathered = static_cast<unsigned>(masks[c0 / kColumnBlock]) | 1u << (kColumnBlock - 1);
      for (int64_t k = 0; k < kColumnBlock; ++k) {  // Q_v[r] = P[r, v] + Q_{v-1}[r - d]
        acc_t* cur = q[k + 1];
        V next[kVecs + 1];
        next[0] = load<kBytes>(carry_v0 + k * kLane);  // Q_v above the block
        for (int64_t i = 0; i < kVecs; ++i) next[i + 1] = acc[k][i] + shift_pair(prev[i], prev[i + 1], index);
        const bool keep = (gathered >> k) & 1u;
        for (int64_t i = 0; i <= kVecs; ++i) {
          if (keep) store<kBytes>(cur + i * kLane, next[i]);
          prev[i] = next[i];
        }
        store<kBytes>(carry_v0 + k * kLane, next[kVecs]);  // for the next row block
      }
      for (int64_t k = 0; k < kColumnBlock; ++k) {
        const acc_t* column = q[k + 1] + kLane;  // Q_v's rows of the block, v = v0 + k
        const int64_t n_open = opens[c0 + k], n_close = closes[c0 + k];
        if (n_open >= 0) {  // filter n_open's first column is v + 1
          acc_t* y = y_tile + n_open * ld_y + open_lo;
          if (whole_open) gather_block<0, kBytes, kRows>(y, column + open_offset, acc_t(0));
          else gather_column<0>(y, column, open_offset, s, open_hi - open_lo, acc_t(0));
          // the outputs this filter opens in the next row block, a whole sweep from now
          const int64_t next_hi = open_hi + kRows / s + 1 < count ? open_hi + kRows / s + 1 : count;
          prefetch_for_write(y_tile + n_open * ld_y + open_hi, next_hi - open_hi);
        }
        if (n_close >= 0) {  // filter n_close's last column is v
          const acc_t b = bias ? bias[n_close] : acc_t(0);
          acc_t* y = y_tile + n_close * ld_y + close_lo;
          if (whole_close) {
            if (n_close == 0) gather_block<1, kBytes, kRows>(y, column + close_offset, b);
            else gather_block<2, kBytes, kRows>(y, column + close_offset, b);
          } else if (n_close == 0) {
            gather_column<1>(y, column, close_offset, s, close_hi - close_lo, b);
          } else {
            gather_column<2>(y, column, close_offset, s, close_hi - close_lo, b);
          }
        }
      }
      acc_t* oldest = q[0];  // the last column becomes Q_{v0-1} of the next block
      q[0] = q[kColumnBlock];
      q[kColumnBlock] = oldest;
    }
  }
}

// (bits & exponent) ^ exponent of a value: 0 exactly when it is NaN or Inf (all exponent bits set).
// Integer min-reductions of it vectorize, where std::isfinite in a loop did not.
template <typename acc_t>
using FiniteKey = std::conditional_t<sizeof(acc_t) == 8, uint64_t, uint32_t>;

template <typename acc_t>
WS_INLINE FiniteKey<acc_t> finite_key(acc_t value) {
  using bits_t = FiniteKey<acc_t>;
  constexpr bits_t kExponent = sizeof(acc_t) == 8 ? bits_t(0x7ff0000000000000ULL) : bits_t(0x7f800000U);
  bits_t bits;
  __builtin_memcpy(&bits, &value, sizeof(bits));
  return (bits & kExponent) ^ kExponent;
}

// Whether p[0, n) holds no NaN or Inf.
template <typename acc_t>
inline bool all_finite(const acc_t* p, int64_t n) {
  FiniteKey<acc_t> smallest = finite_key(acc_t(0));
  for (int64_t i = 0; i < n; ++i) {
    const FiniteKey<acc_t> key = finite_key(p[i]);
    smallest = key < smallest ? key : smallest;
  }
  return smallest != 0;
}

// out[n] += sum of rows[n * ld + t] for t in [0, count), n in [0, n_rows): kLanes partial sums in
// a fixed order (they vectorize; one running sum is a latency chain). The bias gradient, summed by
// the backward's tiles over the outputs each owns while their grad_output rows are in cache.
template <typename acc_t>
WS_INLINE void add_row_sums(const acc_t* rows, int64_t n_rows, int64_t ld, int64_t count, acc_t* out) {
  constexpr int64_t kLanes = 16;
  for (int64_t n = 0; n < n_rows; ++n) {
    const acc_t* row = rows + n * ld;
    acc_t part[kLanes] = {};
    int64_t t = 0;
    for (; t + kLanes <= count; t += kLanes) {
      for (int64_t i = 0; i < kLanes; ++i) part[i] += row[t + i];
    }
    acc_t sum = 0;
    for (; t < count; ++t) sum += row[t];
    for (int64_t i = 0; i < kLanes; ++i) sum += part[i];
    out[n] += sum;
  }
}

// The backward of a tile of input rows [u0, u0 + rows) (§2): dP, one column per condensed column
// v over grid rows [0, halo + rows) that start `halo` rows above u0 (the first segment reaching u0
// starts there); each column is the previous one shifted by d plus the segment markers at v: +gy
// at a segment's first point, -gy just past its last. Then grad_fold = dP condensed and
// grad_cond += fold dP^T. dP is built and used kDpChunk columns at a time, in a buffer that stays
// in L1 (`long`: 16 columns of 320 rows, 20 KB), where the whole tile's dP (690 KB) lived in L2
// and was written once and read five times from there.
constexpr int64_t kDpChunk = 16;  // a multiple of kColumnBlock

// Where a tile's markers lie in its grid.
struct AdjointRows {
  int64_t grid_rows;  // halo + rows
  int64_t written;    // rows [0, written) of each column hold values (whole vectors)
  int64_t t_begin;    // the first output whose segment starts in the grid
  int64_t count;      // outputs placed from t_begin
  int64_t start_row;  // grid row of t_begin's segment start
  int64_t end_row;    // ... and of its end marker
  int64_t end_count;  // end markers inside the grid
};

template <typename acc_t, int kBytes>
WS_INLINE AdjointRows adjoint_rows(const Workspace<acc_t>& w, const Conv1dGeometry& g, int64_t u0, int64_t rows) {
  constexpr int64_t kLane = kLanes<acc_t, kBytes>;
  const int64_t halo = g.halo_rows(), s = g.stride;
  AdjointRows a;
  a.grid_rows = halo + rows;
  // the rows the products read: halo + ld (zeros past this tile's rows), in whole vectors
  // (padded_rows keeps it <= ld_grid - pad)
  a.written = (halo + w.ld + kLane - 1) / kLane * kLane;
  const int64_t grid_row0 = u0 - halo, first = grid_row0 > 0 ? grid_row0 : 0;
  a.t_begin = (first + s - 1) / s;
  int64_t t_end = (u0 + rows + s - 1) / s;
  if (t_end > g.out_len) t_end = g.out_len;
  a.count = t_end > a.t_begin ? t_end - a.t_begin : 0;
  a.start_row = a.t_begin * s - grid_row0;
  a.end_row = a.start_row + g.kernel_size * g.dilation;
  a.end_count = a.end_row < a.grid_rows ? (a.grid_rows - a.end_row + s - 1) / s : 0;
  if (a.end_count > a.count) a.end_count = a.count;
  return a;
}

// Whether every grad_output value the tile places is finite (else its dP is summed pointwise,
// adjoint_column_direct: the running sums would carry NaN / Inf along whole lines).
template <typename acc_t>
WS_INLINE bool markers_finite(const Conv1dGeometry& g, const acc_t* gy, const AdjointRows& a) {
  FiniteKey<acc_t> smallest = finite_key(acc_t(0));
  for (int64_t n = 0; n < g.out_channels; ++n) {
    const acc_t* gy_n = gy + n * g.out_len + a.t_begin;
    for (int64_t t = 0; t < a.count; ++t) {
      const FiniteKey<acc_t> key = finite_key(gy_n[t]);
      smallest = key < smallest ? key : smallest;
    }
  }
  return smallest != 0;
}

// The adjoint reads each filter's grad_output rows once per tile (`long`: 128 runs of 192 floats, from
// DRAM); they are asked for kGyAhead filters (kGyAhead*S columns of copying) before their turn
// (`long`'s backward ~5% faster; cpu_kernels/HISTORY.md).
constexpr int64_t kGyAhead = 4;

// at[t*s] += gy[t] (kSubtract: -=) for t in [0, count): a column's segment markers. Stride 1 and 2
// spelled out to vectorize (conv5's stride 2 ran them one float at a time). On short tiles they still
// cost: conv5's runs are ~55 outputs, three vectors and a scalar remainder (cpu_kernels/HISTORY.md).
template <int64_t kStride, bool kSubtract, typename acc_t>
WS_INLINE void place_markers(acc_t* __restrict at, const acc_t* __restrict gy, int64_t stride, int64_t count) {
  const int64_t s = kStride > 0 ? kStride : stride;
  for (int64_t t = 0; t < count; ++t) {
    if (kSubtract) at[t * s] -= gy[t];
    else at[t * s] += gy[t];
  }
}
template <bool kSubtract, typename acc_t>
WS_INLINE void place_markers(acc_t* at, const acc_t* gy, int64_t s, int64_t count) {
  if (s == 1) place_markers<1, kSubtract>(at, gy, s, count);
  else if (s == 2) place_markers<2, kSubtract>(at, gy, s, count);
  else place_markers<0, kSubtract>(at, gy, s, count);
}

// Column v of dP into col (rows [0, written) and zeros in front), from the previous column `prev`
// (unused at v == 0). Past Lc (the padding to whole column blocks) a column is zero.
template <typename acc_t, int kBytes>
WS_INLINE void adjoint_column(const Conv1dGeometry& g, const acc_t* gy, const AdjointRows& a, int64_t v,
                              acc_t* col, const acc_t* prev) {
  using V = typename Vector<acc_t, kBytes>::type;
  constexpr int64_t kLane = kLanes<acc_t, kBytes>;
  const int64_t lc = g.condensed_len, s = g.stride, d = g.dilation, S = g.sample_stride, L = g.kernel_size;
  // the shift by d in registers (d < lanes): each vector of a column from two whole vectors of the
  // previous one, loads that match the stores that wrote them. An unaligned load across two stores
  // still in the store buffer cannot be forwarded and waits for them (`long`'s backward ~8% faster).
  const bool in_registers = kRuntimeShuffle && d < kLane;
  if (in_registers) store<kBytes>(col - kLane, V{});  // zeros in front: the next column reads d of them
  else for (int64_t r = -d; r < 0; ++r) col[r] = 0;
  if (v == 0 || v >= lc) {
    for (int64_t r = 0; r < a.written; ++r) col[r] = 0;
    if (v >= lc) return;
  } else {
    int64_t r = 0;
    if (in_registers) {
      const auto index = shift_index<acc_t, kBytes>(d);
      V earlier = load<kBytes>(prev - kLane);
      for (; r < a.grid_rows; r += kLane) {
        const V later = load<kBytes>(prev + r);
        store<kBytes>(col + r, shift_pair(earlier, later, index));
        earlier = later;
      }
    } else {
      for (; r < a.grid_rows; ++r) col[r] = prev[r - d];
    }
    for (r = a.grid_rows; r < a.written; ++r) col[r] = 0;
  }
  if (v % S == 0 && v / S < g.out_channels) {  // segment starts of filter v / S
    const acc_t* gy_n = gy + (v / S) * g.out_len + a.t_begin;
    if (v / S + kGyAhead < g.out_channels) {  // filter kGyAhead ahead's grad_output, into L1
      for (int64_t t = 0; t < a.count; t += 64 / int64_t(sizeof(acc_t))) {
        __builtin_prefetch(gy_n + kGyAhead * g.out_len + t, 0, 3);
      }
    }
    place_markers<false>(col + a.start_row, gy_n, s, a.count);
  }
  if (v >= L && (v - L) % S == 0 && (v - L) / S < g.out_channels) {  // ... and their ends
    const acc_t* gy_n = gy + ((v - L) / S) * g.out_len + a.t_begin;
    place_markers<true>(col + a.end_row, gy_n, s, a.end_count);
  }
}

// Column v of dP summed point by point, each point over the (at most L) segments through it:
// dp[v, r] = sum of gy[n, t] with v = n*S + l, u0 + r = t*s + l*d, for the tile's rows r in
// [0, ld) (col points at row 0 of the tile). O(L) per point instead of O(1), used when
// grad_output holds NaN or Inf: the prefix sums would carry them along whole lines, to points no
// segment through them reaches (conv1d's gradient does not).
template <typename acc_t>
WS_INLINE void adjoint_column_direct(const Workspace<acc_t>& w, const Conv1dGeometry& g, const acc_t* gy,
                                     int64_t u0, int64_t rows, int64_t v, acc_t* col) {
  for (int64_t r = 0; r < w.ld; ++r) {
    acc_t sum = 0;
    for (int64_t l = 0; r < rows && v < g.condensed_len && l < g.kernel_size; ++l) {
      const int64_t first_col = v - l, first_row = u0 + r - l * g.dilation;
      if (first_col < 0 || first_row < 0) break;
      if (first_col % g.sample_stride != 0 || first_row % g.stride != 0) continue;
      const int64_t n = first_col / g.sample_stride, t = first_row / g.stride;
      if (n < g.out_channels && t < g.out_len) sum += gy[n * g.out_len + t];
    }
    col[r] = sum;
  }
}

// grad_fold[j][r] (+)= sum_{v in [v0, v1)} dP[v][r] * cond_t[v][j]  (df of §2), dp pointing at row 0
// of column v0 (columns ld_grid apart): kJ channels x kVecs vectors of rows in registers, the
// reduction over v innermost; `first` chunk: = instead of +=. Chunk by chunk in order, the sums
// are those of one pass over all columns.
template <typename acc_t, int kBytes, int64_t kVecs, int64_t kJ>
WS_INLINE void grad_fold_block(const Workspace<acc_t>& w, const Conv1dGeometry& g, int64_t j0,
                               const acc_t* dp, int64_t v0, int64_t v1, bool first, acc_t* grad_fold) {
  using V = typename Vector<acc_t, kBytes>::type;
  constexpr int64_t kLane = kLanes<acc_t, kBytes>;
  const int64_t mc = g.condensed_channels;
  for (int64_t r0 = 0; r0 < w.ld; r0 += kVecs * kLane) {
    V acc[kJ][kVecs];
    for (int64_t jj = 0; jj < kJ; ++jj) {
      for (int64_t i = 0; i < kVecs; ++i) {
        acc[jj][i] = first ? V{} : load<kBytes>(grad_fold + (j0 + jj) * w.fold_ld + r0 + i * kLane);
      }
    }
    for (int64_t v = v0; v < v1; ++v) {
      V dpv[kVecs];
      for (int64_t i = 0; i < kVecs; ++i) dpv[i] = load<kBytes>(dp + (v - v0) * w.ld_grid + r0 + i * kLane);
      const acc_t* c = w.cond_t + v * mc + j0;
      for (int64_t jj = 0; jj < kJ; ++jj) {
        for (int64_t i = 0; i < kVecs; ++i) acc[jj][i] += dpv[i] * c[jj];
      }
    }
    for (int64_t jj = 0; jj < kJ; ++jj) {
      for (int64_t i = 0; i < kVecs; ++i) store<kBytes>(grad_fold + (j0 + jj) * w.fold_ld + r0 + i * kLane, acc[jj][i]);
    }
  }
}

// Lane accumulators of grad_condensed: kSlots values per (j, v), as many as the widest vector
// holds; a build with narrower vectors fills the first ones and zeros the rest. Summed once per
// reduction group, not once per tile: on short tiles the sums across lanes cost as much as the
// products. A group's first tile writes them (`fresh`), the others add to them.
template <typename T>
constexpr int64_t kSlots = 64 / sizeof(T);

// The kSlots lane accumulators of one (j, v) summed in a fixed tree order, 16-byte vectors first
// (any build has them). A plain loop adds them one after another: 16 dependent float adds per (j,
// v), ~64 cycles each, which made the per-group sum of conv5's 8,320 (j, v) a fixed ~100 us.
template <typename acc_t>
WS_INLINE acc_t sum_slots(const acc_t* slots) {
  using V = typename Vector<acc_t, 16>::type;
  constexpr int64_t kLane = kLanes<acc_t, 16>;
  static_assert(kSlots<acc_t> == 4 * kLane, "four 16-byte vectors of slots");
  const V sum = (load<16>(slots) + load<16>(slots + kLane)) + (load<16>(slots + 2 * kLane) + load<16>(slots + 3 * kLane));
  if constexpr (kLane == 4) return (sum[0] + sum[1]) + (sum[2] + sum[3]);
  else return sum[0] + sum[1];
}

// lanes[j][v][:] += sum_r fold[j][r] * dP[v][r] for v in [v0, v1) (v1 - v0 a multiple of
// kColumnBlock; columns past Lc are zero and not stored), lane-wise, dp pointing at row 0 of column
// v0: kJ channels x kCols columns of vector accumulators over the rows (kCols divides kColumnBlock).
template <typename acc_t, int kBytes, int64_t kJ, int64_t kCols = kColumnBlock>
WS_INLINE void grad_cond_block(const Workspace<acc_t>& w, const Conv1dGeometry& g, int64_t j0,
                               const acc_t* dp, int64_t v0, int64_t v1, bool fresh, acc_t* lanes) {
  using V = typename Vector<acc_t, kBytes>::type;
  constexpr int64_t kLane = kLanes<acc_t, kBytes>;
  static_assert(kLane <= kSlots<acc_t>, "a vector must fit the lane slots");
  static_assert(kColumnBlock % kCols == 0, "column blocks must tile the padded columns");
  const int64_t lc = g.condensed_len;
  for (int64_t vb = v0; vb < v1 && vb < lc; vb += kCols) {
    V acc[kJ][kCols];
    for (int64_t jj = 0; jj < kJ; ++jj) {
      for (int64_t k = 0; k < kCols; ++k) acc[jj][k] = V{};
    }
    for (int64_t r = 0; r < w.ld; r += kLane) {
      V f[kJ];
      for (int64_t jj = 0; jj < kJ; ++jj) f[jj] = load<kBytes>(w.fold + (j0 + jj) * w.fold_ld + r);
      for (int64_t k = 0; k < kCols; ++k) {
        const V dpv = load<kBytes>(dp + (vb - v0 + k) * w.ld_grid + r);
        for (int64_t jj = 0; jj < kJ; ++jj) acc[jj][k] += f[jj] * dpv;
      }
    }
    for (int64_t jj = 0; jj < kJ; ++jj) {
      for (int64_t k = 0; k < kCols && vb + k < lc; ++k) {
        acc_t* slot = lanes + ((j0 + jj) * lc + vb + k) * kSlots<acc_t>;
        if (!fresh) {
          store<kBytes>(slot, load<kBytes>(slot) + acc[jj][k]);
        } else {
          store<kBytes>(slot, acc[jj][k]);
          for (int64_t l = kLane; l < kSlots<acc_t>; ++l) slot[l] = 0;
        }
      }
    }
  }
}

// Backward of input rows [u0, u0 + rows): per chunk of kDpChunk columns, dP (adjoint_column, or
// pointwise), then its share of grad_fold (Mc, fold_ld) = dP condensed and of grad_cond (Mc, Lc,
// kSlots lanes) += fold dP^T. w.block holds kDpChunk + 1 columns: the previous chunk's last, then
// this chunk's. `cond_fresh`: grad_cond holds nothing yet (the group's first tile).
template <typename acc_t, int kBytes, int64_t kVecs>
WS_INLINE void backward_tile(const Workspace<acc_t>& w, const Conv1dGeometry& g, const acc_t* gy,
                             int64_t u0, int64_t rows, acc_t* grad_fold, acc_t* grad_cond, bool cond_fresh) {
  const int64_t mc = g.condensed_channels, lc = g.condensed_len, halo = g.halo_rows();
  const int64_t lc_padded = (lc + kColumnBlock - 1) / kColumnBlock * kColumnBlock;
  const AdjointRows a = adjoint_rows<acc_t, kBytes>(w, g, u0, rows);
  const bool finite = markers_finite(g, gy, a);
  acc_t* const slot0 = w.block + w.pad;  // column slot k at slot0 + k * ld_grid
  for (int64_t v0 = 0; v0 < lc_padded; v0 += kDpChunk) {
    const int64_t v1 = v0 + kDpChunk < lc_padded ? v0 + kDpChunk : lc_padded;
    if (v0 > 0 && finite) {  // the previous chunk's last column, and the zeros in front of it
      for (int64_t r = -w.pad; r < a.written; ++r) slot0[r] = slot0[kDpChunk * w.ld_grid + r];
    }
    for (int64_t v = v0; v < v1; ++v) {
      acc_t* col = slot0 + (v - v0 + 1) * w.ld_grid;
      if (finite) adjoint_column<acc_t, kBytes>(g, gy, a, v, col, col - w.ld_grid);
      else adjoint_column_direct(w, g, gy, u0, rows, v, col + halo);
    }
    const acc_t* dp = slot0 + w.ld_grid + halo;  // row 0 of the tile in column v0
    if (grad_fold && v0 < lc) {
      const int64_t v_end = v1 < lc ? v1 : lc;
      const bool first = v0 == 0;
      int64_t j0 = 0;
      if constexpr (kBytes == 64) {
        // 32 vector registers: 16 or 8 channels per pass, fewer passes over the dP chunk (8 rather
        // than 4 with the whole tile's dP in L2: `long` 7.1 -> 6.7 ms, conv5 119 -> 106 us; 16
        // rather than 8 with the chunk in L1: `long`'s backward ~19 -> ~17 ms, HISTORY.md)
        for (; j0 + 16 <= mc; j0 += 16) grad_fold_block<acc_t, kBytes, 1, 16>(w, g, j0, dp, v0, v_end, first, grad_fold);
        for (; j0 + 8 <= mc; j0 += 8) grad_fold_block<acc_t, kBytes, kVecs / 2, 8>(w, g, j0, dp, v0, v_end, first, grad_fold);
      }
      for (; j0 + 4 <= mc; j0 += 4) grad_fold_block<acc_t, kBytes, kVecs, 4>(w, g, j0, dp, v0, v_end, first, grad_fold);
      for (; j0 < mc; ++j0) grad_fold_block<acc_t, kBytes, kVecs, 1>(w, g, j0, dp, v0, v_end, first, grad_fold);
    }
    if (grad_cond) {
      int64_t j0 = 0;
      if constexpr (kBytes == 64) {
        // 6 channels x 4 columns: 24 accumulators, 10 loads per 24 multiply-adds (4 x 4: 8 per 16)
        // and a third fewer passes over dP (`long`'s backward ~7% faster); taken while what is
        // left still runs as whole blocks of 4, or one channel
        for (; mc - j0 >= 6; j0 += 6) {
          const int64_t rest = mc - j0 - 6;
          if (rest == 2 || rest == 3) break;
          grad_cond_block<acc_t, kBytes, 6>(w, g, j0, dp, v0, v1, cond_fresh, grad_cond);
        }
      }
      for (; j0 + 4 <= mc; j0 += 4) grad_cond_block<acc_t, kBytes, 4>(w, g, j0, dp, v0, v1, cond_fresh, grad_cond);
      for (; j0 < mc; ++j0) grad_cond_block<acc_t, kBytes, 1>(w, g, j0, dp, v0, v1, cond_fresh, grad_cond);
    }
  }
}

}  // namespace tile
}  // namespace wsnet
