"""kesu tunes the two allocators of its process: Polars' (jemalloc) and the C library's (glibc).

Both settings only work if made before the process allocates in earnest (jemalloc's before Polars
is first imported), so each case runs a fresh interpreter: one imports kesu's staging (which
imports Polars) and reports what Polars handed to jemalloc; the other counts glibc's arenas.
"""

from __future__ import annotations

import os
import subprocess
import sys

from kesu import ALLOCATOR, MALLOC_ARENAS

SHOW = "import kesu.transforms.staging, os; print(os.environ['_RJEM_MALLOC_CONF'])"


def _allocator_conf(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_kesus_setting_reaches_polars_and_overrides_its_default() -> None:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    conf = _allocator_conf(env)
    # Polars puts its default first and an override after it: jemalloc takes the last value
    assert conf.endswith("," + ALLOCATOR), conf
    assert conf != ALLOCATOR  # Polars did read it (it prepends its own default)


def test_a_users_own_setting_wins() -> None:
    env = dict(os.environ, _RJEM_MALLOC_CONF="dirty_decay_ms:0")
    conf = _allocator_conf(env)
    assert conf.endswith(",dirty_decay_ms:0"), conf
    assert ALLOCATOR not in conf


# Eight threads hold memory from the C library's allocator at once; how many arenas (malloc_info's
# heaps) serve them. Each new thread would get an arena of its own, up to 8 per core.
ARENAS = """
import ctypes, os, tempfile, threading
if os.environ.get("IMPORT_KESU"):
    import kesu
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
together = threading.Barrier(9)
def hold():
    held = [bytearray(1 << 16) for _ in range(4)]
    together.wait()
    together.wait()
threads = [threading.Thread(target=hold) for _ in range(8)]
for t in threads:
    t.start()
together.wait()
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "info.xml").encode()
    f = libc.fopen(path, b"w")
    libc.malloc_info(0, f)
    libc.fclose(f)
    print(open(path).read().count("<heap nr="))
together.wait()
for t in threads:
    t.join()
"""


def _arenas(env: dict[str, str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", ARENAS], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def _without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def test_kesu_caps_the_c_allocators_arenas() -> None:
    env = _without("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")
    assert _arenas(env) > MALLOC_ARENAS  # without kesu: an arena per thread
    assert _arenas(env | {"IMPORT_KESU": "1"}) == MALLOC_ARENAS


def test_a_users_own_arena_setting_wins() -> None:
    env = _without("GLIBC_TUNABLES") | {"MALLOC_ARENA_MAX": "6", "IMPORT_KESU": "1"}
    assert _arenas(env) == 6
