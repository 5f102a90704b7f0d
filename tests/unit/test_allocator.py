"""kesu keeps freed memory for reuse a few seconds longer than Polars' default allocator setting.

The setting only works if it is in the environment before Polars is first imported, so each case
runs a fresh interpreter that imports kesu's staging (which imports Polars) and reports what
Polars handed to its allocator.
"""

from __future__ import annotations

import os
import subprocess
import sys

from kesu import ALLOCATOR

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
