"""Splitting staged rows into loaded and quarantined: every row lands in exactly one of them."""

from __future__ import annotations

import re

import polars as pl
from kesu.transforms.columns import COLUMNS
from kesu.transforms.personal_data import mask_personal_data
from kesu.transforms.staging import ISSUE_SCHEMA, SOURCE_FILE, SOURCE_LINE
from kesu.transforms.value_sets import at_rows

# The columns a quarantine table's rows start with, before the source columns they hold as text
QUARANTINE_LEAD_SCHEMA: dict[str, pl.DataType] = {
    SOURCE_FILE: pl.String(),
    SOURCE_LINE: pl.Int64(),
    "field": pl.String(),
    "rule": pl.String(),
    "reason": pl.String(),
}
QUARANTINE_LEAD = list(QUARANTINE_LEAD_SCHEMA)
SHAPE_RULE = "record_shape"
ID_COLUMNS = {c.name for cols in COLUMNS.values() for c in cols if c.kind == "id"}
# a problem's `field` (a header, or several joined by `;` or `、`) -> the column it names; a header
# names the same column in every feed
COLUMN_OF_HEADER = {c.header: c.name for cols in COLUMNS.values() for c in cols}
# What an id of a misshapen record must look like to be kept (`kept_ids`): ASCII letters and
# digits, with `-` `_` `.` `/` after the first, at most 40 characters, as every feed's ids are
# written (TS2025070100001, C2025070100001, KF12345, 0100)
ID_SHAPE = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,39}$"


def row_problems(staging_issues: pl.DataFrame, failures: pl.DataFrame) -> pl.DataFrame:
    """One row per rejected row: its fields, rules and reasons, `;`-joined in a stable order.

    A value that could not be parsed is null by the time the expectations see it; the staging
    issue already says why, so a "required value missing" on the same field is not repeated.
    """
    failures = failures.select(list(ISSUE_SCHEMA)).cast(ISSUE_SCHEMA)  # type: ignore[arg-type]
    already = staging_issues.select("row", "field")
    failures = failures.join(already, on=["row", "field"], how="anti")
    problems = pl.concat([staging_issues.cast(ISSUE_SCHEMA), failures])  # type: ignore[arg-type]
    # A record with the wrong number of fields has its values in the wrong columns: its other
    # problems are consequences, and quoting them could show personal data from a shifted column.
    misshapen = problems.filter(pl.col("rule") == SHAPE_RULE).select("row").unique()
    problems = pl.concat(
        [
            problems.join(misshapen, on="row", how="anti"),
            problems.filter(pl.col("rule") == SHAPE_RULE),
        ]
    ).sort("row", maintain_order=True)
    rows = (
        problems.unique(maintain_order=True)
        .sort("row", maintain_order=True)
        .group_by("row", maintain_order=True)
        .agg(
            pl.col("field").unique(maintain_order=True).str.join(";"),
            pl.col("rule").unique(maintain_order=True).str.join(";"),
            pl.col("reason").str.join("; "),
        )
    )
    # A safety net for reasons: a value quoted from the wrong column can be personal data.
    return rows.with_columns(mask_personal_data(rows["reason"], free_text=True))


def split(
    staged: pl.DataFrame, masked_source: pl.DataFrame, problems: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(loaded, quarantined). Loaded keeps the staged columns; quarantined keeps the source text
    (personal data masked) with file, line and the reasons a data steward acts on."""
    bad = problems["row"]
    loaded = staged.filter(~at_rows(staged.height, bad))
    quarantined = (
        masked_source.with_columns(staged.select(SOURCE_FILE, SOURCE_LINE))
        .with_row_index("row")
        .join(problems, on="row", how="inner", maintain_order="left")
        .select(QUARANTINE_LEAD + masked_source.columns)
    )
    quarantined = masked_as_reasons(quarantined)
    # The values of a misshapen record are withheld but for its ids: file and line lead to the
    # raw zone, and an id to the ticket. Its fields are shifted, so an id column can hold any
    # other column's text: only a value that looks like an id is kept (`kept_ids`).
    shifted = pl.col("rule") == SHAPE_RULE
    withheld = [
        pl.when(shifted)
        .then(pl.col(c).map_batches(kept_ids, return_dtype=pl.String) if c in ID_COLUMNS else None)
        .otherwise(pl.col(c))
        .alias(c)
        for c in masked_source.columns
    ]
    return loaded, quarantined.with_columns(withheld)


def masked_as_reasons(quarantined: pl.DataFrame) -> pl.DataFrame:
    """`quarantined` with the held text of each column a row's problems name (its `field`)
    masked as `row_problems` masks the reasons that may quote it (free text's rule): a held value
    is never clearer than its reason. An unknown label `手机银行 1234567` was `"手机银行
    ****4567"` in the reason and in clear in the held row. Only held rows, and only the columns
    their problems name, go through the detector; a drop's few distinct `field` values say which."""
    named: dict[str, list[str]] = {}
    for fields in quarantined["field"].unique().drop_nulls():
        for header in re.split("[;、]", fields):
            column = COLUMN_OF_HEADER.get(header)
            if column in quarantined.columns and quarantined.schema[column] == pl.String:
                named.setdefault(column, []).append(fields)
    masked = []
    for column, fields_naming_it in named.items():
        text = quarantined[column]
        rows = quarantined["field"].is_in(fields_naming_it).arg_true()
        masked.append(text.scatter(rows, mask_personal_data(text.gather(rows), free_text=True)))
    return quarantined.with_columns(masked) if masked else quarantined


def kept_ids(values: pl.Series) -> pl.Series:
    """`values` (source text of an id column) with only those shaped like an id (`ID_SHAPE`) in
    which the detector, as strict as for free text (but reading digits glued to a letter as an
    id's, as in every id column), finds nothing; the others are withheld (null): a name
    (岳灵珊), a sentence (卫十五要求退款), 7+ digits not glued to a letter."""
    found = mask_personal_data(values, free_text=True, ids=True) != values
    shaped = values.str.contains(ID_SHAPE) & ~found
    return pl.select(pl.when(pl.lit(shaped)).then(pl.lit(values))).to_series().alias(values.name)
