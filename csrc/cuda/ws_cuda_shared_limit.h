// Opting a kernel in to more than 48 KiB of dynamic shared memory, safely: once per kernel and
// device, to the card's opt-in maximum, never lowered, under a lock. Setting the attribute before
// every launch to that launch's size (as the strip launches once did) lowers it for graphs
// captured earlier and races between host threads; a raised cap changes nothing else (occupancy
// follows the bytes each launch asks for).
#pragma once

#include <cuda_runtime.h>

#include <mutex>
#include <set>
#include <utility>

#include "cuda/ws_cuda_stable.h"

namespace wsnet {

template <typename Kernel>
void allow_dynamic_shared_memory(Kernel kernel) {
  static std::mutex lock;
  static std::set<std::pair<const void*, int>> raised;  // (kernel, device)
  int device = 0;
  WS_CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> guard(lock);
  if (!raised.count({reinterpret_cast<const void*>(kernel), device})) {
    int optin = 0;
    WS_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    WS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
    raised.insert({reinterpret_cast<const void*>(kernel), device});
  }
}

}  // namespace wsnet
