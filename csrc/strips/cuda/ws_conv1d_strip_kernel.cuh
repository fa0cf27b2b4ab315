// The strip forward of WSConv1d on CUDA: P tiles on tensor cores (Mc >= 8) or by the walkers'
// FMAs (Mc < 8), and register line walkers (docs/design.md §2; the schedule, its index math and
// its reasons are in ../ws_conv1d_strips.h, which the CPU host model shares). Opt-in
// (WSNET_CUDA_FORWARD=strips) until a GPU run has passed the CUDA tests and compute-sanitizer.
#pragma once

#include "strips/ws_conv1d_strip_window.h"
#include "strips/ws_conv1d_strips.h"

namespace wsnet {

// D += A * B for one m16n8k8 TF32 tile: a[4], b[2] hold TF32 bit patterns (already rounded).
__device__ __forceinline__ void mma_tf32_m16n8k8(float (&acc)[4], const uint32_t (&a)[4],
                                                 const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // the host side never launches the MMA kernels below sm_80
#endif
}

// One warp's bands of the P tile (ws_conv1d_strips.h): per k-step its A fragments once, then the
// CT/8 column tiles. THREE: 3xTF32 (lo*hi + hi*lo, then hi*hi), else one TF32 product.
template <bool THREE>
__device__ __forceinline__ void strip_mma_tile(float* smem, const StripPlan& p, int warp, int lane) {
  constexpr int kNTiles = kStripColumns / 8;
  const int bands = strip_mma_bands(p), warps = int(p.threads) / 32;
  for (int band = warp; band < bands; band += warps) {
    const int row0 = 16 * band;
    float acc[kNTiles][4] = {};
    for (int k0 = 0; k0 < int(p.k_pad); k0 += 8) {
      uint32_t a_hi[4], a_lo[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float a = smem[strip_f_index(p, row0 + mma_a_row(lane, i), k0 + mma_a_k(lane, i))];
        const float hi = round_to_tf32(a);
        a_hi[i] = __float_as_uint(hi);
        a_lo[i] = __float_as_uint(THREE ? round_to_tf32(a - hi) : 0.f);
      }
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
        uint32_t b_hi[2], b_lo[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          const float b = smem[strip_c_index(p, 8 * nt + mma_b_n(lane), k0 + mma_b_k(lane, i))];
          const float hi = round_to_tf32(b);
          b_hi[i] = __float_as_uint(hi);
          b_lo[i] = __float_as_uint(THREE ? round_to_tf32(b - hi) : 0.f);
        }
        if (THREE) {
          mma_tf32_m16n8k8(acc[nt], a_lo, b_hi);
          mma_tf32_m16n8k8(acc[nt], a_hi, b_lo);
        }
        mma_tf32_m16n8k8(acc[nt], a_hi, b_hi);
      }
    }
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        smem[strip_p_index(p, 8 * nt + mma_c_n(lane, i), row0 + mma_c_row(lane, i))] = acc[nt][i];
      }
    }
  }
}

// PRECISION: StripPrecision; KT: the ring's compiled size (>= plan.ring).
template <typename scalar_t, int KT, int PRECISION>
__global__ void __launch_bounds__(kStripThreads, 2)
forward_strip_kernel(const scalar_t* __restrict__ x, const float* __restrict__ cond,
                     const scalar_t* __restrict__ bias, scalar_t* __restrict__ y, Conv1dGeometry g,
                     StripPlan p) {
  extern __shared__ __align__(16) float strip_smem[];
  constexpr bool kMma = PRECISION != int(StripPrecision::kFma);
  constexpr int kLines = strip_lines_per_thread(KT);
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, threads = int(p.threads);
  const int mc = int(g.condensed_channels), lc = int(g.condensed_len);
  for (int64_t block = blockIdx.x; block < g.batch * p.strips * p.groups; block += gridDim.x) {  // uniform
    // (batch row, strip, filter group), groups fastest: neighbouring blocks share the strip's input
    const int64_t strip = block / p.groups, b = strip / p.strips, t0 = (strip % p.strips) * p.outputs;
    const int64_t n0 = (block % p.groups) * p.filters, col0 = n0 * g.sample_stride;
    const int t_count = int(p.outputs < g.out_len - t0 ? p.outputs : g.out_len - t0);
    const int n_count = int(p.filters < g.out_channels - n0 ? p.filters : g.out_channels - n0);
    const scalar_t* x_b = x + b * g.in_channels * g.length;
    // fold (§2.1): consecutive threads take consecutive rows (coalesced reads of x)
    for (int k = tid; k < int(p.f_rows * p.k_pad); k += threads) {
      const int pr = k % int(p.f_rows), j = k / int(p.f_rows);  // physical rows
      strip_smem[strip_f_index(p, pr, j)] = strip_fold_value(x_b, g, p, t0, strip_logical_row(p, pr), j);
    }
    StripWalker<KT> walkers[kLines];
    bool active[kLines];
#pragma unroll
    for (int kk = 0; kk < kLines; ++kk) {
      active[kk] = strip_walker_setup(p, g, tid + kk * threads, t_count, n_count, walkers[kk]);
    }
    int nonfinite = 0;
    for (int ct = 0; ct < int(p.col_tiles); ++ct) {
      const int v0 = ct * kStripColumns;
      __syncthreads();  // the fold is done, and the last tile's walkers are done with C and P
      for (int k = tid; k < kStripColumns * int(p.k_pad); k += threads) {  // condensed slab
        const int vl = k % kStripColumns, j = k / kStripColumns, v = int(col0) + v0 + vl;
        strip_smem[strip_c_index(p, vl, j)] =
            (v < lc && j < mc) ? cond[int64_t(j) * lc + v] : 0.f;
      }
      __syncthreads();
      if constexpr (kMma) {
        strip_mma_tile<PRECISION == int(StripPrecision::kTf32x3)>(strip_smem, p, warp, lane);
        __syncthreads();
      }
      const auto get_p = [&](int v, int prow) -> float {  // prow: physical row
        float value;
        if constexpr (kMma) {
          value = strip_smem[strip_p_index(p, v - v0, prow)];
        } else {
          value = 0.f;
          for (int j = 0; j < mc; ++j) {
            value += strip_smem[strip_f_index(p, prow, j)] * strip_smem[strip_c_index(p, v - v0, j)];
          }
        }
        nonfinite |= !isfinite(value);
        return value;
      };
      const auto emit = [&](int n, int t, float sum) {  // n, t in the block's group and strip
        strip_emit_output(y, bias, g, b, n0, t0, n, t, sum);
      };
#pragma unroll
      for (int kk = 0; kk < kLines; ++kk) {
        if (active[kk]) strip_walk(walkers[kk], v0 + kStripColumns, p, g, get_p, emit);
      }
    }
    if (__syncthreads_or(nonfinite)) {  // uniform: NaN/Inf in P, the definition (as conv1d does)
      for (int64_t k = tid; k < int64_t(t_count) * n_count; k += threads) {
        strip_definition_output(x_b, cond, bias, y, g, b, n0 + k / t_count, t0 + k % t_count);
      }
    }
    __syncthreads();  // F is rewritten by the next strip
  }
}

