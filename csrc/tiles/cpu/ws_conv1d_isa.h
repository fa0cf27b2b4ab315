// The CPU tile functions built for three x86 ISA levels (AVX-512, AVX2+FMA, baseline), each with
// the register block that fits its vector registers, and picked once at run time from what the
// processor supports. Elsewhere only the baseline build exists.
#pragma once

#include "common/ws_switches.h"
#include "tiles/cpu/ws_conv1d_fold.h"
#include "tiles/cpu/ws_conv1d_tile_kernels.h"

namespace wsnet {

#if defined(__GNUC__) && defined(__x86_64__)
#define WS_X86_DISPATCH 1
#define WS_TARGET(isa) __attribute__((target(isa)))
#else
#define WS_X86_DISPATCH 0
#define WS_TARGET(isa)
#endif

enum class Isa { kBaseline, kAvx2, kAvx512 };

// The best level the processor supports (detected once), capped by the cpu_isa switch (tests use
// it to run every build on one machine; ws_switches.h).
inline Isa cpu_isa() {
#if WS_X86_DISPATCH
  static const Isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")) {
      return Isa::kAvx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kBaseline;
  }();
  const int cap = get_switch(Switch::kCpuIsaCap);
  if (cap == 2) return Isa::kBaseline;
  if (cap == 1 && best == Isa::kAvx512) return Isa::kAvx2;
  return best;
#else
  return Isa::kBaseline;
#endif
}

inline const char* isa_name(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512" : isa == Isa::kAvx2 ? "avx2" : "baseline";
}

// Register blocks: 4 columns x 4 zmm with AVX-512's 32 registers, 4 x 2 ymm / xmm with the 16 of
// AVX2 and the baseline. AVX-512 also keeps the line prefix's shifted column in registers.
// Each register block in a function of its own: inlined together into one, GCC spilled the
// row-block kernel's fold vectors to the stack inside its multiply-add loop.
template <typename acc_t, int64_t kVecs>
WS_TARGET("arch=x86-64-v4") __attribute__((noinline)) void forward_rows_avx512(const tile::Workspace<acc_t>& w,
    const Conv1dGeometry& g, const acc_t* bias, int64_t t0, int64_t t1, int64_t n0, int64_t n1, acc_t* y,
    int64_t ld_y) {
  tile::forward_tile_by_rows<acc_t, 64, kVecs>(w, g, bias, t0, t1, n0, n1, y, ld_y);
}
template <typename acc_t, int64_t kVecs>
WS_TARGET("arch=x86-64-v4") __attribute__((noinline)) void forward_columns_avx512(const tile::Workspace<acc_t>& w,
    const Conv1dGeometry& g, const acc_t* bias, int64_t t0, int64_t t1, int64_t n0, int64_t n1, acc_t* y,
    int64_t ld_y) {
  tile::forward_tile<acc_t, 64, kVecs>(w, g, bias, t0, t1, n0, n1, y, ld_y);
}
template <typename acc_t>
void forward_tile_avx512(const tile::Workspace<acc_t>& w,
    const Conv1dGeometry& g, const acc_t* bias, int64_t t0, int64_t t1, int64_t n0, int64_t n1, acc_t* y,
    int64_t ld_y) {
  constexpr int64_t kLane = 64 / sizeof(acc_t);
  const bool full_blocks = w.ld % (4 * kLane) == 0;  // else short tiles: one vector of rows
  if (tile::kRuntimeShuffle && g.dilation < kLane) {  // row blocks (else: column sweeps)
    if (full_blocks) forward_rows_avx512<acc_t, 4>(w, g, bias, t0, t1, n0, n1, y, ld_y);
    else forward_rows_avx512<acc_t, 1>(w, g, bias, t0, t1, n0, n1, y, ld_y);
  } else if (full_blocks) {
    forward_columns_avx512<acc_t, 4>(w, g, bias, t0, t1, n0, n1, y, ld_y);
  } else {
    forward_columns_avx512<acc_t, 1>(w, g, bias, t0, t1, n0, n1, y, ld_y);
  }
}
template <typename acc_t>
WS_TARGET("arch=x86-64-v3") void forward_tile_avx2(const tile::Workspace<acc_t>& w,
    const Conv1dGeometry& g, const acc_t* bias, int64_t t0, int64_t t1, int64_t n0, int64_t n1, acc_t* y,
    int64_t ld_y) {
  tile::forward_tile<acc_t, 32, 2>(w, g, bias, t0, t1, n0, n1, y, ld_y);
}
template <typename acc_t>
void forward_tile_baseline(const tile::Workspace<acc_t>& w, const Conv1dGeometry& g,
                           const acc_t* bias, int64_t t0, int64_t t1, int64_t n0, int64_t n1, acc_t* y,
                           int64_t ld_y) {
  tile::forward_tile<acc_t, 16, 2>(w, g, bias, t0, t1, n0, n1, y, ld_y);
}

