"""Splitting staged rows into loaded and quarantined: every row lands in exactly one of them."""

from __future__ import annotations

import polars as pl

from transforms.staging import ISSUE_SCHEMA, SOURCE_FILE, SOURCE_LINE

QUARANTINE_LEAD = [SOURCE_FILE, SOURCE_LINE, "field", "rule", "reason"]


def row_problems(staging_issues: pl.DataFrame, failures: pl.DataFrame) -> pl.DataFrame:
    """One row per rejected row: its fields, rules and reasons, `;`-joined in a stable order.

    A value that could not be parsed is null by the time the expectations see it; the staging
    issue already says why, so a "required value missing" on the same field is not repeated.
    """
    failures = failures.select(list(ISSUE_SCHEMA)).cast(ISSUE_SCHEMA)  # type: ignore[arg-type]
    already = staging_issues.select("row", "field")
    failures = failures.join(already, on=["row", "field"], how="anti")
    problems = pl.concat([staging_issues.cast(ISSUE_SCHEMA), failures])  # type: ignore[arg-type]
    return (
        problems.unique(maintain_order=True)
        .sort("row", maintain_order=True)
        .group_by("row", maintain_order=True)
        .agg(
            pl.col("field").unique(maintain_order=True).str.join(";"),
            pl.col("rule").unique(maintain_order=True).str.join(";"),
            pl.col("reason").str.join("; "),
        )
    )


def split(
    staged: pl.DataFrame, masked_source: pl.DataFrame, problems: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(loaded, quarantined). Loaded keeps the staged columns; quarantined keeps the source text
    (personal data masked) with file, line and the reasons a data steward acts on."""
    bad = problems["row"]
    is_bad = pl.int_range(0, staged.height, dtype=pl.UInt32, eager=True).is_in(bad.implode())
    loaded = staged.filter(~is_bad)
    quarantined = (
        masked_source.with_columns(staged.select(SOURCE_FILE, SOURCE_LINE))
        .with_row_index("row")
        .join(problems, on="row", how="inner", maintain_order="left")
        .select(QUARANTINE_LEAD + masked_source.columns)
    )
    return loaded, quarantined
