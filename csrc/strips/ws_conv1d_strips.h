// The strip schedule of the CUDA forward (docs/design.md §2, issue "CUDA forward at the memory
// floor"), written once for host and device: the CUDA kernel (strips/cuda/ws_conv1d_strip_kernel.cuh)
// and its host model (strips/host_model/, a test-only library) call the same functions, so a GPU
// run finds speed problems, not index bugs.
//
// A block owns one strip: batch row b and outputs [t0, t0 + To). It folds the strip's R rows of the
// padded input (§2.1), halo of (L-1)*d rows included, so strips need no carries between blocks.
// Then it sweeps the condensed filter in column tiles of CT columns. Per tile:
//   * the condensed slab (Mc x CT) is loaded into shared memory;
//   * the P tile (R x CT, §2.2) is made on tensor cores (mma.sync m16n8k8, TF32, float32
//     accumulate; 3 products per pair of operands when float32 accuracy is asked for), or, when
//     Mc < 8, by each walker itself with CUDA-core FMAs from the folded rows (for Mc = 1, the
//     register-window walk of ws_conv1d_strip_window.h);
//   * each thread walks its sampling lines through the tile (§2.3-2.4): the running line sum q and
//     the parked values of open segments live in registers across tiles; a segment's start is
//     parked in a shift register (no division in the hot loop) and its output, q - parked, is
//     written when its last column is reached. Lanes of a warp walk neighbouring lines, which
//     close neighbouring outputs of one filter: the stores coalesce.
// Where N*S*d makes more lines than the threads can walk (SoundNet's conv7: N = 1024, S = 1), a
// block takes a group of filters and their columns only. A strip whose P holds NaN or Inf
// computes its outputs by the definition (as every kernel does).
//
// Shared memory (floats): F (folded input), C (condensed slab), P (tile, MMA path only). The
// leading dimensions are 4 (mod 8) words for F and C (fragment loads hit 32 distinct banks) and
// 4 (mod 32) for P, which is stored column-major so that both the MMA's fragment stores and the
// walkers' diagonal reads (neighbouring rows of one column) hit distinct banks (by design; Nsight
// Compute measures what the card does).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/ws_conv1d_geometry.h"

// #pragma unroll for the device compiler only (host compilers warn about it)
#if defined(__CUDACC__)
#define WS_UNROLL _Pragma("unroll")
#else
#define WS_UNROLL
#endif

