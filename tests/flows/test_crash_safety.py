"""Crash safety: a real `kesu ingest`, SIGKILLed at many moments of a publish, loses nothing.

The warehouse holds a drop ("old"); then the landing zone gets corrections, so a new run
replaces partitions. A child process runs the real CLI on a copy of the old warehouse and kills
itself (SIGKILL: no `finally`, no atexit) at one moment; the moment is chosen from outside, by
wrapping a function in the child before `kesu.flows.cli.main` runs (or, inside delta-rs, by
watching for its first new data file), so production code carries no test hook. Then:

- right after the kill, every Delta table holds the drop's old rows or its new rows (what an
  uninterrupted run produces, in a separate copy), never a mix, never missing when it existed;
- the next run removes every leftover (`_kesu/scratch`, `_kesu/tmp`) and ends with the rows of
  the uninterrupted run in every table, and the same raw zone byte for byte.

`kesu report` gets the same treatment: killed before and after its folder swap, the live report
is the old or the new one, whole, and the next run leaves no temp folder and the new report.

The children use the session's Prefect API (tests/flows/conftest.py) instead of each starting
an ephemeral one: ~8 s per child instead of ~20 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from kesu.flows.ingest import nightly
from kesu.samplegen.generate import generate
from kesu.transforms.columns import COLUMNS
from kesu.transforms.run_records import IngestRun
from kesu.warehouse import Warehouse, paths, scratch, tables
from kesu.warehouse.landing import read_source

pytestmark = pytest.mark.flow

DAY = date(2025, 3, 3)
PARTITION = paths.partition_key(DAY)
PII_KEY = "crash-test-key-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]
LEFTOVER_DIRS = (str(scratch.SCRATCH), paths.TMP)

# Runs in the child: wrap KESU_KILL_AT ("module:attribute.path") so that its first call whose
# arguments mention KESU_KILL_IF SIGKILLs the process, before or after the real call.
CHILD = """
import os, signal, sys, threading
from importlib import import_module

def arm():
    env = os.environ
    module, _, attribute = env["KESU_KILL_AT"].partition(":")
    *parents, name = attribute.split(".")
    owner = import_module(module)
    for parent in parents:
        owner = getattr(owner, parent)
    real, needle, when = getattr(owner, name), env["KESU_KILL_IF"], env["KESU_KILL_WHEN"]
    calls, lock = [0], threading.Lock()  # feeds publish in parallel threads

    def wrapper(*args, **kwargs):
        hit = needle in repr(args)
        with lock:
            calls[0] += hit
            due = hit and calls[0] == 1
        if due and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if due and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)

def watch(pattern):
    # SIGKILL as soon as a file matching the pattern appears that was not there at the start
    import glob, time
    before = set(glob.glob(pattern))

    def poll():
        while not set(glob.glob(pattern)) - before:
            time.sleep(0.0005)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=poll, daemon=True).start()

if os.environ.get("KESU_KILL_AT"):
    arm()
if os.environ.get("KESU_KILL_ON_FILE"):
    watch(os.environ["KESU_KILL_ON_FILE"])
from kesu.flows.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass(frozen=True)
class KillPoint:
    at: str  # module:attribute to wrap in the child ("" with `on_file`)
    needle: str  # only calls whose arguments mention this count
    when: str  # kill "before" or "after" the real call
    live: str  # stg_hotline's drop right after the kill: "old", "new" or "old|new"
    trace: str  # a glob matching what a kill at this point leaves, new since the old drop
    on_file: str = ""  # instead: kill when a new file matching this glob appears


KILL_POINTS = {
    # the raw copy of a corrected file is written and fsynced, not yet linked into place
    "mid-raw-copy": KillPoint(
        at="os:link",
        needle="_raw/hotline",
        when="before",
        live="old",
        trace="_kesu/tmp/*",
    ),
    # the hotline publish has not started (other feeds may be anywhere in theirs)
    "before-publish": KillPoint(
        at="kesu.warehouse.publish:publish_partition",
        needle="stg_hotline",
        when="before",
        live="old",
        trace="_raw/hotline/*/*/*",  # the corrected file's raw copy (staging is in memory)
    ),
    # delta-rs has written a data file of the new rows; its commit may or may not be done
    "mid-write": KillPoint(
        at="",
        needle="",
        when="",
        live="old|new",
        trace=f"stg_hotline/{PARTITION}/*.parquet",
        on_file=f"stg_hotline/{PARTITION}/*.parquet",
    ),
    # stg_hotline is committed, its quarantine table not yet, the run not recorded
    "after-commit": KillPoint(
        at="kesu.warehouse.publish:publish_partition",
        needle="stg_hotline",
        when="after",
        live="new",
        trace="stg_hotline/_delta_log/*.json",
    ),
}


def _header(feed: str, name: str) -> str:
    return next(c.header for c in COLUMNS[feed] if c.name == name)


