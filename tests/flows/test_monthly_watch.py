"""End to end over a quarter of sample drops: the three monthly 客户之声 reports and the
quarterly one (their complaint counts add up), and the watch list built by the nightly run."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from kesu.flows.config import load_settings
from kesu.flows.drop import ingest_drop
from kesu.flows.ingest import nightly
from kesu.flows.report import report
from kesu.flows.watch import EVENT, watch_list
from kesu.samplegen.generate import generate
from kesu.transforms.watch import DUE_SOON, VOLUME_ALERTS
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.events.filters import EventFilter, EventNameFilter

pytestmark = pytest.mark.flow
START, LAST = dt.date(2025, 4, 1), dt.date(2025, 6, 30)
MONTHS = ("2025-04", "2025-05", "2025-06")
# counted by the month of receipt, so months add up (closures, measured at each period's end,
# do not)
SUMMED = ("complaints", "complaints_raw", "regulator_transferred", "opinions", "praises",
          "responsible")  # fmt: skip


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
    landing = tmp_path_factory.mktemp("landing")
    warehouse = tmp_path_factory.mktemp("warehouse")
    generate(START, LAST, landing, profile="small", seed=7)  # seed 7: some at risk on LAST
    settings = load_settings(landing=str(landing), warehouse=str(warehouse))
    day = START
    while day < LAST:  # every drop but the last without Prefect, for speed
        ingest_drop(settings, day)
        day += dt.timedelta(days=1)
    out = tmp_path_factory.mktemp("reports")
    # the last one as the served nightly runs it: the watch list after the ingest
    nightly(drop_date=LAST, landing_dir=str(landing), warehouse_dir=str(warehouse), watch=True,
            reports_dir=str(out))  # fmt: skip
    yield {"landing": landing, "warehouse": warehouse, "out": out}
    mp.undo()


def overview(folder: Path) -> dict[str, dict]:
    table = pl.read_parquet(folder / "tables" / "overview.parquet")
    return {r["metric"]: r for r in table.iter_rows(named=True)}


def test_monthly_reports_write_every_file_and_add_up_to_the_quarter(sample):
    where = {"out": str(sample["out"]), "warehouse_dir": str(sample["warehouse"])}
    months = [report(kind="monthly", period=m, as_of=LAST, **where) for m in MONTHS]
    quarter = report(kind="quarterly", period="2025Q2", as_of=LAST, **where)
    for month, result in zip(MONTHS, months, strict=True):
        folder = Path(result["folder"])
        assert folder == sample["out"] / "monthly" / month
        for name in ("report.xlsx", "report.html", "manifest.json", "summary.md",
                     "charts/business_category_share.png", "charts/cause_share.png",
                     "charts/monthly_trend.png", "tables/branch_scorecard.parquet",
                     "tables/overview.csv"):  # fmt: skip
            assert (folder / name).stat().st_size > 0, name
        quarter_tables = {p.name for p in (Path(quarter["folder"]) / "tables").iterdir()}
        assert {p.name for p in (folder / "tables").iterdir()} == quarter_tables
        table = pl.read_parquet(folder / "tables" / "overview.parquet")
        assert table.columns[:5] == ["metric", "label", "value", "previous", "change_pct"]
        assert table.columns[-2:] == ["previous_year", "change_yoy_pct"]
        assert json.loads((folder / "manifest.json").read_text())["kind"] == "monthly"
        text = (folder / "summary.md").read_text(encoding="utf-8")
        complaints = int(overview(folder)["complaints_raw"]["value"])
        assert f"{int(month[5:])}月份各渠道共受理消费投诉类工单" in text
        assert f"投诉{complaints}件" in text and "办结率" in text
        sheets = openpyxl.load_workbook(folder / "report.xlsx")
        scorecard = sheets["分支机构投诉情况"]
        last = [c.value for c in scorecard[scorecard.max_row]]
        assert "合计" in last
        branches = pl.read_parquet(folder / "tables" / "branch_scorecard.parquet")
        assert branches["direct_complaints"].sum() in last  # the 合计 of 客户之声投诉
    # the months of a quarter add up to it
    monthly = [overview(Path(r["folder"])) for r in months]
    whole = overview(Path(quarter["folder"]))
    for metric in SUMMED:
        assert sum(m[metric]["value"] for m in monthly) == whole[metric]["value"], metric
    # May's previous is April's value
    assert monthly[1]["complaints"]["previous"] == monthly[0]["complaints"]["value"]


def never_loaded(warehouse) -> int:
    """Complaint ids in the complaints' quarantine that no loaded version has, up to LAST."""
    held = pl.read_delta(str(warehouse / "quarantine" / "complaints"))
    loaded = pl.read_delta(str(warehouse / "stg_complaints"))
    ids = held.filter(pl.col("drop_date") <= LAST)["complaint_id"].str.strip_chars()
    return len(set(ids.drop_nulls().to_list()) - set(loaded["complaint_id"]) - {""})


