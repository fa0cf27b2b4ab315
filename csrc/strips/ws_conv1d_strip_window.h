// The register-window walk of the strip forward, for single-channel inputs (Mc = 1, SoundNet's
// conv1), written once for host and device like the rest of the schedule (ws_conv1d_strips.h).
//
// There P[r, v] = f[r] * c[v]: one multiply-add per point, so a walker that loads f[r] from
// shared memory for every point is bound by its loads and bookkeeping (about 10 instructions per
// point). Here a thread walks W = 8 neighbouring carrying lines at once, delta_k = delta_0 + k*ls.
// At column v they sit on rows r0 + k*ls (d = 1), and at column v + ls on the same rows moved by
// one line: a window of W values of f, kept in registers, slides by one slot per ls columns
// (ls windows, one per column phase), one new load per column. Parks and closes happen at the
// same columns on all W lines (dn = 1: every S columns), so their tests are shared too; the parked
// sums wait in shared memory (K slots per line used in rotation: a park writes W words and a close
// reads W, once per S columns; kept in registers, 8 lines x 8 slots spilled). Per column: one
// load of f, one broadcast load of c, W FMAs, and the window's W - 1 moves: about 2.5
// instructions per point. The walk starts at the earliest first column of its lines and ends
// at the latest last one, so a line may pass rows outside the strip: F keeps `margin` zero rows
// above and below (P = 0 there, which changes no difference q(end) - q(park)). An output is
// written only where its segment belongs to the strip (0 <= t < t_count, n < N).
//
// Taken when: Mc = 1, d = 1, s = line_step <= 2 (so dn = 1), K <= 8, and the lines fit
// W per thread; other Mc < 8 shapes use the one-line walk.
#pragma once

#include <math.h>  // fmaf, on host and device

#include "strips/ws_conv1d_strips.h"

