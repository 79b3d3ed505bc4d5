"""analyzer/memory.py: glibc's allocator tunables, and a no-op where there is no glibc."""

from __future__ import annotations

import ctypes.util
import sys

import pytest

from analyzer import memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="glibc only",
)
def test_glibc_tunables_are_applied():
    assert memory._libc() is not None
    assert memory.limit_arenas() is True  # mallopt returned 1: accepted
    memory.release_free_memory()


def test_without_glibc_both_are_no_ops(monkeypatch):
    monkeypatch.setattr(memory, "_libc", lambda: None)
    memory.limit_arenas.cache_clear()
    try:
        assert memory.limit_arenas() is False
        memory.release_free_memory()  # nothing to call, no error
    finally:
        memory.limit_arenas.cache_clear()
