"""Realistic landing files for demos, tests and benchmarks (kesu sample).

`generate.generate` is the entry point. The simulated bank (`world.World`) creates, per day and
from its own random stream, new calls (`calls`, `hotline`), tickets (`tickets`, `lifecycle`,
`complaints`) and regulator transfers (`transfers`); a drop collects the versions dated on it.
`people`, `texts`, `taxonomy` and `orgs` supply names, IDs, phones, free text, JR/T 0169
spellings and branches; `defects` and `writer` turn a drop into files. `branches` builds the
default branch reference (`python -m samplegen.branches`).
"""
