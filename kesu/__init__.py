"""kesu (客诉): the bank consumer-complaint pipeline.

One import package. Its subpackages live in folders at the repository root (`flows/`,
`transforms/`, `expectations/`, `warehouse/`, `reports/`, `samplegen/`, `reference/`) and are
mapped into this namespace by `pyproject.toml`, so a user's own folder named `reports` or
`flows` in the working directory can never shadow kesu's code.
"""

import os

# Polars' allocator (jemalloc) hands freed pages back to the system after 0.5-1 s, Polars' own
# default. A bank drop frees and allocates again hundreds of MB between its steps, so each step
# faulted its pages in afresh: ~130k page faults and ~20% of a drop's CPU. Kept a few seconds
# longer, they are reused; a backfill of 8 bank days took 10% less time, at ~270 MB more peak
# memory (bench/README.md). Polars reads this when it is first imported and lets it override its
# default; set your own `_RJEM_MALLOC_CONF` to choose otherwise.
ALLOCATOR = "dirty_decay_ms:2000,muzzy_decay_ms:10000"
os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR)
