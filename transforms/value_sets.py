"""Value sets over whole columns, as Polars has them but cheaper for kesu's columns: which values
repeat (the 64-bit hashes of record keys), which are one of a few (an enum's values), and
which rows are among given positions (`at_rows`: a drop's held rows, its repeated keys).

Keys repeat rarely, so their repeats are found among hashes first and then checked exactly
among the few rows whose hashes repeat (`kesu.transforms.staging.duplicate_keys`, and the
uniqueness expectations in `kesu.expectations.translate`). An enum's values are checked in
staging (`_unknown_value`) and by its in-set expectation.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from kesu.transforms.parsing import constant

SMALL = 20_000  # a small feed's file: ~3,000 complaints, ~330 transfers


def repeated(hashes: pl.Series) -> pl.Series:
    """Whether each value occurs more than once, as `Series.is_duplicated` (no nulls expected).

    By sorting and comparing neighbours, then looking up the few repeated values: half the time
    of `is_duplicated`'s hash table on a bank day's 310k call ids (11 against 21 ms). Below
    `SMALL` values, where a query's fixed cost decides, it is `is_duplicated`'s one query."""
    if hashes.len() < SMALL:
        return hashes.is_duplicated()
    ordered = hashes.sort()
    twice = ordered.filter(ordered == ordered.shift(1))
    if twice.is_empty():  # most files
        return constant(False, hashes.len(), pl.Boolean, hashes.name)
    return hashes.is_in(twice.unique().implode())


FEW = 8  # values that `one_of` compares one by one


def one_of(column: pl.Expr, values: Sequence[object]) -> pl.Expr:
    """`column.is_in(values)`: null for null, else whether the value is one of `values`.

    Up to `FEW` values it is a comparison with each: an enum's short strings compare faster
    than they hash (the in-set checks of a bank day's calls: -15 to -28 ms of ~350)."""
    if len(values) > FEW or any(v is None for v in values):  # null: `is_in`'s own rules
        return column.is_in(list(values))
    if not values:
        return pl.when(column.is_not_null()).then(False)
    return pl.any_horizontal([column == v for v in values])


def at_rows(n: int, rows: pl.Series) -> pl.Series:
    """`n` booleans, True at the positions `rows` (row numbers below `n`, repeats allowed).

    Set directly, ~0.02 ms, where `int_range(n).is_in(rows)` hashes `n` row numbers: ~1 ms for a
    bank day's calls, twice a drop (the quarantine's split, the suite's rows)."""
    return constant(False, n, pl.Boolean).scatter(rows, True)