template <typename acc_t>
WS_TARGET("arch=x86-64-v4") void backward_tile_avx512(const tile::Workspace<acc_t>& w,
    const Conv1dGeometry& g, const acc_t* gy, int64_t u0, int64_t rows, acc_t* gf, acc_t* gc, bool gc_fresh) {
  tile::backward_tile<acc_t, 64, 4>(w, g, gy, u0, rows, gf, gc, gc_fresh);
}
template <typename acc_t>
WS_TARGET("arch=x86-64-v3") void backward_tile_avx2(const tile::Workspace<acc_t>& w,
    const Conv1dGeometry& g, const acc_t* gy, int64_t u0, int64_t rows, acc_t* gf, acc_t* gc, bool gc_fresh) {
  tile::backward_tile<acc_t, 32, 2>(w, g, gy, u0, rows, gf, gc, gc_fresh);
}
template <typename acc_t>
void backward_tile_baseline(const tile::Workspace<acc_t>& w, const Conv1dGeometry& g,
                            const acc_t* gy, int64_t u0, int64_t rows, acc_t* gf, acc_t* gc, bool gc_fresh) {
  tile::backward_tile<acc_t, 16, 2>(w, g, gy, u0, rows, gf, gc, gc_fresh);
}

template <typename acc_t>
void run_forward_tile(const tile::Workspace<acc_t>& w, const Conv1dGeometry& g, const acc_t* bias,
                  int64_t t0, int64_t t1, int64_t n0, int64_t n1, acc_t* y, int64_t ld_y) {
  switch (cpu_isa()) {
#if WS_X86_DISPATCH
    case Isa::kAvx512: return forward_tile_avx512(w, g, bias, t0, t1, n0, n1, y, ld_y);
    case Isa::kAvx2: return forward_tile_avx2(w, g, bias, t0, t1, n0, n1, y, ld_y);
#endif
    default: return forward_tile_baseline(w, g, bias, t0, t1, n0, n1, y, ld_y);
  }
}

template <typename acc_t>
void run_backward_tile(const tile::Workspace<acc_t>& w, const Conv1dGeometry& g, const acc_t* gy,
                   int64_t u0, int64_t rows, acc_t* gf, acc_t* gc, bool gc_fresh) {
  switch (cpu_isa()) {
#if WS_X86_DISPATCH
    case Isa::kAvx512: return backward_tile_avx512(w, g, gy, u0, rows, gf, gc, gc_fresh);
    case Isa::kAvx2: return backward_tile_avx2(w, g, gy, u0, rows, gf, gc, gc_fresh);
#endif
    default: return backward_tile_baseline(w, g, gy, u0, rows, gf, gc, gc_fresh);
  }
}

// The fold and the grad_input write-back (ws_conv1d_fold.h), built per level the same way. The
// fold also says, when asked, whether its rows hold no NaN / Inf (in the same build: the baseline
// build's unsigned min took ~5% of conv3's forward).
template <typename scalar_t, typename acc_t>
WS_INLINE bool fold_rows_checked(const scalar_t* x_b, const InputLayout& in, int64_t row0, int64_t rows,
                                 int64_t ld, acc_t* fold, bool check_finite) {
  tile::fold_rows(x_b, in, row0, rows, ld, fold);
  return !check_finite || tile::all_finite(fold, in.mc * in.phases * ld);
}
template <typename scalar_t, typename acc_t>
WS_TARGET("arch=x86-64-v4") bool fold_rows_avx512(const scalar_t* x_b, const InputLayout& in, int64_t row0,
                                                  int64_t rows, int64_t ld, acc_t* fold, bool check_finite) {
  return fold_rows_checked(x_b, in, row0, rows, ld, fold, check_finite);
}
template <typename scalar_t, typename acc_t>
WS_TARGET("arch=x86-64-v3") bool fold_rows_avx2(const scalar_t* x_b, const InputLayout& in, int64_t row0,
                                                int64_t rows, int64_t ld, acc_t* fold, bool check_finite) {
  return fold_rows_checked(x_b, in, row0, rows, ld, fold, check_finite);
}
// Folds the rows (ws_conv1d_fold.h); with check_finite, returns whether they hold no NaN / Inf.
template <typename scalar_t, typename acc_t>
bool run_fold_rows(const scalar_t* x_b, const InputLayout& in, int64_t row0, int64_t rows, int64_t ld, acc_t* fold,
                   bool check_finite) {
  switch (cpu_isa()) {
#if WS_X86_DISPATCH
    case Isa::kAvx512: return fold_rows_avx512(x_b, in, row0, rows, ld, fold, check_finite);
    case Isa::kAvx2: return fold_rows_avx2(x_b, in, row0, rows, ld, fold, check_finite);
#endif
    default: return fold_rows_checked(x_b, in, row0, rows, ld, fold, check_finite);
  }
}

