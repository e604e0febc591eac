"""Large blocks are mapped on their own, so a large export's memory is unmapped when freed."""

from __future__ import annotations

import ctypes
import sys

import pytest

from claude_top.core import heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_large_blocks_are_mapped_outside_the_heaps():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert heap.map_large_blocks() is True
