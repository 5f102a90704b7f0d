"""kesu (客诉): the bank consumer-complaint pipeline.

One import package. Its subpackages live in folders at the repository root (`flows/`,
`transforms/`, `expectations/`, `warehouse/`, `reports/`, `samplegen/`, `reference/`) and are
mapped into this namespace by `pyproject.toml`, so a user's own folder named `reports` or
`flows` in the working directory can never shadow kesu's code.
"""

import os

# Polars' allocator (jemalloc) keeps freed pages a few seconds, not Polars' 0.5-1 s, so the steps
# of a drop reuse them instead of faulting them in again: faster ingest for more peak memory.
# Read by Polars when first imported; a user's own setting wins (docs/operations.md).
ALLOCATOR = "dirty_decay_ms:2000,muzzy_decay_ms:10000"
os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR)