// The register-window walk for single-channel inputs (../ws_conv1d_strip_window.h): W neighbouring
// lines per thread, f in a sliding register window, one FMA per point. NaN/Inf shows in the
// emitted sums; such a strip takes the definition, as in the other kernels.
template <typename scalar_t, int LS>
__global__ void __launch_bounds__(kStripThreads, 2)
forward_window_kernel(const scalar_t* __restrict__ x, const float* __restrict__ cond,
                      const scalar_t* __restrict__ bias, scalar_t* __restrict__ y, Conv1dGeometry g, StripPlan p) {
  extern __shared__ __align__(16) float window_smem[];
  const int tid = threadIdx.x, threads = int(p.threads);
  const auto load_f = [&](int row) { return window_smem[strip_f_index(p, strip_phys_row(p, row), 0)]; };
  const auto ring = [&](int64_t i) -> float& { return window_smem[i]; };
  for (int64_t strip = blockIdx.x; strip < g.batch * p.strips; strip += gridDim.x) {  // uniform
    const int64_t b = strip / p.strips, t0 = (strip % p.strips) * p.outputs;
    const int t_count = int(p.outputs < g.out_len - t0 ? p.outputs : g.out_len - t0);
    const scalar_t* x_b = x + b * g.in_channels * g.length;
    __syncthreads();  // the last strip's walkers are done with F
    for (int pr = tid; pr < int(p.f_rows); pr += threads) {  // fold (§2.1), margins of zeros
      window_smem[strip_f_index(p, pr, 0)] = strip_fold_value(x_b, g, p, t0, strip_logical_row(p, pr), 0);
    }
    __syncthreads();
    WindowWalker<LS> walker;
    const bool active = window_walker_setup(p, g, tid, t_count, walker, load_f, ring);
    int nonfinite = 0;
    for (int ct = 0; ct < int(p.col_tiles); ++ct) {
      const int v0 = ct * kStripColumns;
      __syncthreads();  // the last tile's walkers are done with C
      for (int vl = tid; vl < kStripColumns; vl += threads) {
        window_smem[strip_c_index(p, vl, 0)] = v0 + vl < g.condensed_len ? cond[v0 + vl] : 0.f;
      }
      __syncthreads();
      if (active) {
        window_walk(walker, tid, v0 + kStripColumns, p, g, t_count, load_f,
                    [&](int v) { return window_smem[strip_c_index(p, v - v0, 0)]; }, ring,
                    [&](int n, int t, float sum) {
                      nonfinite |= !isfinite(sum);
                      strip_emit_output(y, bias, g, b, 0, t0, n, t, sum);
                    });
      }
    }
    if (__syncthreads_or(nonfinite)) {  // uniform: the definition for the strip's outputs
      for (int64_t k = tid; k < int64_t(t_count) * g.out_channels; k += threads) {
        strip_definition_output(x_b, cond, bias, y, g, b, k / t_count, t0 + k % t_count);
      }
    }
  }
}

}  // namespace wsnet
