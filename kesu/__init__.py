"""kesu (客诉): the bank consumer-complaint pipeline.

One import package. Its subpackages live in folders at the repository root (`flows/`,
`transforms/`, `expectations/`, `warehouse/`, `reports/`, `samplegen/`, `reference/`) and are
mapped into this namespace by `pyproject.toml`, so a user's own folder named `reports` or
`flows` in the working directory can never shadow kesu's code.
"""

import functools
import os


@functools.cache
def version() -> str:
    """kesu's version as installed (pyproject.toml's), read when first asked (~30 ms: not at
    import). Recorded in each run's ledger record and report manifest, and part of the staging
    fingerprint, so a new release re-stages history."""
    from importlib import metadata

    try:
        return metadata.version("kesu")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


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
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)


def _limit_malloc_arenas() -> None:
    """Cap glibc's arenas at `MALLOC_ARENAS`, unless the user set them or the C library is not
    glibc (asked of the C library itself: `platform.libc_ver` would read the Python binary)."""
    if "MALLOC_ARENA_MAX" in os.environ or "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    try:
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # no confstr (Windows) or no such name (musl)
        return
    if glibc:
        import ctypes

        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


_limit_malloc_arenas()
