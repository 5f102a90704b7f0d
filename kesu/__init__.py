"""kesu (客诉): the bank consumer-complaint pipeline.

One import package. Its subpackages live in folders at the repository root (`flows/`,
`transforms/`, `expectations/`, `warehouse/`, `reports/`, `samplegen/`, `reference/`) and are
mapped into this namespace by `pyproject.toml`, so a user's own folder named `reports` or
`flows` in the working directory can never shadow kesu's code.
"""

import os

# Polars' allocator (jemalloc) keeps freed pages 5 s, not Polars' 0.5-1 s, so the steps of a drop
# reuse them instead of faulting them in again; then it hands them straight back (no lazy
# "muzzy" stage, whose pages still count as the process's memory). Read by Polars when first
# imported; a user's own setting wins (docs/operations.md).
ALLOCATOR = "dirty_decay_ms:5000,muzzy_decay_ms:0"
os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR)

# The C library's allocator (glibc malloc: Python's own larger objects, delta-rs) gets at most
# this many arenas, not 8 per core: each new feed thread of each drop took another, and memory
# freed in one was not reused by the next, so a long backfill's memory grew (docs/operations.md).
MALLOC_ARENAS = 2
# ... and keeps a freed block of up to this size for the next one, rather than handing it back
# at once: each drop reads its files whole into Python (a bank day's calls: 57 MB), and glibc
# maps a block over 32 MB afresh every time, so every page of every file's copy was faulted
# in and cleared again (~35% of a bank backfill's page faults, ~2.5% of its time). Up to twice
# this much free memory is kept at the top of a heap. A larger block is still mapped on its own
# and handed back when freed.
MALLOC_REUSE = 64 << 20
# mallopt's parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def _tune_malloc() -> None:
    """Cap glibc's arenas at `MALLOC_ARENAS` and let it reuse blocks up to `MALLOC_REUSE`, each
    unless the user set it or the C library is not glibc (asked of the C library itself:
    `platform.libc_ver` would read the Python binary)."""
    try:
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # no confstr (Windows) or no such name (musl)
        return
    if not glibc:
        return
    import ctypes

    libc = ctypes.CDLL(None)
    if not _set_by_user("MALLOC_ARENA_MAX", "arena_max"):
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    if not _set_by_user("MALLOC_MMAP_THRESHOLD_", "mmap_threshold"):
        libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_REUSE)
    if not _set_by_user("MALLOC_TRIM_THRESHOLD_", "trim_threshold"):
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * MALLOC_REUSE)


def _set_by_user(variable: str, tunable: str) -> bool:
    """Whether the user chose this glibc malloc setting (its variable, or `GLIBC_TUNABLES`)."""
    return variable in os.environ or f"malloc.{tunable}=" in os.environ.get("GLIBC_TUNABLES", "")


_tune_malloc()