namespace wsnet {

constexpr int kStripThreads = 256;
constexpr int kStripColumns = 32;          // CT, a multiple of the MMA's n = 8
constexpr int kStripLinesPerThread = 3;    // the most lines one thread walks (2 when K > 8)
constexpr int kStripMaxRing = 16;          // the most open segments per line
constexpr int kStripMinMmaChannels = 8;    // Mc below this: P by CUDA-core FMAs in the walk

// How P is made. kFma: the walker's FMAs in float32 (Mc < 8). kTf32: one TF32 product (what
// conv1d does when torch.backends.cudnn.allow_tf32 is set). kTf32x3: a_hi*b_hi + a_hi*b_lo +
// a_lo*b_hi with hi = tf32(a), lo = tf32(a - hi): float32-faithful on tensor cores.
enum class StripPrecision : int { kFma = 0, kTf32 = 1, kTf32x3 = 2 };

struct StripPlan {
  int64_t outputs;      // To: outputs per strip (0: the shape does not fit this kernel)
  int64_t rows;         // R = (To - 1)*s + (L - 1)*d + 1: the strip's padded rows
  int64_t f_rows;       // physical rows held in F and P: line_step * H, rounded up to 16 on the MMA path
  int64_t phase_rows;   // H: rows of one phase (row % line_step) in the physical order (below)
  int64_t k_pad;        // F and C columns: Mc, rounded up to 8 on the MMA path (zeros past Mc)
  int64_t ld_f;         // MMA: k_pad + 4 (row-major F, n-major C); FMA: f_rows (channel-major F)
  int64_t ld_p;         // column stride of P: >= f_rows, 4 (mod 32)
  int64_t filters;      // Nf: filters per block (a group); all N unless the lines would not fit
  int64_t groups;       // ceil(N / Nf)
  int64_t cols;         // (Nf - 1)*S + L: a group's condensed columns, from column n0*S
  int64_t col_tiles;    // ceil(cols / CT)
  int64_t strips;       // ceil(T_out / To)
  int64_t line_step;    // gcd(s, S*d): lines that carry outputs are delta = 0 (mod line_step)
  int64_t dn;           // s / line_step: the filter step between segments on one line
  int64_t ring;         // K = ceil(L / (dn*S)): open segments per line (the parked value's age)
  int64_t delta_min;    // the first carrying line's row at the group's column 0: -(Nf-1)*S*d
  int64_t lines;        // carrying lines of a strip
  int64_t threads;      // kStripThreads
  int64_t c_offset, p_offset, shared_floats;  // shared memory layout, in floats
  int precision;        // StripPrecision
  int window;           // 1: the register-window walk (ws_conv1d_strip_window.h), rows unpermuted
  int64_t margin;       // window: zero rows kept above and below the strip in F
};

// The ring size a kernel is compiled for: K rounded up to 4, 8 or 16 (kStripMaxRing), and the
// lines per thread that keep the walkers' registers within 128 with the MMA's live (3, or 2 for
// K > 8: ptxas spills at 4 lines with the 3xTF32 MMA, and at 3 lines with a ring of 16).
// Shared memory per block for the strip kernels: what the card gives by opt-in, capped so that two
// blocks fit on a multiprocessor (the kernels' __launch_bounds__ ask for two).
inline int64_t strip_shared_limit_for(int64_t optin_per_block, int64_t per_multiprocessor) {
  return std::min<int64_t>(optin_per_block, per_multiprocessor / 2 - 1024);
}
inline int strip_ring_template(int64_t ring) { return ring <= 4 ? 4 : ring <= 8 ? 8 : 16; }
WS_HOST_DEVICE constexpr int strip_lines_per_thread(int ring_template) {
  return ring_template > 8 ? 2 : kStripLinesPerThread;
}

WS_HOST_DEVICE int64_t strip_round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }
// The least n' >= n with n' = residue (mod modulus): leading dimensions that spread a warp's
// accesses over the banks.
inline int64_t strip_pad_to(int64_t n, int64_t residue, int64_t modulus) {
  return n + ((residue - n) % modulus + modulus) % modulus;
}

WS_HOST_DEVICE int strip_min(int a, int b) { return a < b ? a : b; }


// Rows are stored phase by phase: row r at physical row (r % line_step)*H + r / line_step. Only
// lines with delta = 0 (mod line_step) carry outputs, so the lanes of a warp, walking neighbouring
// carrying lines, read neighbouring physical rows of one column (with strided layers, s = 2, they
// would otherwise read every other row: a 2-way bank conflict). On the MMA path H = 4 (mod 8), so
// the two phases' rows of one fragment store fall in different banks.
// (The register-window walk reads its rows in order, after a margin of zero rows.)
WS_HOST_DEVICE int64_t strip_phys_row(const StripPlan& p, int64_t r) {
  if (p.window) return p.margin + r;
  return (r % p.line_step) * p.phase_rows + r / p.line_step;
}
// The logical row of physical row pr, or -1 for a gap between the phases (or a margin row).
WS_HOST_DEVICE int64_t strip_logical_row(const StripPlan& p, int64_t pr) {
  if (p.window) return (pr >= p.margin && pr < p.margin + p.rows) ? pr - p.margin : -1;
  const int64_t phase = pr / p.phase_rows, q = pr % p.phase_rows;
  const int64_t r = q * p.line_step + phase;
  return (phase < p.line_step && r < p.rows) ? r : -1;
}

