"""Realistic landing files for demos, tests and benchmarks (kesu sample)."""
