"""One Great Expectations suite per staged table, built from the staging mapping.

Enum values, required flags and required-when conditions come from `kesu.transforms.columns`; only
the cross-column orders and ranges, which the mapping does not describe, are declared here.
Every expectation carries `meta = {"rule", "fields", "columns"}`: a stable rule id, the source
headers a data steward knows, and the staged columns it checks.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

from kesu.transforms.columns import COLUMNS, RECORD_KEY, STAGED_TABLE, Column, pii_column

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.expectations.expectation import Expectation

TABLES: tuple[str, ...] = tuple(STAGED_TABLE.values())
FEED_OF_TABLE: dict[str, str] = {table: feed for feed, table in STAGED_TABLE.items()}

# (later, earlier): the later value must not precede the earlier one when both are present.
ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "stg_hotline": (("hung_up_at", "call_start_at"), ("answered_at", "queued_at")),
    "stg_complaints": (("closed_at", "received_at"),),
    "stg_regulator_transfers": (("due_on", "transferred_on"), ("replied_on", "transferred_on")),
}

# (column, min, max), bounds inclusive, None for open; nulls are allowed.
RANGES: dict[str, tuple[tuple[str, int | None, int | None], ...]] = {
    "stg_complaints": (("excluded_days", 0, 365), ("amount", 0, None)),
}

_CODE_KINDS = frozenset({"channel_label", "category_label", "cause_label", "branch"})
_TOKEN_KINDS = frozenset({"person_name", "phone", "id_number"})
# Staging names hotline's caller columns caller_token / caller_masked, not caller_number_*.


def import_gx() -> ModuleType:
    """great_expectations, imported on first use with analytics off (it costs ~3 s)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations

    return great_expectations


def staged_column(source: Column) -> str:
    """The staged column that holds the checked value of one source column."""
    if source.kind in _CODE_KINDS:
        return source.name if source.name.endswith("_code") else f"{source.name}_code"
    if source.kind in _TOKEN_KINDS:
        return pii_column(source, "token")
    if source.kind == "free_text":
        return f"{source.name}_masked"
    return source.name


def headers(table: str) -> dict[str, str]:
    """Staged column -> source header, for the checked columns of one staged table."""
    return {staged_column(c): c.header for c in COLUMNS[FEED_OF_TABLE[table]]}


def suite_for(table: str) -> gx.ExpectationSuite:
    """The expectation suite of one staged table (a fresh object on every call)."""
    if table not in FEED_OF_TABLE:
        raise ValueError(f"unknown staged table {table!r}; expected one of {TABLES}")
    gx = import_gx()
    from great_expectations.expectations.row_conditions import Column as Where

    expect = gx.expectations
    source = COLUMNS[FEED_OF_TABLE[table]]
    header = headers(table)

    def meta(rule: str, *columns: str) -> dict[str, Any]:
        return {"rule": rule, "fields": [header[c] for c in columns], "columns": list(columns)}

    # Handed to the constructor: suite.add_expectation() needs an active data context in GX 1.24
    # (it asks the context's store whether the suite was saved), declaring a suite should not.
    declared: list[Expectation] = []
    add = declared.append
    for c in source:
        checked = staged_column(c)
        if c.required:
            add(
                expect.ExpectColumnValuesToNotBeNull(column=checked, meta=meta("required", checked))
            )
        if c.kind == "enum":
            # GX drops nulls before testing membership: a missing optional value passes.
            add(
                expect.ExpectColumnValuesToBeInSet(
                    column=checked, value_set=list(c.values), meta=meta("in_set", checked)
                )
            )
        if c.required_when is not None:
            on, values = c.required_when
            # Condition objects, not pandas query strings: GX 1.9+ deprecates the strings, and
            # the translator reads the object tree instead of parsing text.
            condition = Where(on) == values[0] if len(values) == 1 else Where(on).is_in(values)
            add(
                expect.ExpectColumnValuesToNotBeNull(
                    column=checked, row_condition=condition, meta=meta("required_when", checked)
                )
            )
    for later, earlier in ORDER.get(table, ()):
        add(
            expect.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=later,
                column_B=earlier,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta=meta("order", later, earlier),
            )
        )
    for name, low, high in RANGES.get(table, ()):
        add(
            expect.ExpectColumnValuesToBeBetween(
                column=name, min_value=low, max_value=high, meta=meta("range", name)
            )
        )
    key = RECORD_KEY[FEED_OF_TABLE[table]]
    if len(key) == 1:
        add(expect.ExpectColumnValuesToBeUnique(column=key[0], meta=meta("unique_key", *key)))
    else:
        add(
            expect.ExpectCompoundColumnsToBeUnique(
                column_list=list(key), meta=meta("unique_key", *key)
            )
        )
    return gx.ExpectationSuite(name=table, expectations=declared)
