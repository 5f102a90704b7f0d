"""The machine-readable tables: `tables/<name>.parquet` and `tables/<name>.csv`.

Both are byte-identical for identical frames: nothing time-dependent goes in, and the frame is
rechunked first because Polars lays out Parquet pages by chunk (same reason as
warehouse.publish). The CSV starts with the UTF-8 BOM so Excel opens Chinese text correctly;
Decimals print exactly as stored (e.g. 33.60, never 33.6000000001).

The CSV is the one copy a spreadsheet program opens directly, so it is the one place where a
text cell beginning with `=`, `+`, `-`, `@`, tab or CR (names come from source systems and
reference files) could run as a formula. Such cells get a leading `'` (OWASP's advice for CSV
injection); numeric columns, negative numbers included, are written as they are.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import polars as pl

_NAME = re.compile(r"[a-z][a-z0-9_]*")
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER = "^[" + re.escape("".join(FORMULA_TRIGGERS)) + "]"


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.rechunk().write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def neutralize_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with every text cell that a spreadsheet would run as a formula prefixed by `'`."""
    text = [name for name, dtype in frame.schema.items() if dtype in (pl.String, pl.Categorical)]
    return frame.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(_TRIGGER))
        .then(pl.lit("'") + pl.col(c).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in text
    )


def csv_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    neutralize_formulas(frame).write_csv(buf, include_bom=True, date_format="%Y-%m-%d")
    return buf.getvalue()


def write_tables(tables: dict[str, pl.DataFrame], folder: Path) -> list[Path]:
    """Write every table as Parquet and CSV under `folder`; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(tables):
        if not _NAME.fullmatch(name):
            raise ValueError(f"table name {name!r} is not a safe file name")
        for suffix, data in (
            (".parquet", parquet_bytes(tables[name])),
            (".csv", csv_bytes(tables[name])),
        ):
            path = folder / f"{name}{suffix}"
            path.write_bytes(data)
            written.append(path)
    return written
