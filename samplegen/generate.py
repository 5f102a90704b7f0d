"""`kesu sample`: write a date range of realistic landing drops for all three feeds."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from kesu.reference import BRANCHES
from kesu.transforms.columns import COLUMNS, FEEDS

from . import complaints, defects, hotline, transfers, writer
from .defects import KINDS as DEFECT_KINDS
from .orgs import load_branches
from .profiles import PROFILES, stream
from .taxonomy import load_taxonomy
from .world import LOOKBACK, World

TRANSFER_CSV_SHARE = 0.12  # the regulator's platform mostly exports xlsx
EXPORTED_AT = dt.time(23, 30)
# Left at the landing root: this landing zone holds sample data, so the demo key beside it may
# tokenize it (kesu.flows.pii_key). Never present in a real landing zone.
SAMPLE_MARKER = ".kesu-sample"


@dataclass
class SampleSummary:
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # rows written per feed
    defects: dict[str, int] = field(default_factory=dict)  # injected defect -> count
    days: int = 0


def generate(
    start: dt.date,
    end: dt.date,
    landing: Path,
    profile: str = "small",
    seed: int = 0,
    branches_path: Path | None = None,
    defects: bool = True,
    progress: Callable[[dt.date], None] | None = None,
    *,
    scale: float = 1.0,
) -> SampleSummary:
    """Write the drops from `start` to `end` (inclusive) under `landing`; same seed, same bytes."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    settings = PROFILES[profile]
    world = World(
        profile=settings,
        seed=seed,
        scale=scale,
        branches=load_branches(branches_path or BRANCHES, settings.home),
        taxonomy=load_taxonomy(),
    )
    summary = SampleSummary(rows={feed: 0 for feed in FEEDS})
    tally: Counter[str] = Counter(dict.fromkeys(DEFECT_KINDS, 0))
    day = start
    while day <= end:
        drops = {
            "hotline": hotline.drop(world, day),
            "complaints": complaints.drop(world, day),
            "regulator_transfers": transfers.drop(
                world, day, complaints.transfer_links(world, day)
            ),
        }
        for feed, drop in drops.items():
            written, rows = write_drop(world, landing, feed, day, drop, defects, tally)
            summary.files += written
            summary.rows[feed] += rows
        summary.days += 1
        world.forget_before(day - dt.timedelta(days=LOOKBACK + 20))
        if progress:
            progress(day)
        day += dt.timedelta(days=1)
    summary.defects = dict(sorted(tally.items())) if defects else {}
    landing.mkdir(parents=True, exist_ok=True)
    (landing / SAMPLE_MARKER).write_text(
        "written by `kesu sample`: synthetic data; the demo PII key in ../secrets serves it\n",
        encoding="utf-8",
    )
    return summary


def write_drop(
    world: World,
    landing: Path,
    feed: str,
    day: dt.date,
    drop: pl.DataFrame,
    inject: bool,
    tally: Counter[str],
) -> tuple[list[Path], int]:
    """Render, damage (if asked) and write one feed's drop; returns the files and rows written."""
    damage = stream(world.seed, day, f"defects-{feed}")
    as_csv = feed != "regulator_transfers" or bool(
        stream(world.seed, day, "format").random() < TRANSFER_CSV_SHARE
    )
    alt = defects.alt_format_rows(damage, drop.height, tally) if inject else None
    text = writer.render(drop, feed, alt)
    if inject:
        text = defects.corrupt(text, feed, damage, world.branches.known, tally)
        plans = defects.plan_files(damage, text.height, as_csv, tally)
    else:
        plans = [defects.FilePlan(slice(0, text.height), "utf-8", False)]
    folder = landing / feed / day.isoformat()
    stem, ext = f"{feed}_{day:%Y%m%d}", "csv" if as_csv else "xlsx"
    headers = [c.header for c in COLUMNS[feed]]
    written = []
    for i, plan in enumerate(plans, start=1):
        part = text[plan.rows]
        order = [headers[k] for k in damage.permutation(len(headers))] if plan.shuffled else None
        table = writer.with_headers(part, feed, order)
        name = f"{stem}_part{i}.{ext}" if len(plans) > 1 else f"{stem}.{ext}"
        data = (
            writer.csv_bytes(table, plan.encoding)
            if as_csv
            else writer.xlsx_bytes(table, dt.datetime.combine(day, EXPORTED_AT))
        )
        written.append(writer.write_atomic(folder / name, data, landing))
    _remove_stale(folder, stem, written)
    return written, text.height


def _remove_stale(folder: Path, stem: str, keep: list[Path]) -> None:
    """Delete what an earlier run wrote for this drop under our own names and this run did not
    (a split day that is no longer split, xlsx that became csv); other files are left alone."""
    for old in folder.iterdir():
        base, _, ext = old.name.rpartition(".")
        part = base.removeprefix(stem)
        ours = base.startswith(stem) and (part == "" or re.fullmatch(r"_part\d+", part))
        if ours and ext in ("csv", "xlsx") and old not in keep and old.is_file():
            old.unlink()