def _text_frame(path: Path) -> pl.DataFrame:
    return read_source(path).frame.drop("_line", "_ragged")


def _set(column: str, row: int, value: str) -> pl.Expr:
    return (
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .alias(column)
    )


@pytest.fixture(scope="module")
def landings(tmp_path_factory) -> tuple[Path, Path]:
    return make_landings(tmp_path_factory)


def make_landings(tmp_path_factory) -> tuple[Path, Path]:
    """(old, new): a drop, and the same drop after its sources re-landed corrected files."""
    old = tmp_path_factory.mktemp("landing_old")
    generate(DAY, DAY, old, profile="small", seed=6, defects=False)
    folder = old / "hotline" / DAY.isoformat()
    (export,) = folder.iterdir()
    calls = _text_frame(export)
    export.unlink()
    start = _header("hotline", "call_start_at")
    half = calls.height // 2
    # two files, so a kill can fall between them; one bad row, so quarantine/hotline exists
    calls.head(half).with_columns(_set(start, 0, "2025-02-30 10:00:00")).write_csv(
        folder / "hotline_part1.csv"
    )
    calls.tail(calls.height - half).write_csv(folder / "hotline_part2.csv")

    new = tmp_path_factory.mktemp("landing_new")
    shutil.copytree(old, new, dirs_exist_ok=True)
    # part 2 corrected: three calls fewer, and one bad row (quarantine/hotline gains a file)
    part2 = new / "hotline" / DAY.isoformat() / "hotline_part2.csv"
    _text_frame(part2).head(calls.height - half - 3).with_columns(_set(start, 1, "N/A")).write_csv(
        part2
    )
    # the complaints export corrected: its first ticket's branch is unknown (quarantine created)
    (tickets,) = (new / "complaints" / DAY.isoformat()).iterdir()
    branch = _header("complaints", "branch_code")
    frame = _text_frame(tickets)
    assert frame.height >= 2
    frame.with_columns(_set(branch, 0, "9999")).write_csv(tickets)
    return old, new


def ingest(landing: Path, warehouse: Path) -> IngestRun:
    return nightly(drop_date=DAY, landing_dir=str(landing), warehouse_dir=str(warehouse))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def partition(root: Path, table: str) -> pl.DataFrame | None:
    """The drop's live rows in the table, sorted; None when the table has none of them. A table
    whose creation the kill cut short (its log folder made, its first commit not) is no table,
    as kesu reads it (`tables.open_table`): another feed's thread may be creating one."""
    if tables.open_table(Warehouse.at(root), table) is None:
        return None
    rows = pl.read_delta(str(root / table)).filter(pl.col("drop_date") == DAY)
    return rows.sort(pl.all()) if rows.height else None


