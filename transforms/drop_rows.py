"""A feed's drop, row by row: its files' staged rows -> the rows that load and the rows held.

The rules that decide about the rows of a whole drop, as pure functions (frames in, frames out),
so they are tested without Prefect or a warehouse, and count as staging code: a change here
re-stages history (`kesu.flows.staging_inputs.STAGING_CODE`). The flow reads the files, calls
these and the suite, and publishes what they return.

- Several small files of the same columns are staged in one plan (`stage_together`).
- The files' rows are one frame, each file's issues at its rows' positions (`combine`); a
  repeat of a record key is held (`staging.duplicate_keys`) and the suite validates the rest.
- A file without a required column is held whole, each row with the file's reason (`hold_all`).
- Every row lands loaded or quarantined (`split`), counted per source file (`rows_by_file`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from kesu.transforms import quarantine
from kesu.transforms.columns import COLUMNS
from kesu.transforms.parsing import constant
from kesu.transforms.staging import (
    ISSUE_SCHEMA,
    SOURCE_FILE,
    HeaderCheck,
    StagedFile,
    StagingContext,
    duplicate_keys,
    stage,
)
from kesu.transforms.value_sets import at_rows

MISSING_COLUMN = "missing_column"


def stage_together(
    feed: str, files: Sequence[tuple[pl.DataFrame, str]], ctx: StagingContext
) -> StagedFile:
    """Files of the same columns, (source, file name) in order, staged in one plan: each row
    is staged on its own, so each file's rows come out as they would alone, in file order."""
    order = files[0][0].columns
    source = pl.concat([frame.select(order) for frame, _ in files], rechunk=False)
    names = pl.concat([constant(name, frame.height, pl.String) for frame, name in files])
    return stage(feed, source, names, ctx)


@dataclass(frozen=True)
class DropRows:
    """A feed's drop as one frame of staged rows, in file and line order."""

    staged: pl.DataFrame
    masked_source: pl.DataFrame  # the source text of each row, personal data masked
    issues: pl.DataFrame  # ISSUE_SCHEMA, `row` = position in `staged`; repeated keys included
    repeats: pl.Series  # positions of the rows whose key an earlier row of the drop has

    def validated(self) -> pl.Series | None:
        """The rows the suite validates (None: all): not the repeats, which are held already,
        and left in would make the suite's key-uniqueness expectation flag the first occurrence
        too, which must load."""
        return None if self.repeats.is_empty() else ~at_rows(self.staged.height, self.repeats)


def combine(feed: str, files: Sequence[StagedFile]) -> DropRows:
    """The staged files (at least one) as one drop, with the repeats of a record key."""
    issues, offset = [], 0
    for staged in files:
        issues.append(staged.issues.with_columns(pl.col("row") + offset))
        offset += staged.staged.height
    rows = pl.concat([f.staged for f in files])
    repeats = duplicate_keys(rows, feed)
    return DropRows(
        rows,
        pl.concat([f.masked_source for f in files], how="diagonal_relaxed"),
        pl.concat([*issues, repeats]).cast(ISSUE_SCHEMA),  # type: ignore[arg-type]
        repeats["row"],
    )


def split(
    rows: DropRows, failures: pl.DataFrame, held: Sequence[pl.DataFrame] = ()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(loaded, quarantined): the rows of `rows` by their issues and the suite's `failures`
    (by position in `rows.staged`), with the rows of files `held` whole (`hold_all`)."""
    problems = quarantine.row_problems(rows.issues, failures)
    loaded, quarantined = quarantine.split(rows.staged, rows.masked_source, problems)
    return loaded, pl.concat([quarantined, *held], how="vertical_relaxed")


def missing_columns_reason(
    feed: str, file_name: str, rows: int, check: HeaderCheck, encoding: str = ""
) -> str:
    """Why none of a file's rows loads when it lacks a required column (`check`): the reason
    each of its rows is held with. Without any of the feed's headers its first row is likely
    no header at all, or text in an encoding kesu does not read (`encoding`: "big5" where the
    file looks like Big5, "gb18030" where it was read as that, not being UTF-8); its values
    are not quoted (it can be a record)."""
    missing = "、".join(check.missing_required)
    held = f"none of its {rows} rows was loaded, all are held in quarantine"
    if not check.rename and encoding == "big5":
        return (
            f"{file_name}: its header row looks like Big5 (traditional Chinese) text, not UTF-8 "
            f"or GB18030, so its required column(s) {missing} are not found; {held} — re-export "
            "it as UTF-8 (feeds.md)"
        )
    if not check.rename and (separator := _other_separator(feed, check.unknown)):
        return (
            f"{file_name}: its header row is separated by {separator}, not commas, so its "
            f"required column(s) {missing} are not found; {held} — re-export it as CSV, its "
            "values separated by commas (feeds.md)"
        )
    reason = (
        f"{file_name}: required column(s) {missing} missing; {held} — re-export it with "
        "every column of feeds.md"
    )
    if not check.rename:  # e.g. a title row above the header
        reason += f"; none of the {feed} headers is in the first row, which must be the header row"
        if encoding == "gb18030":  # or text in another encoding, read as this one
            reason += " (the file is not UTF-8 text and was read as GB18030)"
    return reason


# separators an export may use instead of the comma (a spreadsheet's "text" or a locale's CSV)
_SEPARATORS = {"\t": "tabs", ";": "semicolons", "|": "vertical bars"}


def absent_columns_notes(feed: str, headers: Sequence[str]) -> list[str]:
    """The notes for columns of `feed` that a file lacks and that no row needs in every case:
    the optional ones together, and one per column required on some rows (投诉原因 when 工单类型
    is 投诉), which are held for it: such a column is not optional to those rows."""
    spec = {c.header: c for c in COLUMNS[feed]}
    optional = [h for h in headers if spec[h].required_when is None]
    notes = [f"optional column(s) absent: {'、'.join(optional)}"] if optional else []
    for header in headers:
        when = spec[header].required_when
        if when is not None:
            by = next(c.header for c in COLUMNS[feed] if c.name == when[0])
            notes.append(
                f"column {header} absent, required when {by} is {' or '.join(when[1])}: "
                "those rows are held"
            )
    return notes


def _other_separator(feed: str, headers: list[str]) -> str | None:
    """The separator, if `headers` (those of no known name) are the feed's headers joined by
    another character than the comma."""
    known = {c.header for c in COLUMNS[feed]}
    for character, name in _SEPARATORS.items():
        if any(known & {part.strip() for part in h.split(character)} for h in headers):
            return name
    return None


def hold_all(staged: StagedFile, missing: Sequence[str], reason: str) -> pl.DataFrame:
    """Every row of a file that lacks the required columns `missing`, quarantined with `reason`.

    Nothing of such a file is loaded, but its rows are not dropped either: the accounting
    (rows in = loaded + quarantined) holds for it, and stewards see them in `kesu quarantine`.
    """
    n = staged.staged.height
    every_row = pl.DataFrame(
        {
            "row": pl.int_range(0, n, dtype=pl.UInt32, eager=True),
            "field": ["、".join(missing)] * n,
            "rule": [MISSING_COLUMN] * n,
            "reason": [reason] * n,
        },
        schema=ISSUE_SCHEMA,
    )
    problems = quarantine.row_problems(every_row, every_row.clear())
    return quarantine.split(staged.staged, staged.masked_source, problems)[1]


def rows_by_file(frame: pl.DataFrame) -> dict[str, int]:
    """{source file: rows of `frame`}, in one query (a drop can have hundreds of files)."""
    return dict(frame.group_by(SOURCE_FILE).len().iter_rows())
