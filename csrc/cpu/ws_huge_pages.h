// Large outputs of the CPU kernels are backed by transparent huge pages where the system allows
// it (THP mode "madvise"): a fresh 33 MB output otherwise takes ~8,000 page faults on first touch,
// measured at ~6 ms here, more than the forward's arithmetic on the `long` benchmark layer.
// Only advice: on other systems, or when the kernel refuses, nothing changes. Measured on `long`:
// forward median 11.5 -> 5.9 ms; with THP defrag "madvise" the kernel may compact memory on such a
// fault, seen as one 30 ms call in 60. WSNET_CPU_HUGE_PAGES=0 turns the advice off. (PyTorch's
// THP_MEM_ALLOC_ENABLE=1 does the same for every large CPU allocation.)
#pragma once

#include "../ws_stable.h"
#include "../ws_switches.h"

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace wsnet {

inline void advise_huge_pages(const Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t bytes = static_cast<uintptr_t>(t.numel()) * t.element_size();
  if (bytes < 2 * kHuge) return;
  if (get_switch(Switch::kCpuHugePages) == 0) return;
  const auto begin = reinterpret_cast<uintptr_t>(t.const_data_ptr());
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);         // whole huge pages inside
  const uintptr_t last = (begin + bytes) & ~(kHuge - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

}  // namespace wsnet
