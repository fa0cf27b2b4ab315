"""Peak extra host memory of a call, read from Linux's resident-set high-water mark."""

from __future__ import annotations

import ctypes
from typing import Callable


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_extra_bytes(fn: Callable[[], object]) -> int | None:
    """Bytes by which the resident set's peak during fn() exceeds the resident set before it
    (what fn allocated and touched, its result included), or None where Linux can't tell."""
    try:  # hand freed heap back to the OS first, or fn() could reuse it unseen
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset the high-water mark VmHWM to the current VmRSS
    except OSError:
        return None
    before = _status_kib("VmRSS")
    result = fn()
    peak = _status_kib("VmHWM")
    del result
    if before is None or peak is None:
        return None
    return max(0, peak - before) * 1024