// Shared-memory offsets of F(pr, j), C(v - v0, j) and P(v - v0, pr), pr a physical row (floats).
WS_HOST_DEVICE int64_t strip_f_index(const StripPlan& p, int64_t r, int64_t j) {
  return p.precision == int(StripPrecision::kFma) ? j * p.ld_f + r : r * p.ld_f + j;
}
WS_HOST_DEVICE int64_t strip_c_index(const StripPlan& p, int64_t vl, int64_t j) {
  return p.precision == int(StripPrecision::kFma) ? p.c_offset + j * kStripColumns + vl
                                                   : p.c_offset + vl * p.ld_f + j;
}
WS_HOST_DEVICE int64_t strip_p_index(const StripPlan& p, int64_t vl, int64_t r) {
  return p.p_offset + vl * p.ld_p + r;
}

// The plan for one call, or outputs = 0 where the kernel does not fit (then another kernel runs):
// the largest strip (up to 512 rows) whose shared memory fits `shared_limit` bytes and whose lines
// fit strip_lines_per_thread per thread, halved while the grid has fewer than two blocks per
// multiprocessor and the halo stays under half the strip. Where all N filters' lines do not fit
// (many filters, e.g. SoundNet's conv7 with N = 1024 and S = 1), a block takes a group of Nf
// filters: the condensed columns [n0*S, n0*S + (Nf-1)*S + L), with a column halo of L - S.
// How the sampling lines cross a strip, for both directions' plans: a line advances line_step =
// gcd(s, S*d) rows per step, dn = s / line_step outputs apart, and at most ring = ceil(L / (dn*S))
// of its segments are open at once.
struct StripLineGeometry {
  int64_t line_step, dn, ring;
};
inline StripLineGeometry strip_line_geometry(const Conv1dGeometry& g) {
  const int64_t line_step = g.line_step();
  const int64_t dn = g.stride / line_step;
  return {line_step, dn, (g.kernel_size + dn * g.sample_stride - 1) / (dn * g.sample_stride)};
}

// The strip-height search of both forward plans: heights of `target` rows, halving from `tallest`
// down to 16, each made into To outputs; make(To) returns the plan for that height (outputs = 0:
// it does not fit). The tallest fitting plan is kept, and shorter ones are tried while the grid
// has fewer than two blocks per multiprocessor and half the height stays over twice the halo.
template <typename Make>
StripPlan search_strip_heights(const Conv1dGeometry& g, int64_t tallest, int64_t multiprocessors, Make make) {
  const int64_t halo = g.halo_rows() + 1;
  StripPlan chosen{};
  for (int64_t target = tallest; target >= 16; target /= 2) {
    const int64_t outputs = std::min<int64_t>(std::max<int64_t>((target - halo) / g.stride + 1, 1), g.out_len);
    const StripPlan p = make(outputs);
    if (p.outputs == 0) continue;
    chosen = p;
    if (g.batch * p.strips * p.groups >= 2 * multiprocessors || outputs == 1 || target / 2 < 2 * halo) break;
  }
  return chosen;
}

