"""wsnet_ext.keep_freed_cpu_memory: after it, a large block freed and allocated again is reused
without page faults (counted with getrusage in a fresh process, since it changes the process)."""

import subprocess
import sys
import textwrap

import pytest

import wsnet_ext

# glibc's own malloc and free of a 64 MB block (torch asks for aligned blocks, so whether a given
# tensor lands in a freed block also depends on what else the process allocated in between)
SCRIPT = textwrap.dedent("""
    import ctypes, resource, sys, wsnet_ext
    if sys.argv[1] == "keep":
        assert wsnet_ext.keep_freed_cpu_memory() is True
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, faults = 64 << 20, []   # over glibc's largest dynamic mmap threshold (32 MB)
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)   # first touch
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        libc.free(block)
    print(faults[-1])
""")


def faults_of_last_allocation(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")
def test_freed_blocks_are_reused_without_page_faults():
    default = faults_of_last_allocation("default")
    kept = faults_of_last_allocation("keep")
    if not huge_pages_always():  # 64 MB of fresh 4 KB pages (transparent huge pages fault 2 MB at a time)
        assert default > 10000, default
    assert kept < 100, kept


def huge_pages_always() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


@pytest.mark.parametrize("bad", [0, -1, 2**31, 1.5, True, "1G"])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(ValueError, match="threshold_bytes expects an int"):
        wsnet_ext.keep_freed_cpu_memory(bad)
