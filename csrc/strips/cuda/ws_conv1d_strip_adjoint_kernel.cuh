// The fused strip backward of WSConv1d on CUDA (schedule, index math and reasons in
// ../ws_conv1d_strip_adjoint.h, shared with the CPU host model): adjoint_strip_kernel makes dP on
// chip and accumulates grad_input and per-block partials of grad_condensed; adjoint_reduce_kernel
// adds the partials in a fixed order. Two launches, no dP in global memory, no cuBLAS, no atomics.
// Opt-in (WSNET_CUDA_ADJOINT=fused) until a GPU run has passed the CUDA tests and compute-sanitizer.
#pragma once

#include "strips/ws_conv1d_strip_adjoint.h"
#include "strips/cuda/ws_conv1d_strip_kernel.cuh"  // mma_tf32_m16n8k8

namespace wsnet {

// TF32 operands of one fragment element: hi = tf32(a), lo = tf32(a - hi) (3xTF32) or 0.
template <bool THREE>
__device__ __forceinline__ void tf32_split(float a, uint32_t& hi, uint32_t& lo) {
  const float h = round_to_tf32(a);
  hi = __float_as_uint(h);
  lo = __float_as_uint(THREE ? round_to_tf32(a - h) : 0.f);
}

template <bool THREE>
__device__ __forceinline__ void mma_tf32_split(float (&acc)[4], const uint32_t (&a_hi)[4], const uint32_t (&a_lo)[4],
                                               const uint32_t (&b_hi)[2], const uint32_t (&b_lo)[2]) {
  if (THREE) {
    mma_tf32_m16n8k8(acc, a_lo, b_hi);
    mma_tf32_m16n8k8(acc, a_hi, b_lo);
  }
  mma_tf32_m16n8k8(acc, a_hi, b_hi);
}

// G (rows_pad x j_pad) += dP . C: warp w takes the 16-row bands w, w + 8, ...; per band the
// j tiles in chunks of 4 (16 accumulators), k over the tile's 32 columns (ws_conv1d_strip_adjoint.h).
template <bool THREE>
__device__ __forceinline__ void adjoint_grad_f_mma(float* smem, const AdjointPlan& p, int warp, int lane) {
  const int bands = int(p.rows_pad / 16), n_tiles = int(p.j_pad / 8), warps = int(p.threads) / 32;
  for (int band = warp; band < bands; band += warps) {
    for (int nt0 = 0; nt0 < n_tiles; nt0 += 4) {
      float acc[4][4] = {};
      for (int k0 = 0; k0 < kStripColumns; k0 += 8) {
        uint32_t a_hi[4], a_lo[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          tf32_split<THREE>(smem[adjoint_p_index(p, k0 + mma_a_k(lane, i), 16 * band + mma_a_row(lane, i))], a_hi[i], a_lo[i]);
        }
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          if (nt0 + q >= n_tiles) break;
          uint32_t b_hi[2], b_lo[2];
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            tf32_split<THREE>(smem[adjoint_c_index(p, k0 + mma_b_k(lane, i), 8 * (nt0 + q) + mma_b_n(lane))], b_hi[i], b_lo[i]);
          }
          mma_tf32_split<THREE>(acc[q], a_hi, a_lo, b_hi, b_lo);
        }
      }
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        if (nt0 + q >= n_tiles) break;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          smem[adjoint_g_index(p, 16 * band + mma_c_row(lane, i), 8 * (nt0 + q) + mma_c_n(lane, i))] += acc[q][i];
        }
      }
    }
  }
}

