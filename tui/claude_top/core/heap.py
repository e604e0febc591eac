"""Large blocks mapped on their own, so the memory of a large export goes back to the system
once it is freed (glibc's malloc; elsewhere a no-op).

glibc raises its mmap threshold each time a mapped block is freed, up to 32 MB: after the first
10 MB export, the next ones were served from its heaps, which keep freed memory. With the
threshold fixed at MAP_BYTES, serve held 116-134 MB after a burst of 10-15 MB exports instead of
132-146 MB (bench/large_exports.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

MAP_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3


def map_large_blocks() -> bool:
    """Allocate blocks of MAP_BYTES and more outside the heaps, for the whole process."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, MAP_BYTES))
    return False
