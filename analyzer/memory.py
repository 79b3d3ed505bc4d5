"""Keep the analyzer's resident memory flat over a long run (glibc's allocator; no-op elsewhere).

Worker threads allocating and freeing tens of MB per epoch make glibc keep one heap ("arena")
per thread and hold freed pages, so resident memory crept up with the number of epochs
(a VGG-16-width store, 2 threads: peak 538 MB at 3 epochs, 753 MB at 6, 821 MB at 24; after
each block of epochs 528 -> 719 MB), although nothing is kept. Two standard glibc tunables
stop the creep (peak 567 MB at 6 epochs, 632-639 MB after every block of 8 at 24): at most
:data:`ARENAS` heaps, and ``malloc_trim`` after each epoch task to give freed pages back.
Speed is unchanged (a trim costs ~1 ms against ~0.3 s of epoch work).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

ARENAS = 2  # glibc's M_ARENA_MAX; allocation is a small part of an epoch task
_M_ARENA_MAX = -8  # from glibc's malloc.h


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@functools.cache
def limit_arenas() -> bool:
    """Cap glibc's heaps once per process (True if the allocator is glibc's)."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, ARENAS))


def release_free_memory() -> None:
    """Return the allocator's free pages to the OS (glibc ``malloc_trim``; else nothing)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