def same(a: pl.DataFrame | None, b: pl.DataFrame | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.equals(b.select(a.columns)) if set(a.columns) == set(b.columns) else False


def raw_zone(root: Path) -> dict[str, str]:
    """Every raw copy, byte for byte."""
    found = sorted((root / paths.RAW).rglob("*"))
    return {str(p.relative_to(root)): _sha(p) for p in found if p.is_file()}


def leftovers(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for d in LEFTOVER_DIRS for p in (root / d).glob("*")]


@dataclass(frozen=True)
class States:
    old: Path  # the warehouse after ingesting the old drop
    new: Path  # the same, after an uninterrupted run over the corrected drop
    landing: Path  # the corrected drop


@pytest.fixture(scope="module")
def states(landings, tmp_path_factory) -> States:
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", PII_KEY)
    old_landing, new_landing = landings
    old = tmp_path_factory.mktemp("warehouse_old")
    assert ingest(old_landing, old).status == "completed"
    new = tmp_path_factory.mktemp("warehouse_new")
    shutil.copytree(old, new, dirs_exist_ok=True)
    run = ingest(new_landing, new)
    mp.undo()
    actions = {p.table: p.action for r in run.feeds.values() for p in r.outputs}
    # the corrected drop replaces partitions, creates one, and leaves the transfers alone
    assert actions["stg_hotline"] == actions["quarantine/hotline"] == "replaced"
    assert actions["stg_complaints"] == "replaced"
    assert actions["quarantine/complaints"] == "created"
    assert run.feeds["regulator_transfers"].status == "unchanged"
    assert partition(old, "stg_hotline") is not None
    return States(old, new, new_landing)


@pytest.fixture(scope="module")
def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    # without it each child would start its own API server, which the kill would orphan
    assert url, "the flow tests' Prefect harness is not running"
    return url


def run_child(args: list[str], api_url: str, cwd: Path, point: KillPoint | None = None):
    """`kesu <args>` in a child process; with `point`, armed to SIGKILL itself there."""
    env = {
        **os.environ,
        "KESU_PII_KEY": PII_KEY,
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(REPO),
    }
    if point is not None:
        env |= {
            "KESU_KILL_AT": point.at,
            "KESU_KILL_IF": point.needle,
            "KESU_KILL_WHEN": point.when,
        }
    if point is not None and point.on_file:
        env = {k: v for k, v in env.items() if not k.startswith("KESU_KILL_")}
        env["KESU_KILL_ON_FILE"] = str(cwd / "warehouse" / point.on_file)
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("name", list(KILL_POINTS))
def test_a_kill_mid_publish_leaves_old_or_new_and_the_next_run_converges(
    name, states, api_url, tmp_path, monkeypatch
):
    point = KILL_POINTS[name]
    warehouse = tmp_path / "warehouse"
    shutil.copytree(states.old, warehouse)
    args = ["ingest", "--date", DAY.isoformat(), "--landing", str(states.landing)]
    proc = run_child([*args, "--warehouse", str(warehouse)], api_url, tmp_path, point)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]

    # Right after the kill: each table holds the drop's old rows or its new rows, whole.
    left = {p.relative_to(warehouse) for p in warehouse.glob(point.trace)}
    before = {p.relative_to(states.old) for p in states.old.glob(point.trace)}
    assert left - before, leftovers(warehouse)  # killed where intended
    live = partition(warehouse, "stg_hotline")
    allowed = {state: partition(getattr(states, state), "stg_hotline") for state in ("old", "new")}
    assert any(same(live, allowed[state]) for state in point.live.split("|")), name
    # Other feeds publish in other threads, anywhere in their own steps.
    for table in paths.TABLE_DIRS:
        now = partition(warehouse, table)
        then = [partition(states.old, table), partition(states.new, table)]
        assert any(same(now, t) for t in then), table

    # The next run cleans up and ends exactly where an uninterrupted run would have.
    monkeypatch.setenv("KESU_PII_KEY", PII_KEY)
    run = ingest(states.landing, warehouse)
    assert run.status == "completed"
    assert leftovers(warehouse) == []
    for table in paths.TABLE_DIRS:
        assert same(partition(warehouse, table), partition(states.new, table)), table
    assert raw_zone(warehouse) == raw_zone(states.new)


# --- a report folder --------------------------------------------------------------------------

REPORT = ["report", "quarterly", "2025Q1", "--as-of", DAY.isoformat()]
REPORT_KILL_POINTS = {
    # every file of the new report is written into the temp folder, the swap not begun
    "report-before-swap": KillPoint(
        at="kesu.reports.output:_fsync_tree",
        needle=".2025Q1.tmp-",
        when="before",
        live="old",
        trace="quarterly/.2025Q1.tmp-*/tables",
    ),
    # the new report is renamed in: the old one still waits aside, to be deleted
    "report-after-swap": KillPoint(
        at="kesu.reports.output:_rename",
        needle=".2025Q1.tmp-",
        when="after",
        live="new",
        trace="quarterly/.2025Q1.old-*/tables",
    ),
}


def report_files(out: Path) -> dict[str, str]:
    """{file: sha256} of the live report; its manifest without the time it was generated."""
    folder = out / "quarterly" / "2025Q1"
    files = {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("generated_at")
    return files | {"manifest.json": json.dumps(manifest, sort_keys=True)}


def report_leftovers(out: Path) -> list[str]:
    return [p.name for p in (out / "quarterly").iterdir() if ".tmp-" in p.name or ".old-" in p.name]


@dataclass(frozen=True)
class Reports:
    old: Path  # the report from the old warehouse
    new: Path  # the report from the new warehouse, written without interruption


@pytest.fixture(scope="module")
def reports(states, api_url, tmp_path_factory) -> Reports:
    made = {}
    for state, warehouse in (("old", states.old), ("new", states.new)):
        out = tmp_path_factory.mktemp(f"reports_{state}")
        proc = run_child([*REPORT, "--warehouse", str(warehouse), "--out", str(out)], api_url, out)
        assert proc.returncode == 0, proc.stderr[-3000:]
        made[state] = out
    assert report_files(made["old"]) != report_files(made["new"])
    return Reports(**made)


@pytest.mark.parametrize("name", list(REPORT_KILL_POINTS))
def test_a_kill_while_writing_a_report_leaves_the_old_or_the_new_report_whole(
    name, states, reports, api_url, tmp_path
):
    point = REPORT_KILL_POINTS[name]
    out = tmp_path / "reports"
    shutil.copytree(reports.old, out)
    args = [*REPORT, "--warehouse", str(states.new), "--out", str(out)]
    proc = run_child(args, api_url, tmp_path, point)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert list(out.glob(point.trace))
    assert report_files(out) == report_files(getattr(reports, point.live))

    proc = run_child(args, api_url, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report_leftovers(out) == []
    assert report_files(out) == report_files(reports.new)
