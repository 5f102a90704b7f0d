"""Per-run scratch space: staged frames handed from one task to the next by path, not by value.

Lives under `<warehouse>/_kesu/scratch/<run_id>/` (outside every table; for an ``s3://``
warehouse under its local state directory, `kesu.warehouse.Warehouse.state`), is written as
uncompressed Arrow IPC (a memory copy, several times faster than Parquet both ways), and is
deleted when the run ends; `clear_stale` removes what a killed run left.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from kesu.warehouse.warehouse import Warehouse

SCRATCH = Path("_kesu") / "scratch"


def _base(wh: Warehouse) -> Path:
    return wh.state.root / SCRATCH


def scratch_dir(wh: Warehouse, run_id: str) -> Path:
    path = _base(wh) / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_frame(path: Path, frame: pl.DataFrame) -> str:
    frame.write_ipc(path, compression="uncompressed")
    return str(path)


def read_frame(path: str) -> pl.DataFrame:
    return pl.read_ipc(path)


def clear(wh: Warehouse, run_id: str) -> None:
    shutil.rmtree(_base(wh) / run_id, ignore_errors=True)


def clear_stale(wh: Warehouse, keep: str) -> list[str]:
    """Remove scratch folders of other (finished or killed) runs; call under the warehouse lock."""
    base = _base(wh)
    removed = []
    if base.is_dir():
        for entry in base.iterdir():
            if entry.name != keep:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(f"removed scratch of run {entry.name}")
    return removed