// partial (Mc x CT, this block's slice) += F^T . dP: items of 16 channels x 8 columns, split over
// warps by row ranges when there are fewer items than warps; splits meet in scratch and are added
// in warp order (deterministic). Called by every thread of the block (it may hold a barrier).
template <bool THREE>
__device__ __forceinline__ void adjoint_partial_mma(float* smem, const AdjointPlan& p, const Conv1dGeometry& g, int v0,
                                                    int tid, float* partial) {
  const int warp = tid / 32, lane = tid % 32, warps = int(p.threads) / 32;
  const int items = adjoint_partial_items(p), splits = adjoint_partial_splits(p);
  for (int unit = warp; unit < items * splits; unit += warps) {
    const int item = unit / splits, split = unit % splits, mt = item / 4, nt = item % 4;
    int first = 0, last = 0;
    adjoint_split_steps(p, split, splits, first, last);
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (int step = first; step < last; ++step) {
      const int k0 = 8 * step;
      uint32_t a_hi[4], a_lo[4], b_hi[2], b_lo[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        tf32_split<THREE>(smem[adjoint_f_index(p, k0 + mma_a_k(lane, i), 16 * mt + mma_a_row(lane, i))], a_hi[i], a_lo[i]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        tf32_split<THREE>(smem[adjoint_p_index(p, 8 * nt + mma_b_n(lane), k0 + mma_b_k(lane, i))], b_hi[i], b_lo[i]);
      }
      mma_tf32_split<THREE>(acc, a_hi, a_lo, b_hi, b_lo);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (splits == 1) {
        const int j = 16 * mt + mma_c_row(lane, i), v = v0 + 8 * nt + mma_c_n(lane, i);
        if (j < g.condensed_channels && v < g.condensed_len) partial[int64_t(j) * g.condensed_len + v] += acc[i];
      } else {
        smem[p.scratch_offset + warp * 128 + lane * 4 + i] = acc[i];
      }
    }
  }
  if (splits == 1) return;  // uniform
  __syncthreads();
  for (int k = tid; k < items * 128; k += int(p.threads)) {
    const int item = k / 128, e = k % 128, lane_e = e / 4, i = e % 4, mt = item / 4, nt = item % 4;
    float sum = 0.f;
    for (int split = 0; split < splits; ++split) sum += smem[p.scratch_offset + (item * splits + split) * 128 + e];
    const int j = 16 * mt + mma_c_row(lane_e, i), v = v0 + 8 * nt + mma_c_n(lane_e, i);
    if (j < g.condensed_channels && v < g.condensed_len) partial[int64_t(j) * g.condensed_len + v] += sum;
  }
}

// PRECISION: StripPrecision (kFma: CUDA-core products); KT: the ring's compiled size (>= plan.ring).
template <typename scalar_t, int KT, int PRECISION>
__global__ void __launch_bounds__(kAdjointThreads)
adjoint_strip_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ x,
                     const float* __restrict__ cond, scalar_t* __restrict__ grad_input,
                     float* __restrict__ partials, Conv1dGeometry g, AdjointPlan p, bool want_input,
                     bool want_condensed) {
  extern __shared__ __align__(16) float adjoint_smem[];
  constexpr bool kMma = PRECISION != int(StripPrecision::kFma);
  constexpr bool kThree = PRECISION == int(StripPrecision::kTf32x3);
  const int tid = threadIdx.x, threads = int(p.threads), mc = int(g.condensed_channels);
  float* partial = partials + int64_t(blockIdx.x) * mc * g.condensed_len;  // this block's own slice
  const auto store = [&](int64_t i, float value) { adjoint_smem[i] = value; };
  for (int64_t strip = blockIdx.x; strip < g.batch * p.strips; strip += gridDim.x) {  // uniform
    const int64_t b = strip / p.strips, u0 = (strip % p.strips) * p.rows;
    const int own_rows = int(p.rows < g.padded_len - u0 ? p.rows : g.padded_len - u0);
    int64_t t_lo = 0, t_count = 0;
    adjoint_frame(p, g, u0, t_lo, t_count);
    const int own0 = int(u0 - t_lo * g.stride);
    const scalar_t* x_b = x + b * g.in_channels * g.length;
    const scalar_t* gy_b = gy + b * g.out_channels * g.out_len;
    __syncthreads();  // the last strip's products and grad_input writes are done with F and G
    adjoint_fold(p, g, x_b, u0, own_rows, tid, threads, store);
    AdjointWalker<KT> walkers[kAdjointLinesPerThread];
    bool active[kAdjointLinesPerThread];
#pragma unroll
    for (int kk = 0; kk < kAdjointLinesPerThread; ++kk) {
      active[kk] = t_count > 0 && adjoint_walker_setup(p, g, tid + kk * threads, int(t_count), walkers[kk]);
    }
    int nonfinite = 0;  // sticky per strip, uniform after each barrier below
    for (int ct = 0; ct < int(p.col_tiles); ++ct) {
      const int v0 = ct * kStripColumns;
      __syncthreads();  // the last tile's products are done with C, dP and scratch
      adjoint_load_tile(p, g, cond, v0, tid, threads, store);
      __syncthreads();
      const auto read_gy = [&](int n, int t) {
        const float value = static_cast<float>(gy_b[int64_t(n) * g.out_len + t_lo + t]);
        nonfinite |= !isfinite(value);
        return value;
      };
      const auto put = [&](int v, int r, float value) {
        if (r >= own0 && r < own0 + own_rows) adjoint_smem[adjoint_p_index(p, v - v0, r - own0)] = value;
      };
#pragma unroll
      for (int kk = 0; kk < kAdjointLinesPerThread; ++kk) {
        if (active[kk]) adjoint_walk(walkers[kk], v0 + kStripColumns, p, g, read_gy, put);
      }
      nonfinite = __syncthreads_or(nonfinite);
      if (nonfinite) {  // uniform: dP of this tile by its definition (a running sum carries NaN/Inf)
        adjoint_pointwise_tile(p, g, gy_b, u0, own_rows, v0, tid, threads, store);
        __syncthreads();
      }
      if constexpr (kMma) {
        if (want_input) adjoint_grad_f_mma<kThree>(adjoint_smem, p, tid / 32, tid % 32);
        if (want_condensed) adjoint_partial_mma<kThree>(adjoint_smem, p, g, v0, tid, partial);
      } else {
        if (want_input) adjoint_accumulate_grad_f(adjoint_smem, p, mc, own_rows, tid, threads);
        if (want_condensed) adjoint_accumulate_partial(adjoint_smem, p, g, own_rows, v0, partial, tid, threads);
      }
    }
    __syncthreads();
    if (want_input) adjoint_write_grad_input(p, g, adjoint_smem, b, u0, own_rows, grad_input, tid, threads);
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
