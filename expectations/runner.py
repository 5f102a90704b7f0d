"""Evaluate a staged table's suite: one row per (frame row, failed expectation), with a reason.

Engine "polars" evaluates the translations in `kesu.expectations.translate` of the compiled suite
(`kesu.expectations.compiled`: GX's own serialisation, so no GX import); engine "gx" runs the same
suite through Great Expectations on a pandas copy of the frame. Both give the same rows:
the tests prove it, so the pipeline runs Polars and keeps GX as the reference.

Over 250 lines: both engines and the reason sentence each failed row gets are one evaluation
of one suite; the sentences (`_describe`) must read the same whichever engine found the row.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
import polars.selectors as cs
from kesu.expectations import compiled
from kesu.expectations.suites import headers, import_gx, suite_for
from kesu.expectations.translate import failing_rows_expr

if TYPE_CHECKING:
    import great_expectations as gx

Engine = Literal["polars", "gx"]

FAILURES_SCHEMA = pl.Schema(
    {"row": pl.UInt32, "rule": pl.String, "field": pl.String, "reason": pl.String}
)

# Personal data is only ever stored tokenised or masked; a reason never quotes either.
_PII_SUFFIXES = ("_token", "_masked")

_GX_RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 0,
}


def row_failures(
    frame: pl.DataFrame, table: str, engine: Engine = "polars", among: pl.Series | None = None
) -> pl.DataFrame:
    """One row per (row of `frame`, failed expectation of the table's suite), ordered by row.

    `row` is the 0-based position in `frame`; `field` joins the source headers with "、".
    `among`: a Boolean mask of the rows to validate (None: all), the others counting as absent.
    The Polars engine masks them, with no filtered copy of every row; GX is given the copy.
    """
    declared: Sequence[Any]
    if engine == "polars":  # the compiled suite: same fields, no GX import (see compiled.py)
        declared = compiled.expectations(table)
        unexpected = _polars_unexpected(frame, declared, among)
    else:
        suite = suite_for(table)
        declared = suite.expectations
        if among is None:
            unexpected = unexpected_rows(frame, suite, engine)
        else:
            kept = among.arg_true().cast(pl.UInt32)
            found = unexpected_rows(frame.filter(among), suite, engine)
            unexpected = [kept.gather(rows) for rows in found]
    indexed = frame.with_row_index("row")
    header = headers(table)
    parts = [
        _describe(indexed, expectation, rows, header)
        for expectation, rows in zip(declared, unexpected, strict=True)
        if rows.len()
    ]
    if not parts:
        return pl.DataFrame(schema=FAILURES_SCHEMA)
    # Stable sort: within one row, failures keep the suite's order.
    return pl.concat(parts).sort("row", maintain_order=True)


def unexpected_rows(
    frame: pl.DataFrame, suite: gx.ExpectationSuite, engine: Engine = "polars"
) -> list[pl.Series]:
    """Per expectation of `suite`, in suite order: the positions of the rows it flags (UInt32)."""
    if engine == "polars":
        return _polars_unexpected(frame, suite.expectations)
    if engine == "gx":
        return _gx_unexpected(frame, suite)
    raise ValueError(f"unknown engine {engine!r}; expected 'polars' or 'gx'")


def summary(failures: pl.DataFrame) -> dict[str, Any]:
    """Counts a run log can show: failures, distinct failing rows, failures per rule and field."""

    def counts(by: str) -> dict[str, int]:
        grouped = failures.group_by(by).len().sort(["len", by], descending=[True, False])
        return dict(zip(grouped[by].to_list(), grouped["len"].to_list(), strict=True))

    return {
        "failures": failures.height,
        "failing_rows": failures["row"].n_unique(),
        "by_rule": counts("rule"),
        "by_field": counts("field"),
    }


def _polars_unexpected(
    frame: pl.DataFrame, expectations: Sequence[Any], among: pl.Series | None = None
) -> list[pl.Series]:
    rows = None if among is None else pl.lit(among)
    masks = frame.select(
        failing_rows_expr(e, rows).alias(str(i)) for i, e in enumerate(expectations)
    )
    # `arg_true` is a query (~0.1 ms whatever the size) and most expectations flag no row
    none = pl.Series(dtype=pl.UInt32)
    return [
        mask.arg_true().cast(pl.UInt32) if mask.any() else none for mask in masks.iter_columns()
    ]


def _gx_unexpected(frame: pl.DataFrame, suite: gx.ExpectationSuite) -> list[pl.Series]:
    batch = _gx_batch_definition().get_batch(batch_parameters={"dataframe": _to_pandas(frame)})
    with warnings.catch_warnings():
        # GX reads tz-aware columns through Series.values, which pandas 3.1 deprecates.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        validation = batch.validate(suite, result_format=_GX_RESULT_FORMAT)
    # GX returns results grouped by metric domain, not in suite order: match them back.
    by_configuration = {_configuration_key(r.expectation_config): r for r in validation.results}
    unexpected = []
    for expectation in suite.expectations:
        result = by_configuration[_configuration_key(expectation.configuration)]
        if result.exception_info and result.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"GX raised on {expectation.expectation_type} {expectation.meta}: "
                f"{result.exception_info.get('exception_message')}"
            )
        # With the default RangeIndex, unexpected_index_list holds row positions.
        unexpected.append(pl.Series(result.result["unexpected_index_list"], dtype=pl.UInt32))
    return unexpected


def _configuration_key(configuration: Any) -> str:
    # Results carry the configuration plus the batch_id it ran on; the rest is the suite's.
    kwargs = {k: v for k, v in configuration.kwargs.items() if k != "batch_id"}
    return json.dumps([configuration.type, kwargs, configuration.meta], sort_keys=True, default=str)


@functools.cache
def _gx_batch_definition() -> Any:
    """A whole-dataframe batch definition in an ephemeral context, built once per process."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("kesu_staged")
    return source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")


def _to_pandas(frame: pl.DataFrame) -> Any:
    # Decimal columns arrive as object columns of Decimal, which GX's between checks one Python
    # value at a time; float64 takes its vectorised path and keeps the sign and order the range
    # rules test. Time zones survive as datetime64[us, Asia/Shanghai].
    return frame.with_columns(cs.decimal().cast(pl.Float64)).to_pandas()


def _describe(
    indexed: pl.DataFrame, expectation: Any, rows: pl.Series, header: dict[str, str]
) -> pl.DataFrame:
    meta = expectation.meta
    failing = indexed.select(pl.all().gather(rows))
    reason = _reason(expectation, failing.schema, header)
    return failing.select(
        pl.col("row").cast(pl.UInt32),
        pl.lit(meta["rule"], pl.String).alias("rule"),
        pl.lit("、".join(meta["fields"]), pl.String).alias("field"),
        reason.cast(pl.String).alias("reason"),
    )


def _reason(e: Any, schema: pl.Schema, header: dict[str, str]) -> pl.Expr:
    def label(column: str) -> str:
        return f"{header.get(column, column)} ({column})"

    def shown(column: str) -> pl.Expr:
        value = pl.col(column)
        dtype = schema[column]
        if column.endswith(_PII_SUFFIXES):
            text = pl.lit("(personal data)")
        elif dtype == pl.String:
            text = pl.format('"{}"', value)
        elif isinstance(dtype, pl.Datetime):
            text = value.dt.to_string("%Y-%m-%d %H:%M:%S")
        elif dtype == pl.Date:
            text = value.dt.to_string("%Y-%m-%d")
        else:
            text = value.cast(pl.String)
        return pl.when(value.is_null()).then(pl.lit("missing")).otherwise(text)

    kind = e.expectation_type
    if kind == "expect_column_values_to_not_be_null":
        when = getattr(e, "row_condition", None)
        suffix = f", required when {_condition_text(when, label)}" if when is not None else ""
        return pl.lit(f"{label(e.column)} is missing{suffix}")
    if kind == "expect_column_values_to_be_in_set":
        allowed = "/".join(map(str, e.value_set))
        return pl.format(f"{label(e.column)}: {{}} is not one of {allowed}", shown(e.column))
    if kind == "expect_column_values_to_be_between":
        return pl.format(f"{label(e.column)} {{}} {_outside_text(e)}", shown(e.column))
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        temporal = schema[e.column_A].is_temporal()
        if e.or_equal:
            relation = "is before" if temporal else "is less than"
        else:
            relation = "is not after" if temporal else "is not greater than"
        return pl.format(
            f"{label(e.column_A)} {{}} {relation} {label(e.column_B)} {{}}",
            shown(e.column_A),
            shown(e.column_B),
        )
    if kind == "expect_column_values_to_be_unique":
        return pl.format(f"{label(e.column)} {{}} appears more than once", shown(e.column))
    if kind == "expect_compound_columns_to_be_unique":
        first, *rest = e.column_list
        same = " and ".join(f"{label(c)} {{}}" for c in rest)
        return pl.format(
            f"{label(first)} {{}} appears more than once with the same {same}",
            *(shown(c) for c in e.column_list),
        )
    raise NotImplementedError(f"no reason text for {kind}")


def _outside_text(e: Any) -> str:
    # GX stores the bounds as floats: 0 comes back as 0.0.
    low, high = (
        int(b) if isinstance(b, float) and b.is_integer() else b for b in (e.min_value, e.max_value)
    )
    if low is not None and high is not None:
        exclusive = " (exclusive)" if e.strict_min or e.strict_max else ""
        return f"is not between {low} and {high}{exclusive}"
    if low is not None:
        return f"is not above {low}" if e.strict_min else f"is below {low}"
    return f"is not below {high}" if e.strict_max else f"is above {high}"


def _condition_text(condition: Any, label: Any) -> str:
    kind = getattr(condition, "type", None)
    if kind in ("and", "or"):
        return f" {kind} ".join(_condition_text(c, label) for c in condition.conditions)
    if kind == "nullity":
        return f"{label(condition.column.name)} is {'missing' if condition.is_null else 'present'}"
    if kind == "comparison":
        name, parameter = condition.column.name, condition.parameter
        operator = str(condition.operator)
        if operator == "IN":
            return f"{label(name)} is one of {'/'.join(map(str, parameter))}"
        if operator == "NOT_IN":
            return f"{label(name)} is not one of {'/'.join(map(str, parameter))}"
        if operator == "==":
            return f"{label(name)} is {parameter}"
        return f"{label(name)} {operator} {parameter}"
    return repr(condition)
