"""What a report must not present silently: ticket updates held in quarantine (the report shows
those complaints as they were before the held version) and labels loaded under 其他.

A held version is "newer" than the loaded one when it landed in a later drop, or in the same drop
with a later 更新时间: a closing version held for a misspelt cause (其它) would otherwise leave
the complaint open and overdue in every report.
"""

from __future__ import annotations

from datetime import date
from functools import partial

import polars as pl
from kesu.transforms import parsing
from kesu.transforms.lookups import AXIS_OF_KIND, OTHER_CODE
from kesu.transforms.personal_data import mask_personal_data

HELD_COLUMNS = {"complaint_id": pl.String, "drop_date": pl.Date, "rule": pl.String,
                "reason": pl.String}  # fmt: skip


def newest_held(tickets: pl.DataFrame, held: pl.DataFrame, cutoff: date) -> pl.DataFrame:
    """One row per complaint whose newest landed version is in quarantine, received (as last
    loaded) on or before the cutoff, or never loaded at all: `complaint_id` as it landed (not
    masked: a key to join on, never shown as it is), `drop_date` and the `rule` and `reason` it
    is held for. The one rule behind the report's `held_updates` and the watch list's mark.

    `tickets`: the latest loaded version per ticket as of the report; `held`: quarantined
    complaint rows with drop_date <= as_of (source text, with complaint_id and updated_at); a
    row without a complaint_id (a misshapen record's is withheld unless it looks like an id,
    `quarantine.kept_ids`) names no complaint and is left out."""
    if held.is_empty() or "complaint_id" not in held.columns:
        return pl.DataFrame(schema=HELD_COLUMNS)
    updated = (
        held["updated_at"] if "updated_at" in held.columns else pl.Series([None] * held.height)
    )
    rows = held.select(
        complaint_id=pl.col("complaint_id").str.strip_chars(),
        held_drop="drop_date", rule="rule", reason="reason",
        source_file="source_file", source_line="source_line",
        held_at=parsing.parse_datetime(updated.cast(pl.String))[0],
    ).filter(pl.col("complaint_id").str.len_chars() > 0)  # fmt: skip
    newest = rows.sort("complaint_id", "held_drop", "held_at", "source_file", "source_line",
                       nulls_last=False).unique("complaint_id", keep="last")  # fmt: skip
    loaded = tickets.select(
        "complaint_id", "received_at", loaded_drop="drop_date", loaded_at="updated_at"
    )
    both = newest.join(loaded, on="complaint_id", how="left")
    later = (
        pl.col("loaded_drop").is_null()
        | (pl.col("held_drop") > pl.col("loaded_drop"))
        | ((pl.col("held_drop") == pl.col("loaded_drop"))
           & (pl.col("held_at") > pl.col("loaded_at")).fill_null(False))
    )  # fmt: skip
    in_view = pl.col("received_at").is_null() | (
        pl.col("received_at").dt.convert_time_zone(parsing.TIME_ZONE).dt.date() <= cutoff
    )
    return (
        both.filter(later & in_view)
        .select("complaint_id", drop_date="held_drop", rule="rule", reason="reason")
        .cast(HELD_COLUMNS)  # type: ignore[arg-type]
    )


def held_updates(tickets: pl.DataFrame, held: pl.DataFrame, cutoff: date) -> pl.DataFrame:
    """One row per complaint whose newest landed version is in quarantine (`newest_held`), as
    the report lists it: `complaint_id` masked should it look like a phone or ID number,
    `drop_date`, `rule`, `reason`; sorted by complaint_id."""
    return (
        newest_held(tickets, held, cutoff)
        .with_columns(complaint_id=_masked("complaint_id", ids=True))
        .sort("complaint_id", maintain_order=True)
    )


def unmapped_labels(tickets: pl.DataFrame, labels: dict[str, dict[str, str]]) -> pl.DataFrame:
    """One row per axis and source label that is not in the mapping but was loaded under the
    axis's 其他 ([validation] unknown_label = "other"): `axis`, `label`, `mapped_to`, `tickets`.
    The finding a report shows, so that no label goes to 其他 silently."""
    parts = []
    for kind, axis in AXIS_OF_KIND.items():
        column = kind.replace("category_label", "business_category_label")
        if column not in tickets.columns:
            continue
        known = sorted(labels.get(axis, {}))
        found = (
            tickets.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(known))
            .group_by(pl.col(column).alias("label"))
            .agg(tickets=pl.len().cast(pl.Int64))
        )
        label = _masked("label")
        other = pl.lit(OTHER_CODE[axis])
        parts.append(
            found.select(axis=pl.lit(axis), label=label, mapped_to=other, tickets="tickets")
        )
    schema = {"axis": pl.String, "label": pl.String, "mapped_to": pl.String, "tickets": pl.Int64}
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(parts).cast(schema).sort("axis", "label")  # type: ignore[arg-type]


def _masked(column: str, ids: bool = False) -> pl.Expr:
    """The column with any personal data masked by the one detector (an id or a label typed
    with a phone in it must not reach a report); `ids`: an id column (`mask_personal_data`)."""
    mask = partial(mask_personal_data, ids=ids)
    return pl.col(column).map_batches(mask, return_dtype=pl.String)
