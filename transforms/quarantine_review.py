"""What a drop's quarantine holds, summarised for the data stewards who fix the source systems.

Input frames are quarantine tables (one row per rejected source row: source_file, source_line,
field, rule, reason, then the masked source columns). A row with several problems carries its
fields and rules `;`-joined; it is counted once, under that combination, so the counts of a feed
add up to its quarantined rows (the number the ingest reported).
"""

from __future__ import annotations

import polars as pl

RULE_COUNT_SCHEMA = {
    "rule": pl.String(),
    "field": pl.String(),
    "rows": pl.UInt32(),
    "files": pl.UInt32(),
    "example_file": pl.String(),
    "example_line": pl.Int64(),
    "example_reason": pl.String(),
}
SUMMARY_SCHEMA = {"feed": pl.String(), **RULE_COUNT_SCHEMA}


def rule_counts(quarantined: pl.DataFrame) -> pl.DataFrame:
    """One row per rule and field: rows, files, and the first such row (by file, line) as example.

    Most rows first, then by rule and field.
    """
    if quarantined.height == 0:
        return pl.DataFrame(schema=RULE_COUNT_SCHEMA)
    return (
        quarantined.sort("source_file", "source_line", maintain_order=True)
        .group_by("rule", "field", maintain_order=True)
        .agg(
            pl.len().alias("rows"),
            pl.col("source_file").n_unique().alias("files"),
            pl.col("source_file").first().alias("example_file"),
            pl.col("source_line").first().alias("example_line"),
            pl.col("reason").first().alias("example_reason"),
        )
        .sort(["rows", "rule", "field"], descending=[True, False, False])
        .cast(RULE_COUNT_SCHEMA)  # type: ignore[arg-type]
    )


def summary(by_feed: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per feed, rule and field (`rule_counts` with the feed first), feeds in given order.

    A feed with nothing quarantined has no rows.
    """
    parts = [
        rule_counts(frame).select(pl.lit(feed).alias("feed"), pl.all())
        for feed, frame in by_feed.items()
    ]
    return pl.concat([pl.DataFrame(schema=SUMMARY_SCHEMA), *parts])


def rows_per_file(quarantined: pl.DataFrame) -> pl.DataFrame:
    """One row per source file with quarantined rows: source_file, rows; in file name order."""
    return (
        quarantined.group_by("source_file")
        .agg(pl.len().cast(pl.UInt32).alias("rows"))
        .sort("source_file")
    )
