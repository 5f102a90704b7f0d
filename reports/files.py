"""The machine-readable tables: `tables/<name>.parquet` and `tables/<name>.csv`.

Both are byte-identical for identical frames: nothing time-dependent goes in, and the frame is
rechunked first because Polars lays out Parquet pages by chunk (same reason as
warehouse.publish). The CSV starts with the UTF-8 BOM so Excel opens Chinese text correctly;
Decimals print exactly as stored (e.g. 33.60, never 33.6000000001).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import polars as pl

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.rechunk().write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def csv_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_csv(buf, include_bom=True, date_format="%Y-%m-%d")
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