namespace wsnet {

constexpr int kWindowLines = 8;  // W

// The window plan, or outputs = 0 where it does not apply: strips as tall as W lines per thread
// allow (every thread busy), halved while the grid has fewer than two blocks per multiprocessor.
inline StripPlan choose_window_plan(const Conv1dGeometry& g, int64_t shared_limit, int64_t multiprocessors) {
  StripPlan none{};
  if (g.condensed_channels != 1 || g.dilation != 1 || g.out_len == 0 || g.batch == 0) return none;
  if (!narrow_ints_fit(g, 8192)) return none;
  const int64_t line_step = g.line_step();  // d = 1
  if (line_step != g.stride || line_step > 2) return none;  // dn = 1
  const int64_t ring = (g.kernel_size + g.sample_stride - 1) / g.sample_stride;
  if (ring > 8) return none;
  const int64_t halo = g.halo_rows() + 1, margin = kWindowLines * line_step + 1;
  // the most rows whose lines fill W per thread: lines = (R - 1 + (N-1)*S) / ls + 1 <= W * threads
  const int64_t most_rows = (int64_t(kWindowLines) * kStripThreads - 1) * line_step + 1 -
                            (g.out_channels - 1) * g.sample_stride;
  return search_strip_heights(g, std::min<int64_t>(most_rows, 8192), multiprocessors, [&](int64_t outputs) {
    StripPlan p{};
    p.precision = int(StripPrecision::kFma);
    p.window = 1;
    p.margin = margin;
    p.outputs = outputs;
    p.rows = (outputs - 1) * g.stride + halo;
    p.line_step = line_step;
    p.phase_rows = p.rows;
    p.f_rows = p.rows + 2 * margin;
    p.k_pad = 1;
    p.ld_f = p.f_rows;
    p.filters = g.out_channels;
    p.groups = 1;
    p.cols = g.condensed_len;
    p.col_tiles = (p.cols + kStripColumns - 1) / kStripColumns;
    p.strips = (g.out_len + outputs - 1) / outputs;
    p.dn = 1;
    p.ring = ring;
    p.delta_min = -(g.out_channels - 1) * g.sample_stride;
    p.lines = (p.rows - 1 - p.delta_min) / line_step + 1;
    p.threads = kStripThreads;
    p.c_offset = p.f_rows;
    p.p_offset = p.c_offset + kStripColumns;  // here: the rings, (K x W x threads) floats
    p.shared_floats = p.p_offset + ring * kWindowLines * p.threads;
    return p.lines > int64_t(kWindowLines) * p.threads || p.shared_floats * 4 > shared_limit ? none : p;
  });
}

// Slot `slot` of line k's ring, for thread tid (lanes of a warp on neighbouring words).
WS_HOST_DEVICE int64_t window_ring_index(const StripPlan& p, int tid, int k, int slot) {
  return p.p_offset + (int64_t(slot) * kWindowLines + k) * p.threads + tid;
}

template <int LS>
struct WindowWalker {
  float q[kWindowLines];             // running line sums (§2.3)
  float win[LS][kWindowLines];       // f at the W lines' rows, one window per column phase
  int v_next, v_end;                 // next column (a multiple of LS), last column
  int row0;                          // line 0's row at column v_next
  int next_park, next_close, close_n, close_t0;  // shared by the W lines; t of line k = close_t0 + k
  int slot;                          // the ring slot the next park writes: also the oldest park
};

// Sets up thread `thread`'s lines thread*W .. thread*W + W - 1; false when none carries an output.
// load_f(row) reads F at a strip row (margins included).
// ring(index) is the shared word at a window_ring_index; the K slots start at 0 (the value parked
// before any line's first segment).
template <int LS, typename LoadF, typename Ring>
WS_HOST_DEVICE bool window_walker_setup(const StripPlan& p, const Conv1dGeometry& g, int thread, int t_count,
                                        WindowWalker<LS>& w, LoadF&& load_f, Ring&& ring) {
  const int S = int(g.sample_stride), L = int(g.kernel_size), s = int(g.stride);
  int v_lo = 0, v_hi = -1;
  for (int k = 0; k < kWindowLines; ++k) {
    StripWalker<4> line{};
    if (!strip_walker_setup(p, g, thread * kWindowLines + k, t_count, int(g.out_channels), line)) continue;
    if (v_hi < 0 || line.v_next < v_lo) v_lo = line.v_next;
    if (line.v_end > v_hi) v_hi = line.v_end;
  }
  if (v_hi < 0) return false;
  v_lo -= v_lo % LS;  // windows by column phase: start on a multiple of LS (tiles start on one too)
  const int delta0 = int(p.delta_min + int64_t(thread) * kWindowLines * p.line_step);
  w.v_next = v_lo;
  w.v_end = v_hi;
  w.row0 = delta0 + v_lo;
  w.next_park = ((v_lo + 1 + S - 1) / S) * S - 1;  // the first n*S - 1 >= v_lo
  const int first_close_n = v_lo - (L - 1) <= 0 ? 0 : (v_lo - (L - 1) + S - 1) / S;
  w.close_n = first_close_n;
  w.next_close = first_close_n * S + L - 1;
  w.close_t0 = (delta0 + first_close_n * S) / s;  // exact: delta0 and S are multiples of s
  w.slot = 0;
  for (int k = 0; k < kWindowLines; ++k) {
    w.q[k] = 0.f;
    for (int i = 0; i < int(p.ring); ++i) ring(window_ring_index(p, thread, k, i)) = 0.f;
  }
  for (int pp = 0; pp < LS; ++pp)
    for (int k = 0; k < kWindowLines; ++k) w.win[pp][k] = load_f(w.row0 + pp + k * LS);
  return true;
}

// Walks columns w.v_next .. min(v_stop, v_end + 1) - 1 (v_stop a multiple of LS): load_c(v) is the
// condensed value, emit(n, t, sum) one output of the strip.
template <int LS, typename LoadF, typename LoadC, typename Ring, typename Emit>
WS_HOST_DEVICE void window_walk(WindowWalker<LS>& w, int thread, int v_stop, const StripPlan& p,
                                const Conv1dGeometry& g, int t_count, LoadF&& load_f, LoadC&& load_c, Ring&& ring,
                                Emit&& emit) {
  const int S = int(g.sample_stride), K = int(p.ring), n_filters = int(g.out_channels);
  const int t_step = int(g.sample_stride / g.stride);
  const int stop = strip_min(v_stop, w.v_end + 1);
  for (; w.v_next < stop; w.v_next += LS, w.row0 += LS) {
WS_UNROLL
    for (int pp = 0; pp < LS; ++pp) {
      const int v = w.v_next + pp;
      if (v >= stop) break;
      const float c = load_c(v);
WS_UNROLL
      for (int k = 0; k < kWindowLines; ++k) w.q[k] = fmaf(w.win[pp][k], c, w.q[k]);  // §2.2-2.3
      if (v == w.next_close) {  // §2.4, on the lines whose output lies in the strip
WS_UNROLL
        for (int k = 0; k < kWindowLines; ++k) {  // the segment's park is the oldest of the K
          const int t = w.close_t0 + k;
          if (w.close_n < n_filters && t >= 0 && t < t_count) {
            emit(w.close_n, t, w.q[k] - ring(window_ring_index(p, thread, k, w.slot)));
          }
        }
        ++w.close_n;
        w.close_t0 += t_step;
        w.next_close += S;
      }
      if (v == w.next_park) {
WS_UNROLL
        for (int k = 0; k < kWindowLines; ++k) ring(window_ring_index(p, thread, k, w.slot)) = w.q[k];
        w.slot = w.slot + 1 == K ? 0 : w.slot + 1;
        w.next_park += S;
      }
      // this phase's window moves on to column v + LS: one line along, one new row at its end
WS_UNROLL
      for (int k = 0; k + 1 < kWindowLines; ++k) w.win[pp][k] = w.win[pp][k + 1];
      w.win[pp][kWindowLines - 1] = load_f(w.row0 + pp + LS + (kWindowLines - 1) * LS);
    }
  }
}

// The strip kernel's plan for a precision: for CUDA-core P (kFma) the window walk where it applies,
// else the one-line walk (ws_conv1d_strips.h).
inline StripPlan choose_forward_plan(const Conv1dGeometry& g, StripPrecision precision, int64_t shared_limit,
                                     int64_t multiprocessors) {
  if (precision == StripPrecision::kFma) {
    const StripPlan window = choose_window_plan(g, shared_limit, multiprocessors);
    if (window.outputs > 0) return window;
  }
  return choose_strip_plan(g, precision, shared_limit, multiprocessors);
}

}  // namespace wsnet