inline StripPlan choose_strip_plan(const Conv1dGeometry& g, StripPrecision precision,
                                   int64_t shared_limit, int64_t multiprocessors) {
  StripPlan none{};
  if (g.out_len == 0 || g.batch == 0 || !narrow_ints_fit(g, 1024)) return none;
  const bool mma = precision != StripPrecision::kFma;
  if (mma != (g.condensed_channels >= kStripMinMmaChannels)) return none;
  const StripLineGeometry lg = strip_line_geometry(g);
  const int64_t line_step = lg.line_step, dn = lg.dn, ring = lg.ring;
  if (ring > kStripMaxRing) return none;
  const int64_t halo = g.halo_rows() + 1, sd = g.sample_stride * g.dilation;
  const int64_t capacity = strip_lines_per_thread(strip_ring_template(ring)) * int64_t(kStripThreads);
  return search_strip_heights(g, 512, multiprocessors, [&](int64_t outputs) {
    StripPlan p{};
    p.precision = int(precision);
    p.outputs = outputs;
    p.rows = (outputs - 1) * g.stride + halo;
    p.line_step = line_step;
    p.phase_rows = (p.rows + line_step - 1) / line_step;
    if (mma && line_step > 1) p.phase_rows = strip_pad_to(p.phase_rows, 4, 8);
    p.f_rows = mma ? strip_round_up(line_step * p.phase_rows, 16) : line_step * p.phase_rows;
    p.k_pad = mma ? strip_round_up(g.condensed_channels, 8) : g.condensed_channels;
    p.ld_f = mma ? p.k_pad + 4 : p.f_rows;
    p.ld_p = mma ? strip_pad_to(p.f_rows, 4, 32) : 0;
    // lines = (R - 1 + (Nf - 1)*S*d) / line_step + 1 <= capacity
    const int64_t room = (capacity - 1) * line_step - (p.rows - 1);
    if (room < 0) return none;
    p.filters = std::min<int64_t>(g.out_channels, room / sd + 1);
    if (p.filters < std::min<int64_t>(g.out_channels, 16)) return none;  // a shorter strip takes more
    p.groups = (g.out_channels + p.filters - 1) / p.filters;
    p.cols = (p.filters - 1) * g.sample_stride + g.kernel_size;
    p.col_tiles = (p.cols + kStripColumns - 1) / kStripColumns;
    p.strips = (g.out_len + outputs - 1) / outputs;
    p.dn = dn;
    p.ring = ring;
    // the first line with a segment: the group's last filter starting at row 0
    p.delta_min = -(p.filters - 1) * sd;
    p.lines = (p.rows - 1 - p.delta_min) / line_step + 1;
    p.threads = kStripThreads;
    const int64_t f_floats = mma ? p.f_rows * p.ld_f : g.condensed_channels * p.f_rows;
    const int64_t c_floats = mma ? kStripColumns * p.ld_f : g.condensed_channels * kStripColumns;
    p.c_offset = f_floats;
    p.p_offset = f_floats + c_floats;
    p.shared_floats = p.p_offset + (mma ? kStripColumns * p.ld_p : 0);
    return p.lines > capacity || p.shared_floats * 4 > shared_limit ? none : p;
  });
}

// A float's bits and back, on host and device alike (memcpy: a register move once compiled).
WS_HOST_DEVICE uint32_t float_bits(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof(bits));
  return bits;
}
WS_HOST_DEVICE float bits_float(uint32_t bits) {
  float x;
  memcpy(&x, &bits, sizeof(x));
  return x;
}

// Round to TF32 (10 mantissa bits), to nearest with ties away from zero. On the card it is the
// instruction cvt.rna.tf32.f32 (sm_80+, where the MMA path runs); on the host the same rounding in
// bits, NaN and Inf unchanged (tests/helpers.py's tf32() is checked against both). The kernels round
// operands themselves, so the MMA's own truncation of the low 13 bits changes nothing and the host
// model sees the same operands.
WS_HOST_DEVICE float round_to_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t bits;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(bits) : "f"(x));
  return bits_float(bits);
#else
  const uint32_t bits = float_bits(x);
  if ((bits & 0x7f800000u) == 0x7f800000u) return x;
  return bits_float((bits + 0x1000u) & 0xffffe000u);
#endif
}

// ring[index] for an index known only at run time, without indexing at run time: the OR of every
// entry's bits masked by (i == index). Written as `index == i ? ring[i] : x` the compiler folds the
// selects back into one load from a computed address, which puts the whole walker array in local
// memory (the 160-208-byte stack frames of the strip kernels: issue 24); a masked OR it cannot fold.
template <int KT>
WS_HOST_DEVICE float ring_at(const float (&ring)[KT], int index) {
  uint32_t bits = 0;
WS_UNROLL
  for (int i = 0; i < KT; ++i) bits |= float_bits(ring[i]) & (0u - static_cast<uint32_t>(i == index));
  return bits_float(bits);
}

// Fragments of mma.sync.m16n8k8 with TF32 operands (PTX ISA: group g = lane / 4, t = lane % 4).
// A (16 x 8, row-major): element i of lane -> (row, k); B (8 x 8): (k, n); C/D (16 x 8): (row, n).
WS_HOST_DEVICE int mma_a_row(int lane, int i) { return lane / 4 + 8 * (i % 2); }
WS_HOST_DEVICE int mma_a_k(int lane, int i) { return lane % 4 + 4 * (i / 2); }
WS_HOST_DEVICE int mma_b_k(int lane, int i) { return lane % 4 + 4 * i; }
WS_HOST_DEVICE int mma_b_n(int lane) { return lane / 4; }
WS_HOST_DEVICE int mma_c_row(int lane, int i) { return lane / 4 + 8 * (i / 2); }
WS_HOST_DEVICE int mma_c_n(int lane, int i) { return 2 * (lane % 4) + i % 2; }

