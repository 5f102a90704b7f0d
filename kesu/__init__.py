"""kesu (客诉): the bank consumer-complaint pipeline.

One import package. Its subpackages live in folders at the repository root (`flows/`,
`transforms/`, `expectations/`, `warehouse/`, `reports/`, `samplegen/`, `reference/`) and are
mapped into this namespace by `pyproject.toml`, so a user's own folder named `reports` or
`flows` in the working directory can never shadow kesu's code.
"""
