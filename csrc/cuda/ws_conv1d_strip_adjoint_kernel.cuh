// The fused strip backward of WSConv1d on CUDA (schedule, index math and reasons in
// ../ws_conv1d_strip_adjoint.h, shared with the CPU host model): adjoint_strip_kernel makes dP on
// chip and accumulates grad_input and per-block partials of grad_condensed; adjoint_reduce_kernel
// adds the partials in a fixed order. Two launches, no dP in global memory, no cuBLAS, no atomics.
// Opt-in (WSNET_CUDA_ADJOINT=fused) until a GPU run has passed the CUDA tests and compute-sanitizer.
#pragma once

#include "../ws_conv1d_strip_adjoint.h"

namespace wsnet {

template <typename scalar_t, int KT>
__global__ void __launch_bounds__(kAdjointThreads)
adjoint_strip_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ x,
                     const float* __restrict__ cond, scalar_t* __restrict__ grad_input,
                     float* __restrict__ partials, Conv1dGeometry g, AdjointPlan p, bool want_input,
                     bool want_condensed) {
  extern __shared__ __align__(16) float adjoint_smem[];
  const int tid = threadIdx.x, threads = int(p.threads), mc = int(g.condensed_channels);
  float* partial = partials + int64_t(blockIdx.x) * mc * g.condensed_len;  // this block's own slice
  for (int64_t strip = blockIdx.x; strip < g.batch * p.strips; strip += gridDim.x) {  // uniform
    const int64_t b = strip / p.strips, u0 = (strip % p.strips) * p.rows;
    const int own_rows = int(p.rows < g.padded_len - u0 ? p.rows : g.padded_len - u0);
    int64_t t_lo = 0, t_count = 0;
    adjoint_frame(p, g, u0, t_lo, t_count);
    const int own0 = int(u0 - t_lo * g.stride);
    const scalar_t* x_b = x + b * g.in_channels * g.length;
    const scalar_t* gy_b = gy + b * g.out_channels * g.out_len;
    __syncthreads();  // the last strip's products and grad_input writes are done with F and G
    for (int k = tid; k < own_rows * mc; k += threads) {  // fold the strip's own rows (§2.1)
      const int r = k % own_rows, j = k / own_rows;
      adjoint_smem[p.f_offset + r * mc + j] = folded_input<float>(x_b, g, j, g.input_time(u0 + r));
      adjoint_smem[p.g_offset + r * mc + j] = 0.f;
    }
    AdjointWalker<KT> walkers[kAdjointLinesPerThread];
    bool active[kAdjointLinesPerThread];
#pragma unroll
    for (int kk = 0; kk < kAdjointLinesPerThread; ++kk) {
      active[kk] = t_count > 0 && adjoint_walker_setup(p, g, tid + kk * threads, int(t_count), walkers[kk]);
    }
    int nonfinite = 0;  // sticky per strip, uniform after each barrier below
    for (int ct = 0; ct < int(p.col_tiles); ++ct) {
      const int v0 = ct * kStripColumns;
      __syncthreads();  // the last tile's products are done with C and dP
      for (int k = tid; k < kStripColumns * mc; k += threads) {
        const int vl = k % kStripColumns, j = k / kStripColumns, v = v0 + vl;
        adjoint_smem[p.c_offset + vl * mc + j] = v < g.condensed_len ? cond[int64_t(j) * g.condensed_len + v] : 0.f;
      }
      for (int k = tid; k < kStripColumns * int(p.ld_p); k += threads) adjoint_smem[p.p_offset + k] = 0.f;
      __syncthreads();
      const auto read_gy = [&](int n, int t) {
        const float value = static_cast<float>(gy_b[int64_t(n) * g.out_len + t_lo + t]);
        nonfinite |= !isfinite(value);
        return value;
      };
      const auto put = [&](int v, int r, float value) {
        if (r >= own0 && r < own0 + own_rows) adjoint_smem[p.p_offset + (v - v0) * p.ld_p + (r - own0)] = value;
      };
#pragma unroll
      for (int kk = 0; kk < kAdjointLinesPerThread; ++kk) {
        if (active[kk]) adjoint_walk(walkers[kk], v0 + kStripColumns, p, g, read_gy, put);
      }
      nonfinite = __syncthreads_or(nonfinite);
      if (nonfinite) {  // uniform: dP of this tile by its definition (a running sum carries NaN/Inf)
        for (int k = tid; k < own_rows * kStripColumns; k += threads) {
          const int r = k % own_rows, vl = k / own_rows;
          if (v0 + vl < g.condensed_len) {
            adjoint_smem[p.p_offset + vl * p.ld_p + r] = adjoint_point_value(gy_b, g, u0 + r, v0 + vl);
          }
        }
        __syncthreads();
      }
      if (want_input) adjoint_accumulate_grad_f(adjoint_smem, p, mc, own_rows, tid, threads);
      if (want_condensed) adjoint_accumulate_partial(adjoint_smem, p, g, own_rows, v0, partial, tid, threads);
    }
    __syncthreads();
    if (want_input) {  // grad_input of every channel repeat: the strip's unpadded rows, coalesced in time
      const int64_t repeats = g.in_channels / mc;
      for (int k = tid; k < own_rows * mc; k += threads) {
        const int r = k % own_rows, j = k / own_rows;
        const int64_t i = g.input_time(u0 + r);
        if (i < 0) continue;
        const scalar_t value = static_cast<scalar_t>(adjoint_smem[p.g_offset + r * mc + j]);
        for (int64_t c = 0; c < repeats; ++c) grad_input[(b * g.in_channels + c * mc + j) * g.length + i] = value;
      }
    }
  }
}

// grad_condensed[i] = sum over blocks 0, 1, ..., grid - 1 of their partials (fixed order).
template <typename scalar_t>
__global__ void adjoint_reduce_kernel(const float* __restrict__ partials, scalar_t* __restrict__ grad_condensed,
                                      int64_t slice, int64_t grid) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < slice; i += int64_t(blockDim.x) * gridDim.x) {
    float sum = 0.f;
    for (int64_t blk = 0; blk < grid; ++blk) sum += partials[blk * slice + i];
    grad_condensed[i] = static_cast<scalar_t>(sum);
  }
}

}  // namespace wsnet