// The MMA's share of a P tile: warp w makes the 16-row bands w, w + warps, ... of the tile, each
// across all CT/8 column tiles, so a band's A fragments are loaded once per k-step.
WS_HOST_DEVICE int strip_mma_bands(const StripPlan& p) { return int(p.f_rows / 16); }

// The filters with a segment on the line of row delta at column 0 (row delta + v*d at column v),
// among outputs 0 <= t < t_count and filters n < n_count: n_first, n_first + dn, ..., n_last, whose
// segments start at rows delta + n*S*d >= 0 that are multiples of s. False when there are none.
WS_HOST_DEVICE bool line_segment_filters(int delta, int s, int sd, int dn, int t_count, int n_count,
                                         int& n_first, int& n_last) {
  n_first = delta >= 0 ? 0 : (-delta + sd - 1) / sd;
  int k = 0;
  for (; k < dn; ++k, ++n_first) {
    if (((delta + n_first * sd) % s + s) % s == 0) break;
  }
  if (k == dn) return false;
  const int last_start = (t_count - 1) * s - delta;  // start rows up to the last output
  if (last_start < 0) return false;
  const int n_hi = strip_min(n_count - 1, last_start / sd);
  if (n_hi < n_first) return false;
  n_last = n_first + (n_hi - n_first) / dn * dn;
  return true;
}

// One sampling line's walk through a strip. Line i has row delta + v*d at column v, with
// delta = delta_min + i*line_step; its segments belong to filters n_first, n_first + dn, ...,
// n_last (filter n covers columns n*S .. n*S + L - 1, output t = (delta + n*S*d) / s).
template <int KT>
struct StripWalker {
  float q;             // running line sum since column v_first (§2.3; offsets cancel in differences)
  float ring[KT];      // parked sums, newest first: ring[K-1] is the open segment that closes next
  int v_next;          // next column to add
  int v_end;           // last column of the last segment
  int prow, phase;     // physical row of column v_next (strip_phys_row), and its row % line_step
  int next_park;       // (n + dn)*S - 1 for the next filter n whose start is to be parked
  int next_close;      // n*S + L - 1 of the next segment to close
  int close_n, close_t;
};

// Sets up line `line` of a block with `t_count` outputs and `n_count` filters (its group's), in
// the group's coordinates (filter n - n0, column v - n0*S); false when it carries no output.
template <int KT>
WS_HOST_DEVICE bool strip_walker_setup(const StripPlan& p, const Conv1dGeometry& g, int line,
                                       int t_count, int n_count, StripWalker<KT>& w) {
  if (line >= p.lines) return false;
  const int s = int(g.stride), S = int(g.sample_stride), d = int(g.dilation), L = int(g.kernel_size);
  const int sd = S * d, dn = int(p.dn);
  const int delta = int(p.delta_min + int64_t(line) * p.line_step);
  int n_first = 0, n_last = 0;
  if (!line_segment_filters(delta, s, sd, dn, t_count, n_count, n_first, n_last)) return false;
  w.q = 0;
  for (int i = 0; i < KT; ++i) w.ring[i] = 0;  // the value parked before n_first is 0
  w.v_next = n_first * S;
  w.v_end = n_last * S + L - 1;
  const int row = delta + w.v_next * d;
  w.phase = row % int(p.line_step);
  w.prow = w.phase * int(p.phase_rows) + row / int(p.line_step);
  w.next_park = (n_first + dn) * S - 1;
  w.next_close = n_first * S + L - 1;
  w.close_n = n_first;
  w.close_t = (delta + n_first * sd) / s;
  return true;
}

