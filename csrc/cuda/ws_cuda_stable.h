// The CUDA side of ws_stable.h: errors, the device guard and the current stream, from the stable
// C shim only (no c10/cuda headers), so the CUDA library loads on every CUDA torch >= 2.10 of the
// CUDA major it was built for.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "common/ws_stable.h"

namespace wsnet {

// A CUDA runtime error as a RuntimeError that names the call and the error.
#define WS_CUDA_CHECK(call)                                                              \
  do {                                                                                   \
    const cudaError_t ws_cuda_error = (call);                                            \
    WS_CHECK(ws_cuda_error == cudaSuccess, "wsnet_ext CUDA error in ", #call, ": ",      \
             cudaGetErrorString(ws_cuda_error), " (", __FILE__, ":", __LINE__, ")");     \
  } while (false)

// After every kernel launch: a bad configuration is reported here, not at the next sync.
#define WS_CUDA_LAUNCH_CHECK() WS_CUDA_CHECK(cudaGetLastError())

// PyTorch's current stream on `device_index` (what torch.cuda.current_stream() returns).
inline cudaStream_t current_cuda_stream(int32_t device_index) {
  void* stream = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device_index, &stream));
  return static_cast<cudaStream_t>(stream);
}

using DeviceGuard = torch::stable::accelerator::DeviceGuard;

}  // namespace wsnet