def test_the_nightly_run_built_the_watch_list_and_published_what_is_at_risk(sample):
    folder = sample["out"] / "watch" / LAST.isoformat()
    for name in ("tables/due_soon.parquet", "tables/volume_alerts.parquet", "watch.xlsx",
                 "watch.html", "manifest.json"):  # fmt: skip
        assert (folder / name).stat().st_size > 0, name
    due = pl.read_parquet(folder / "tables" / "due_soon.parquet")
    assert due.columns == DUE_SOON
    assert pl.read_parquet(folder / "tables" / "volume_alerts.parquet").columns == VOLUME_ALERTS
    assert due["days_left"].to_list() == sorted(due["days_left"].to_list())
    assert (due["days_left"] <= 5).all() and due.height > 0
    assert (due["due_on"] - due["received_on"]).dt.total_days().min() >= 0
    book = openpyxl.load_workbook(folder / "watch.xlsx")
    assert book.sheetnames == ["临期及超期未办结", "投诉量异动预警"]
    sheet = book["临期及超期未办结"]
    assert sheet.max_row == due.height + 2  # title, header, one row per entry
    for i, days_left in enumerate(due["days_left"].to_list(), start=3):
        filled = sheet.cell(i, 1).fill.fgColor.rgb
        assert (filled == "FFF8CBAD") == (days_left < 0)
    with get_client(sync_client=True) as client:
        key = f"watch-{LAST.isoformat()}-at-risk"
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))  # fmt: skip
    assert len(found) == 1
    assert len(json.loads(found[0].data)) == due.filter(pl.col("days_left") <= 2).height
    # the event an automation listens to, with the counts, as the API server stored it
    counts = {
        "drop_date": LAST.isoformat(),
        "overdue": due.filter(pl.col("days_left") < 0).height,
        "due_within_2_days": due.filter(pl.col("days_left").is_between(0, 2)).height,
        "volume_alerts": pl.read_parquet(folder / "tables" / "volume_alerts.parquet").height,
        # rows listed as before a newer version held in quarantine: counted, never silent
        "held_updates": due.filter(pl.col("held_update").is_not_null()).height,
        # complaints only quarantine holds (not listed: no deadline to reckon), counted
        "never_loaded": never_loaded(sample["warehouse"]),
    }
    assert counts["overdue"] + counts["due_within_2_days"] > 0  # the sample has some at risk
    assert at_risk_events() == [counts]


def test_a_day_no_drop_reached_is_watched_after_the_drop_before_it(sample, tmp_path):
    # judged on such a day, complaints open at the last drop showed overdue on data nobody had,
    # and the nightly of a night whose exports never landed alerted under that night's date
    out = tmp_path / "reports"
    after = LAST + dt.timedelta(days=1)
    nightly(drop_date=after, landing_dir=str(sample["landing"]), warehouse_dir=str(sample["warehouse"]),
            watch=True, reports_dir=str(out))  # fmt: skip
    assert not (out / "watch").exists()  # nothing landed: no list, no alert dated `after`
    later = watch_list(drop_date=LAST + dt.timedelta(days=30), out=str(out),
                       warehouse_dir=str(sample["warehouse"]))  # fmt: skip
    assert later["drop_date"] == LAST.isoformat()
    nightly_list = sample["out"] / "watch" / LAST.isoformat() / "tables" / "due_soon.parquet"
    assert (Path(later["folder"]) / "tables" / "due_soon.parquet").read_bytes() == (
        nightly_list.read_bytes()
    )
    with pytest.raises(ValueError, match="holds no drop on or before 2025-03-31"):
        watch_list(drop_date=START - dt.timedelta(days=1), out=str(out),
                   warehouse_dir=str(sample["warehouse"]))  # fmt: skip