// Walks columns w.v_next .. v_stop - 1: get_p(v, prow) is P there (§2.2; prow the physical row),
// emit(n, t, sum) writes one output (§2.4). Rows stay inside [0, R) by construction (the walk
// covers whole segments of the strip's outputs only). A step of d rows moves the physical row by
// d / ls + (d % ls)*H, and by 1 - ls*H more when the phase wraps: no division in the loop.
template <int KT, typename GetP, typename Emit>
WS_HOST_DEVICE void strip_walk(StripWalker<KT>& w, int v_stop, const StripPlan& p,
                               const Conv1dGeometry& g, GetP&& get_p, Emit&& emit) {
  const int d = int(g.dilation), K = int(p.ring), dn = int(p.dn);
  const int period = dn * int(g.sample_stride);
  const int t_step = int(p.dn * g.sample_stride * g.dilation / g.stride);
  const int ls = int(p.line_step), h = int(p.phase_rows);
  const int step = d / ls + (d % ls) * h, phase_step = d % ls, wrap = 1 - ls * h;
  const int stop = strip_min(v_stop, w.v_end + 1);
  for (; w.v_next < stop; ++w.v_next) {
    w.q += get_p(w.v_next, w.prow);
    if (w.v_next == w.next_close) {
      emit(w.close_n, w.close_t, w.q - ring_at(w.ring, K - 1));
      w.close_n += dn;
      w.close_t += t_step;
      w.next_close += period;
    }
    if (w.v_next == w.next_park) {  // after the close: a close and a park may share a column
WS_UNROLL
      for (int i = KT - 1; i > 0; --i) w.ring[i] = w.ring[i - 1];
      w.ring[0] = w.q;
      w.next_park += period;
    }
    w.prow += step;
    w.phase += phase_step;
    if (w.phase >= ls) {
      w.phase -= ls;
      w.prow += wrap;
    }
  }
}

// The folded input of strip row r and condensed channel j as the kernel stores it (zero in the
// gaps between phases (r = -1), past the strip, past the padded input and past Mc).
template <typename scalar_t>
WS_HOST_DEVICE float strip_fold_value(const scalar_t* x_b, const Conv1dGeometry& g,
                                      const StripPlan& p, int64_t t0, int64_t r, int64_t j) {
  if (r < 0 || r >= p.rows || j >= g.condensed_channels) return 0.0f;
  const int64_t u = t0 * g.stride + r;
  if (u >= g.padded_len) return 0.0f;
  return folded_input<float>(x_b, g, j, g.input_time(u));
}

// Writes one output of a strip: the walk's sum for in-group filter n and in-strip output t, plus
// the bias of the *global* filter n0 + n, stored at (b, n0 + n, t0 + t). The CUDA kernels and
// their host models all call this one function (the window walk with n0 = 0), so the two cannot
// index the bias or the output differently (they once did: docs/design.md, "strip forward").
template <typename scalar_t>
WS_HOST_DEVICE void strip_emit_output(scalar_t* y, const scalar_t* bias, const Conv1dGeometry& g,
                                      int64_t b, int64_t n0, int64_t t0, int n, int t, float sum) {
  const int64_t filter = n0 + n;
  if (bias != nullptr) sum += static_cast<float>(bias[filter]);
  y[(b * g.out_channels + filter) * g.out_len + t0 + t] = static_cast<scalar_t>(sum);
}

// The fallback of a strip whose P holds NaN or Inf: output (b, n, t) (global indices) by the
// definition, as conv1d would give it. Kernels and host models share it too.
template <typename scalar_t>
WS_HOST_DEVICE void strip_definition_output(const scalar_t* x_b, const float* cond, const scalar_t* bias,
                                            scalar_t* y, const Conv1dGeometry& g, int64_t b, int64_t n,
                                            int64_t t) {
  const float start = bias != nullptr ? static_cast<float>(bias[n]) : 0.0f;
  y[(b * g.out_channels + n) * g.out_len + t] =
      static_cast<scalar_t>(definition_output<float>(x_b, cond, g.condensed_len, 1, g, n, t, start));
}

}  // namespace wsnet
