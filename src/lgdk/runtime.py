"""Process-level settings that make PyTorch faster on a CPU; applied by the `lgdk` command
(library users call them themselves; nothing happens at import time)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def keep_large_allocations(threshold: int = 1 << 30) -> bool:
    """Ask glibc's malloc to serve allocations up to `threshold` bytes from its heap and to
    keep freed memory, instead of mapping fresh pages from the kernel for every large
    tensor and unmapping them when it is freed.

    By default every tensor over 32 MB (a 480p feature map) is a new mapping whose pages
    fault in on first touch: in the default model's backbone, padding one 40 MB map took
    12 ms of which 10 were page faults, and the whole 480p step went from 225 to 197 ms
    (experiments/performance-log.md). Returns False where the C library is not glibc (nothing done).
    """
    mallopt = _mallopt()
    return bool(mallopt and mallopt(M_MMAP_THRESHOLD, threshold)
                and mallopt(M_TRIM_THRESHOLD, threshold))


def limit_malloc_arenas(count: int = 2) -> bool:
    """Let glibc's malloc keep at most `count` arenas, shared by all threads. A server
    that runs each job on a thread of its own otherwise gets an arena per thread, each
    keeping the freed memory of the frames it served: `lgdk app` with six clients grew by
    727-834 MB with the default arenas and by 445 MB with two, at the same speed
    (docs/app.md). Returns False where the C library is not glibc."""
    mallopt = _mallopt()
    return bool(mallopt and mallopt(M_ARENA_MAX, count))


def cache_bytes(level: int = 3, cpu: int = 0) -> int | None:
    """Size of the CPU's cache of this level (the last level: 3) as Linux reports it in
    /sys, or None where it does not."""
    root = Path(f"/sys/devices/system/cpu/cpu{cpu}/cache")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        for index in sorted(root.glob("index*")):
            if (index / "level").read_text().strip() == str(level):
                size = (index / "size").read_text().strip()
                return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
    except (OSError, ValueError):
        return None
    return None


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The words of Linux's /proc/cpuinfo (instruction-set flags such as avx2 or
    avx512_vnni, and the vendor, e.g. AuthenticAMD); empty where there is none."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def _mallopt():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt
