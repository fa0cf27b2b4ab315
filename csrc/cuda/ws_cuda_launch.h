// What every launch of _C_cuda shares: the block size of the grid-stride kernels, their grid, the
// grid-stride loop, and the card's multiprocessor count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cuda/ws_cuda_stable.h"

namespace wsnet {

constexpr int kThreads = 256;

inline int64_t multiprocessors() {
  int device = 0, count = 0;
  WS_CUDA_CHECK(cudaGetDevice(&device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

// Blocks of kThreads for `work` grid-stride items, capped (the loop covers the rest).
inline int64_t grid_for(int64_t work) {
  return std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, int64_t(1) << 20));
}

#define WS_GRID_STRIDE_LOOP(i, n)                                               \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(blockDim.x) * gridDim.x)

}  // namespace wsnet
