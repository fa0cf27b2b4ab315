// The P-tile forward of WSConv1d on CUDA (docs/design.md §2): fold_kernel writes f (B, Mc, Tp);
// forward_tile_kernel gives each block a tile of (outputs x filters), computes its P tile in shared
// memory (§2.2), prefix-sums it along the sampling lines (§2.3) and gathers one difference per
// output (§2.4); P never reaches global memory. A tile whose P holds NaN or Inf computes its outputs
// by the definition (definition_output, common/ws_conv1d_geometry.h). forward_direct_kernel is the
// fallback where not even one output's P fits. fold_kernel also serves the gather backward.
#pragma once

#include "common/ws_conv1d_geometry.h"
#include "cuda/ws_cuda_launch.h"

namespace wsnet {

// Dynamic shared memory of a forward tile: the 48 KiB every GPU gives without opt-in, less room
// for the kernel's static shared variables (the 48 KiB bound counts both).
constexpr int64_t kSharedBytes = 48 * 1024 - 256;

// f[b, j, u] = sum_c xp[b, c*Mc + j, u] for batches [b0, b0 + bc)  (§2.1)
template <typename scalar_t, typename acc_t>
__global__ void fold_kernel(const scalar_t* __restrict__ x, acc_t* __restrict__ f,
                            Conv1dGeometry g, int64_t b0, int64_t bc) {
  const int64_t total = bc * g.condensed_channels * g.padded_len;
  WS_GRID_STRIDE_LOOP(idx, total) {
    const int64_t u = idx % g.padded_len;
    const int64_t j = (idx / g.padded_len) % g.condensed_channels;
    const int64_t b = b0 + idx / (g.padded_len * g.condensed_channels);
    f[idx] = folded_input<acc_t>(x + b * g.in_channels * g.length, g, j, g.input_time(u));
  }
}

struct ForwardTiles {
  int64_t outputs;  // outputs t per tile
  int64_t filters;  // filters n per tile
  int64_t rows;     // (outputs - 1) * s + (L - 1) * d + 1
  int64_t cols;     // (filters - 1) * S + L
  int64_t t_tiles, n_tiles;
};

// The largest tile (up to 64 outputs x 32 filters) whose P fits in shared memory; outputs = 0
// when not even one output of one filter fits.
inline ForwardTiles choose_forward_tiles(const Conv1dGeometry& g, int64_t acc_bytes) {
  ForwardTiles tiles{};
  int64_t outputs = std::min<int64_t>(g.out_len, 64), filters = std::min<int64_t>(g.out_channels, 32);
  while (true) {
    const int64_t rows = (outputs - 1) * g.stride + g.halo_rows() + 1;
    const int64_t cols = (filters - 1) * g.sample_stride + g.kernel_size;
    if (rows * cols * acc_bytes <= kSharedBytes) {
      tiles = {outputs, filters, rows, cols, (g.out_len + outputs - 1) / outputs,
               (g.out_channels + filters - 1) / filters};
      return tiles;
    }
    if (outputs == 1 && filters == 1) return tiles;
    if (filters == 1 || (outputs > 1 && rows >= cols)) outputs = (outputs + 1) / 2;
    else filters = (filters + 1) / 2;
  }
}

template <typename scalar_t, typename acc_t>
__global__ void forward_tile_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ f,
                                    const acc_t* __restrict__ cond,
                                    const scalar_t* __restrict__ bias, scalar_t* __restrict__ y,
                                    Conv1dGeometry g, ForwardTiles tiles) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  acc_t* q = reinterpret_cast<acc_t*>(shared_raw);  // (rows x cols): P, then its line prefix
  const int64_t rows = tiles.rows, cols = tiles.cols, d = g.dilation;
  const int64_t total_tiles = g.batch * tiles.n_tiles * tiles.t_tiles;
  for (int64_t tile = blockIdx.x; tile < total_tiles; tile += gridDim.x) {  // uniform per block
    const int64_t t0 = (tile % tiles.t_tiles) * tiles.outputs;
    const int64_t n0 = ((tile / tiles.t_tiles) % tiles.n_tiles) * tiles.filters;
    const int64_t b = tile / (tiles.t_tiles * tiles.n_tiles);
    const int64_t row0 = g.first_row(t0), col0 = g.first_col(n0);
    const acc_t* f_b = f + b * g.condensed_channels * g.padded_len;
    // inner_product (§2.2); rows past the input's end (last tile) hold zeros
    int nonfinite = 0;  // this thread wrote NaN or Inf
    for (int64_t k = threadIdx.x; k < rows * cols; k += blockDim.x) {
      const int64_t u = row0 + k / cols, v = col0 + k % cols;
      acc_t sum = 0;
      if (u < g.padded_len && v < g.condensed_len) {
        for (int64_t j = 0; j < g.condensed_channels; ++j) {
          sum += f_b[j * g.padded_len + u] * cond[j * g.condensed_len + v];
        }
      }
      q[k] = sum;
      nonfinite |= !isfinite(sum);
    }
    nonfinite = __syncthreads_or(nonfinite);  // barrier, and: does the tile's P hold NaN or Inf?
    const int64_t t_count = std::min(tiles.outputs, g.out_len - t0);
    const int64_t n_count = std::min(tiles.filters, g.out_channels - n0);
    if (nonfinite) {  // uniform per block
      for (int64_t k = threadIdx.x; k < t_count * n_count; k += blockDim.x) {
        const int64_t n = n0 + k / t_count, t = t0 + k % t_count;
        y[(b * g.out_channels + n) * g.out_len + t] =
            static_cast<scalar_t>(cuda_definition_output(x, cond, bias, g, b, n, t));
      }
      __syncthreads();
      continue;
    }
    // line_prefix_sum (§2.3): one thread per line; lines start in the top d rows or column 0
    const int64_t top_starts = std::min(d, rows) * cols;
    const int64_t lines = top_starts + std::max<int64_t>(rows - d, 0);
    for (int64_t k = threadIdx.x; k < lines; k += blockDim.x) {
      int64_t r = k < top_starts ? k / cols : d + (k - top_starts);
      int64_t c = k < top_starts ? k % cols : 0;
      acc_t run = 0;
      for (; r < rows && c < cols; r += d, ++c) {
        run += q[r * cols + c];
        q[r * cols + c] = run;
      }
    }
    __syncthreads();
    // gather (§2.4)
    for (int64_t k = threadIdx.x; k < t_count * n_count; k += blockDim.x) {
      const int64_t n = n0 + k / t_count, t = t0 + k % t_count;
      acc_t out = segment_sum(q, cols, g, n, t, row0, col0);
      if (bias != nullptr) out += static_cast<acc_t>(bias[n]);
      y[(b * g.out_channels + n) * g.out_len + t] = static_cast<scalar_t>(out);
    }
    __syncthreads();  // q is rewritten by the next tile
  }
}

// The fallback when not even one output's P fits in shared memory: every output by the
// definition, O(L * M) each.
template <typename scalar_t, typename acc_t>
__global__ void forward_direct_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ cond,
                                      const scalar_t* __restrict__ bias, scalar_t* __restrict__ y,
                                      Conv1dGeometry g) {
  const int64_t total = g.batch * g.out_channels * g.out_len;
  WS_GRID_STRIDE_LOOP(idx, total) {
    const int64_t t = idx % g.out_len;
    const int64_t n = (idx / g.out_len) % g.out_channels;
    const int64_t b = idx / (g.out_len * g.out_channels);
    y[idx] = static_cast<scalar_t>(cuda_definition_output(x, cond, bias, g, b, n, t));
  }
}
}  // namespace wsnet
