"""The mess real exports carry, injected at small deterministic rates and counted.

Row defects: unparseable dates, the other accepted date formats, unmapped labels, unknown
branches, a required field left empty, exact duplicates. File defects: GB18030 or BOM encodings,
shuffled columns, a drop split over two files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import polars as pl
from kesu.transforms.columns import COLUMNS

ROW_RATES = {
    "bad_datetime": 0.002,
    "alt_datetime_format": 0.01,
    "unknown_label": 0.01,
    "unknown_branch": 0.002,
    "missing_required": 0.005,
    "duplicate_row": 0.0005,
}
SPLIT_RATE, SHUFFLE_RATE, GB18030_RATE, BOM_RATE = 0.05, 0.05, 0.1, 0.1
BAD_DATETIMES = ("{y}-02-30 10:00:00", "N/A", "{y}-04-31 09:15:00", "0000-00-00 00:00:00")
BAD_DATES = ("{y}-02-30", "N/A", "{y}-13-01")
# Labels a source system really writes that are not in label_map: "银行卡" is ambiguous (debit
# or credit), "其它" is the variant character, "线上渠道" is too vague to code.
UNKNOWN_LABELS = {"category_label": "银行卡", "cause_label": "其它", "channel_label": "线上渠道"}
# Required fields a buggy export leaves empty on a ticket.
DROPPABLE = ("branch_code", "status", "received_at", "ticket_type")


FILE_DEFECTS = ("gb18030_file", "utf8_bom_file", "shuffled_columns", "split_drop")
KINDS = (*ROW_RATES, *FILE_DEFECTS)  # everything `SampleSummary.defects` counts


@dataclass(frozen=True)
class FilePlan:
    rows: slice
    encoding: str
    shuffled: bool


def _rows(rng: np.random.Generator, n: int, kind: str, tally: Counter) -> np.ndarray:
    k = int(rng.binomial(n, ROW_RATES[kind])) if n else 0
    tally[kind] += k
    return np.sort(rng.choice(n, k, replace=False)) if k else np.zeros(0, dtype=np.int64)


def alt_format_rows(rng: np.random.Generator, n: int, tally: Counter) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[_rows(rng, n, "alt_datetime_format", tally)] = True
    return mask


def _set(text: pl.DataFrame, name: str, rows: np.ndarray, values: list[str | None]) -> pl.DataFrame:
    if not len(rows):
        return text
    return text.with_columns(text[name].scatter(rows, pl.Series(values, dtype=pl.String)))


def corrupt(
    text: pl.DataFrame, feed: str, rng: np.random.Generator, known: frozenset[str], tally: Counter
) -> pl.DataFrame:
    """Row defects on a rendered (all-text) drop."""
    n, cols = text.height, COLUMNS[feed]
    timed = [c for c in cols if c.kind in ("datetime", "date") and c.required]
    rows = _rows(rng, n, "bad_datetime", tally)
    which = rng.integers(0, len(timed), len(rows))
    for i, c in enumerate(timed):
        hit = rows[which == i]
        years = [(v or "2025")[:4] for v in text[c.name].gather(hit).to_list()]
        bad = BAD_DATETIMES if c.kind == "datetime" else BAD_DATES
        text = _set(text, c.name, hit, [bad[rng.integers(len(bad))].format(y=y) for y in years])
    labelled = [c for c in cols if c.kind in UNKNOWN_LABELS]
    if labelled:
        rows = _rows(rng, n, "unknown_label", tally)
        which = rng.integers(0, len(labelled), len(rows))
        for i, c in enumerate(labelled):
            hit = rows[which == i]
            text = _set(text, c.name, hit, [UNKNOWN_LABELS[c.kind]] * len(hit))
    if any(c.kind == "branch" for c in cols):  # resolved against the branch reference
        rows = _rows(rng, n, "unknown_branch", tally)
        if len(rows):
            unknown = [c for c in (f"{x:04d}" for x in range(8000, 10000)) if c not in known]
            codes = [unknown[i] for i in rng.integers(0, len(unknown), len(rows))]
            text = _set(text, "branch_code", rows, codes)
    if feed == "complaints":
        rows = _rows(rng, n, "missing_required", tally)
        which = rng.integers(0, len(DROPPABLE), len(rows))
        for i, name in enumerate(DROPPABLE):
            text = _set(text, name, rows[which == i], [None] * int((which == i).sum()))
    rows = _rows(rng, n, "duplicate_row", tally)
    return text[np.sort(np.concatenate([np.arange(n), rows]), kind="stable")]


def plan_files(rng: np.random.Generator, n: int, csv: bool, tally: Counter) -> list[FilePlan]:
    """How a drop is cut into files and how each file is encoded."""
    cut = int(rng.integers(1, n)) if n >= 2 and rng.random() < SPLIT_RATE else None
    parts = [slice(0, n)] if cut is None else [slice(0, cut), slice(cut, n)]
    tally["split_drop"] += cut is not None
    plans = []
    for part in parts:
        encoding = _encoding(rng.random()) if csv else "utf-8"
        shuffled = bool(rng.random() < SHUFFLE_RATE)
        tally["gb18030_file"] += encoding == "gb18030"
        tally["utf8_bom_file"] += encoding == "utf-8-sig"
        tally["shuffled_columns"] += shuffled
        plans.append(FilePlan(part, encoding, shuffled))
    return plans


def _encoding(u: float) -> str:
    if u < GB18030_RATE:
        return "gb18030"
    return "utf-8-sig" if u < GB18030_RATE + BOM_RATE else "utf-8"
