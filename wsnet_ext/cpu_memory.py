"""Keeping freed CPU memory in the process, for inference and training loops on the CPU.

A large output (SoundNet's `long` layer at batch 4: 33 MB) is a fresh block from glibc's malloc,
which serves blocks over its mmap threshold with new pages and returns freed ones to the system.
Every call then first-touches its output page by page: ~4,000 minor faults, +3.5 ms on a 5.5 ms
forward at 2 threads, after any other op freed memory (docs/benchmarks.md, "The slow first calls").
Raising glibc's mmap and trim thresholds keeps freed blocks in the heap, where the next call reuses
them without faults. Whether a given tensor lands in a freed block also depends on what else was
allocated in between (torch asks for aligned blocks): `long`'s outputs stopped faulting after the
first call (torch 2.14), a loop of 64 MB tensors on torch 2.13 kept faulting when the setting came
after import; set MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ before Python starts for the
same effect from the first allocation on. The price: the process keeps its peak memory instead of
giving it back. A caching malloc (jemalloc or tcmalloc through LD_PRELOAD) does the same for the
whole process."""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_LARGEST = 2**31 - 1    # mallopt takes an int


def keep_freed_cpu_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Asks glibc's malloc to serve blocks up to `threshold_bytes` from its heap and to keep up to
    that much freed memory there instead of returning it to the system, process-wide, from now on.
    Returns whether it took effect (False where the C library is not glibc)."""
    if isinstance(threshold_bytes, bool) or not isinstance(threshold_bytes, int) or not 0 < threshold_bytes <= _LARGEST:
        raise ValueError(f"threshold_bytes expects an int in [1, {_LARGEST}], got {threshold_bytes!r}")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        gnu_get_libc_version = libc.gnu_get_libc_version  # glibc only: other C libraries lack it
    except (OSError, AttributeError):
        return False
    del gnu_get_libc_version
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold_bytes))