// Whether p[0, n) holds no NaN / Inf, in the widest build (the condensed filter, once per call).
template <typename acc_t>
WS_TARGET("arch=x86-64-v4") bool all_finite_avx512(const acc_t* p, int64_t n) {
  return tile::all_finite(p, n);
}
template <typename acc_t>
WS_TARGET("arch=x86-64-v3") bool all_finite_avx2(const acc_t* p, int64_t n) {
  return tile::all_finite(p, n);
}
template <typename acc_t>
bool run_all_finite(const acc_t* p, int64_t n) {
  switch (cpu_isa()) {
#if WS_X86_DISPATCH
    case Isa::kAvx512: return all_finite_avx512(p, n);
    case Isa::kAvx2: return all_finite_avx2(p, n);
#endif
    default: return tile::all_finite(p, n);
  }
}

// tile::add_row_sums (the fused bias gradient), built the same way.
template <typename acc_t>
WS_TARGET("arch=x86-64-v4") void add_row_sums_avx512(const acc_t* rows, int64_t n, int64_t ld, int64_t count, acc_t* out) {
  tile::add_row_sums(rows, n, ld, count, out);
}
template <typename acc_t>
WS_TARGET("arch=x86-64-v3") void add_row_sums_avx2(const acc_t* rows, int64_t n, int64_t ld, int64_t count, acc_t* out) {
  tile::add_row_sums(rows, n, ld, count, out);
}
template <typename acc_t>
void run_add_row_sums(const acc_t* rows, int64_t n, int64_t ld, int64_t count, acc_t* out) {
  switch (cpu_isa()) {
#if WS_X86_DISPATCH
    case Isa::kAvx512: return add_row_sums_avx512(rows, n, ld, count, out);
    case Isa::kAvx2: return add_row_sums_avx2(rows, n, ld, count, out);
#endif
    default: return tile::add_row_sums(rows, n, ld, count, out);
  }
}

template <typename scalar_t, typename acc_t>
WS_TARGET("arch=x86-64-v4") void write_grad_rows_avx512(const acc_t* grad_fold, const InputLayout& in, int64_t u0,
                                                        int64_t rows, int64_t ld, scalar_t* gx_b) {
  tile::write_grad_rows(grad_fold, in, u0, rows, ld, gx_b);
}
template <typename scalar_t, typename acc_t>
WS_TARGET("arch=x86-64-v3") void write_grad_rows_avx2(const acc_t* grad_fold, const InputLayout& in, int64_t u0,
                                                      int64_t rows, int64_t ld, scalar_t* gx_b) {
  tile::write_grad_rows(grad_fold, in, u0, rows, ld, gx_b);
}
template <typename scalar_t, typename acc_t>
void run_write_grad_rows(const acc_t* grad_fold, const InputLayout& in, int64_t u0, int64_t rows, int64_t ld,
                         scalar_t* gx_b) {
  switch (cpu_isa()) {
#if WS_X86_DISPATCH
    case Isa::kAvx512: return write_grad_rows_avx512(grad_fold, in, u0, rows, ld, gx_b);
    case Isa::kAvx2: return write_grad_rows_avx2(grad_fold, in, u0, rows, ld, gx_b);
#endif
    default: return tile::write_grad_rows(grad_fold, in, u0, rows, ld, gx_b);
  }
}

}  // namespace wsnet
