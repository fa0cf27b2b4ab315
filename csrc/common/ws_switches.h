// The package's switches (which CPU build, the polyphase split, huge pages, which CUDA kernels),
// as plain integers each library holds once. Python sets them (wsnet_ext/_switches.py reads the
// WSNET_* environment variables once at import, checks them, documents them, and offers
// wsnet_ext.switches.override(...) for tests); the kernels only read them. Nothing here calls getenv.
#pragma once

#include <atomic>

namespace wsnet {

enum class Switch : int {
  kCpuIsaCap = 0,     // 0: the best the processor has, 1: at most AVX2, 2: baseline
  kCpuPolyphase = 1,  // 1: split strided layers into phases, 0: don't
  kCpuHugePages = 2,  // 1: advise huge pages for large outputs, 0 (default): don't
  kCudaForward = 3,   // 0: pick by shape; 1 lines, 2 stream, 3 tiles, 4 direct, 5 strips: that kernel or an error; 6 strips where it fits
  kCudaAdjoint = 4,   // 0: pick by shape; 1 gather: the pointwise dP kernel; 2 fused: the strip backward; 3 fused where it fits
  kCudaTf32 = 5,      // the strip kernel's P: 0 follow torch (kTorchAllowTf32), 1 float32-faithful, 2 TF32
  kTorchAllowTf32 = 6,  // torch.backends.cudnn.allow_tf32 as ws_conv1d last saw it (eager CUDA calls)
  kCount = 7,
};

inline std::atomic<int>* switch_values() {
  static std::atomic<int> values[static_cast<int>(Switch::kCount)] = {0, 1, 0, 0, 0, 0, 1};
  return values;
}

inline int get_switch(Switch id) {
  return switch_values()[static_cast<int>(id)].load(std::memory_order_relaxed);
}

// false if `id` is out of range (the Python side checks values)
inline bool set_switch(int id, int value) {
  if (id < 0 || id >= static_cast<int>(Switch::kCount)) return false;
  switch_values()[id].store(value, std::memory_order_relaxed);
  return true;
}

}  // namespace wsnet
