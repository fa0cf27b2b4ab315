// Large outputs of the CPU kernels may be backed by transparent huge pages where the system allows
// it (THP mode "madvise"): a fresh 33 MB output otherwise takes ~8,000 page faults on first touch.
// Opt-in (the cpu_huge_pages switch, WSNET_CPU_HUGE_PAGES=1), as PyTorch's THP_MEM_ALLOC_ENABLE is:
// on 2026-11-25 it took `long`'s forward median from 11.5 to 5.9 ms, but measured with the tail on
// 2026-11-29 (benchmarks/bench_huge_pages.py, results huge_pages_2026-11-29*.json) the medians were
// equal on and off while p99 / max were worse with it on (conv1 forward p99 45 vs 5.4 ms, `long`
// forward+backward p99 76 vs 50 ms): with THP defrag "madvise" a fault may compact memory.
#pragma once

#include "common/ws_stable.h"
#include "common/ws_switches.h"

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