def test_a_negative_window_is_told_where_it_was_set(sample, tmp_path):
    config = tmp_path / "kesu.toml"
    config.write_text("[watch]\nwithin_days = -3\n", encoding="utf-8")
    where = {"out": str(tmp_path), "warehouse_dir": str(sample["warehouse"])}
    with pytest.raises(
        ValueError, match=r"\[watch\] within_days must be a whole number, 0 or more$"
    ):
        watch_list(config_file=str(config), **where)
    with pytest.raises(ValueError, match=r"^--within must be 0 or more days, not -1$"):
        watch_list(within=-1, **where)


def test_a_full_disk_under_the_reports_is_told_by_the_watch_folder(sample, full_disk, capsys):
    from kesu.flows import cli

    argv = ["watch", "--out", str(full_disk), "--warehouse", str(sample["warehouse"])]
    assert cli.main(argv) == 1
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("kesu")]
    assert said == [  # not "the device holding the warehouse", whose disk has room
        f"kesu watch: no space left on the device holding {full_disk}/watch/{LAST}: "
        "free some space and run again"
    ]


def at_risk_events(wait: float = 30.0) -> list[dict]:
    """Payloads of the kesu.watch.at-risk events of drop LAST (stored asynchronously)."""
    deadline = time.monotonic() + wait
    while True:
        with get_client(sync_client=True) as client:
            page = client.read_events(EventFilter(event=EventNameFilter(name=[EVENT])), limit=50)
        found = [e.payload for e in page.events if e.resource.id == f"kesu.watch.{LAST}"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_kesu_watch_with_another_window_and_date(sample, kesu_process):
    """Through the command line: its lines only, none of Prefect's (they stay in its logs)."""
    printed = kesu_process(
        "watch", "--date", "2025-06-15", "--within", "0",
        "--out", str(sample["out"]), "--warehouse", str(sample["warehouse"]),
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr[-3000:]
    folder = sample["out"] / "watch" / "2025-06-15"
    first, *files = printed.stdout.splitlines()
    due = pl.read_parquet(folder / "tables" / "due_soon.parquet")
    assert (due["days_left"] <= 0).all()
    overdue = due.filter(pl.col("days_left") < 0).height
    assert first.startswith(f"watch list after drop 2025-06-15: overdue {overdue}, ")
    assert first.endswith(f": {folder}")
    assert "  watch.xlsx" in files and all(line.startswith("  ") for line in files)
    assert "Finished in state" not in printed.stdout + printed.stderr
    assert "Beginning flow run" not in printed.stdout + printed.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "watch" and manifest["as_of"] == "2025-06-15"
    assert max(p["drop_date"] for p in manifest["partitions"]) == "2025-06-15"


def test_kesu_maintain_prints_a_line_per_table_and_none_of_prefects(sample, kesu_process):
    """Last in this module: it compacts the tables the tests above read (nothing is vacuumed,
    every version is younger than a week)."""
    printed = kesu_process("maintain", "--warehouse", str(sample["warehouse"]))
    assert printed.returncode == 0, printed.stderr[-3000:]
    tables = [line.split()[0] for line in printed.stdout.splitlines()]
    assert {"stg_hotline", "stg_complaints", "quarantine/hotline"} <= set(tables)
    assert "vacuumed    0" in printed.stdout
    assert "Finished in state" not in printed.stdout + printed.stderr
