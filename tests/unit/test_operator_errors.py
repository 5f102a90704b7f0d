"""Every user error is one line naming what to fix, exit 2 for usage/configuration, 1 for a failed
run, and the checks that can run before Prefect starts do (no Prefect here: nothing gets that far).
"""

from __future__ import annotations

import errno
import gc
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from kesu.flows import cli
from kesu.flows.config import ConfigError, load_settings
from kesu.flows.errors import one_line
from kesu.flows.pii_key import SAMPLE_MARKER, ensure_demo_key, resolve_pii_key
from kesu.reference import BRANCHES
from kesu.reports import disclosure, xlsx
from kesu.reports.quarantine_xlsx import write_quarantine_workbook
from kesu.warehouse import Warehouse
from kesu.warehouse.publish import publish_partition
from test_report_outputs import literal_tables

KEY = "operator-test-key-0123456789abcdef"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty landing zone, a key, no kesu.toml, working directory = tmp_path."""
    monkeypatch.chdir(tmp_path)
    for name in ("KESU_CONFIG", "KESU_LANDING", "KESU_WAREHOUSE", "KESU_PII_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KESU_PII_KEY", KEY)
    (tmp_path / "landing" / "hotline").mkdir(parents=True)
    return tmp_path


def ingest(site: Path, *extra: str) -> list[str]:
    return ["ingest", "--date", "2025-07-01", "--warehouse", str(site / "wh"), *extra]


def said(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    return err.strip()


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[report]\nroundin = 'half_up'\n", "[report] unknown key 'roundin'; did you mean 'rounding'?"),
        ("[sla]\ndecison_days = 10\n", "[sla] unknown key 'decison_days'; did you mean 'decision_days'?"),
        ("[nonsense]\nx = 1\n", "unknown table [nonsense]; known: report, sla"),
        ("[validaton]\nengine = 'gx'\n", "unknown table [validaton]; did you mean 'validation'?"),
        ("[warehouse]\nstate_dirr = '/x'\n", "did you mean 'state_dir'?"),
        # [watch] values: read by the served nightly's watch step only, at 02:00, until checked here
        ("[watch]\nwithin_days = -3\n", "[watch] within_days must be a whole number, 0 or more"),
        ("[watch]\nat_risk_days = 'two'\n", "[watch] at_risk_days must be a whole number, 0 or more"),
        ("[watch]\nalert_score = 0\n", "[watch] alert_score must be a number above 0"),
        # [disclosure] values reached the public text through str(): 5, ['a', 'b'], or nothing
        ("[disclosure]\ndate = 5\n", "[disclosure] date must be a date (date = 2026-03-31) or the text"),
        ("[disclosure]\ndate = 2026-03-31T10:00:00\n", "[disclosure] date must be a date"),
        ("[disclosure]\ndate = '2026-02-30'\n", "[disclosure] date '2026-02-30' is not a day"),
        ("[disclosure]\nchannels = 5\n", "[disclosure] channels must be text"),
        ("[disclosure]\nchannels = ['客服热线', '']\n", "each a non-empty name"),
        ("[disclosure]\nchannels = ['信函', '信函']\n", "[disclosure] channels lists '信函' twice"),
        ("[disclosure]\ncategory_buckets = { '其他业务' = 'B08' }\n",
         "[disclosure] category_buckets '其他业务' must be a list of business category codes"),
        ("[disclosure]\ncategory_buckets = { '其他业务' = [] }\n", "must be a list of business"),
        ("[disclosure]\ncategory_buckets = ['B08']\n", "[disclosure] category_buckets must be a table"),
        ("[disclosure]\ncategory_buckets = { '甲' = ['B08'], '乙' = ['B08', 'B09'] }\n",
         "[disclosure] category_buckets: B08 is in both '甲' and '乙'"),
        ("[disclosure]\ncategory_buckets = { '其他业务' = ['B14', 'B99'] }\n",
         "B99 (其他) is always shown as the last row of its own"),
    ],
)  # fmt: skip
def test_unknown_configuration_keys_are_errors_naming_the_nearest_key(
    site: Path, capsys: pytest.CaptureFixture[str], toml: str, expected: str
) -> None:
    (site / "kesu.toml").write_text(toml, encoding="utf-8")
    assert cli.main(ingest(site, "--landing", str(site / "landing"))) == 2
    line = said(capsys)
    assert line.startswith("kesu ingest: kesu.toml: ") and expected in line
    assert not (site / "wh").exists()


def test_known_keys_follow_defaults_and_optional_tables(site: Path) -> None:
    config = site / "kesu.toml"
    config.write_text(
        "[report]\nrounding = 'largest_remainder'\n[sla]\ndecision_days = 10\n"
        "[warehouse]\nstate_dir = '/tmp/x'\n[pii]\nkey_file = ''\n",
        encoding="utf-8",
    )
    settings = load_settings(config=str(config), environ={})
    assert settings.get("report", "rounding") == "largest_remainder"
    assert settings.get("sla", "decision_days") == 10


def test_a_missing_landing_root_fails_before_anything_runs(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(ingest(site, "--landing", str(site / "landnig"))) == 2
    assert said(capsys) == (
        f"kesu ingest: landing zone {site / 'landnig'} does not exist; give --landing or "
        "KESU_LANDING"
    )
    assert not (site / "wh").exists()


def test_backfill_checks_the_landing_root_too(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["backfill", "--start", "2025-07-01", "--end", "2025-07-02"]
    assert cli.main(argv + ["--landing", str(site / "nowhere")]) == 2
    assert "landing zone" in said(capsys)


def test_no_key_is_one_line_before_prefect_starts(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KESU_PII_KEY")
    assert cli.main(ingest(site, "--landing", str(site / "landing"))) == 2
    line = said(capsys)
    assert line.startswith("kesu ingest: no key for tokenizing personal data: set KESU_PII_KEY")
    assert not (site / "wh").exists()


def branches_file(site: Path, header: str, encoding: str = "utf-8") -> Path:
    body = BRANCHES.read_text(encoding="utf-8").splitlines()[1:3]
    path = site / "branches.csv"
    path.write_bytes("\n".join([header, *body]).encode(encoding) + b"\n")
    (site / "kesu.toml").write_text(f"[reference]\nbranches = '{path}'\n", encoding="utf-8")
    return path


def test_a_branch_reference_without_its_code_column_names_the_file_and_column(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = branches_file(site, "代码,机构名称,上级机构代码,机构类型,省份,城市,城乡")
    assert cli.main(ingest(site, "--landing", str(site / "landing"))) == 2
    assert said(capsys) == (
        f"kesu ingest: reference file {path}: column 机构代码 is missing "
        "(header: 代码, 机构名称, 上级机构代码, 机构类型, 省份, 城市, 城乡)"
    )


def test_a_branch_reference_in_gbk_names_the_file(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = branches_file(site, "机构代码,机构名称,上级机构代码,机构类型,省份,城市,城乡", "gbk")
    assert cli.main(["report", "annual", "2025", "--warehouse", str(site / "wh")]) == 2
    line = said(capsys)
    assert line.startswith(f"kesu report: reference file {path} is not UTF-8")


@pytest.mark.parametrize(
    ("error", "expected", "status"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/wh/stg_hotline/x.parquet"),
            "no space left on the device holding /wh/stg_hotline/x.parquet: free some space "
            "and run again",
            1,
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/mnt/ro/wh"),
            "/mnt/ro/wh is on a read-only file system: give a folder that can be written",
            1,
        ),
        (ConfigError("kesu.toml: [sla] max_days must be a positive whole number of days"),
         "kesu.toml: [sla] max_days must be a positive whole number of days", 2),
        (RuntimeError("boom\nsecond line"),
         "failed: RuntimeError: boom (run with --debug for the traceback)", 1),
    ],
)  # fmt: skip
def test_errors_become_one_line_and_an_exit_status(
    error: BaseException, expected: str, status: int
) -> None:
    assert one_line(error) == (expected, status)


def test_a_period_no_drop_covers_exits_1_also_when_the_flow_refuses_it() -> None:
    # `report --reproduce` leaves the coverage check to the flow (after the recorded versions');
    # a ValueError there exited 2, where the command's own refusal of the same period exits 1
    from kesu.flows.report import EmptyPeriod

    refused = EmptyPeriod("no drop covers quarterly 2025Q3 (as of 2025-09-30): no drop exists")
    assert one_line(refused) == (str(refused), 1)


def test_an_os_error_raised_from_another_is_still_told_by_its_path() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/wh/_ledger/x.json")
        except OSError as inner:
            raise RuntimeError("publish failed") from inner
    except RuntimeError as outer:
        line, status = one_line(outer)
    assert (line, status) == (
        "no space left on the device holding /wh/_ledger/x.json: free some space and run again",
        1,
    )


def held_rows() -> pl.DataFrame:
    """One quarantined hotline row, as the quarantine table holds it."""
    return pl.DataFrame(
        {"source_file": ["a.csv"], "source_line": [3], "field": ["客户情绪"], "rule": ["in_set"],
         "reason": ["客户情绪: 生气"], "call_id": ["C3"]},
        schema_overrides={"source_line": pl.Int64},
    )  # fmt: skip


def test_an_export_to_a_full_disk_names_the_export_not_the_warehouse(
    site: Path, full_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Warehouse.at(site / "wh")
    publish_partition(
        store, "quarantine/hotline", "drop_date=2025-07-01", {"p.parquet": held_rows()}
    )
    export = full_disk / "隔离_13812345678.xlsx"  # a name can hold personal data
    argv = ["quarantine", "--date", "2025-07-01", "--warehouse", str(site / "wh")]
    assert cli.main([*argv, "--export", str(export)]) == 1
    # the warehouse's disk has room: the line names the file being written, the phone masked
    assert said(capsys) == (
        f"kesu quarantine: no space left on the device holding {full_disk}/隔离_138****5678.xlsx: "
        "free some space and run again"
    )
    assert [p.name for p in full_disk.iterdir()] == ["filler"]  # nothing half written


def test_sample_data_on_a_full_disk_names_the_landing_zone(
    full_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = full_disk / "landing"
    argv = ["sample", "--start", "2025-07-01", "--end", "2025-07-01", "--landing", str(landing)]
    assert cli.main(argv) == 1
    line = said(capsys).splitlines()[-1]
    assert line == (
        f"kesu sample: no space left on the device holding {landing}: free some space and run again"
    )


@pytest.mark.parametrize("workbook", ["quarantine export", "report.xlsx"])
def test_a_workbook_on_a_full_disk_fails_once_with_no_traceback_left_to_print(
    full_disk: Path, monkeypatch: pytest.MonkeyPatch, workbook: str
) -> None:
    # Python prints what fails in a finalizer ("Exception ignored in: <function ZipFile.__del__
    # ...>" and a traceback) through sys.unraisablehook, after the command's one line
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    path = full_disk / "book.xlsx"
    with pytest.raises(Exception) as failed:
        if workbook == "quarantine export":
            write_quarantine_workbook({"hotline": held_rows()}, path, date(2025, 7, 1))
        else:
            xlsx.write_workbook(literal_tables(), path, "quarterly", "2025Q3")
    assert one_line(failed.value)[0].startswith("no space left on the device holding ")
    del failed  # its traceback held the frames, and what they had open
    gc.collect()
    assert unraisable == []
    if workbook == "quarantine export":
        assert [p.name for p in full_disk.iterdir()] == ["filler"]  # no partial workbook


def test_an_error_raised_from_none_is_not_told_by_the_os_error_it_replaced() -> None:
    # a lock's try raises EAGAIN; the busy error raised `from None` in its place is the story
    try:
        try:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        except BlockingIOError:
            raise RuntimeError("another kesu run is writing /r/quarterly/2025Q3") from None
    except RuntimeError as busy:
        line, _ = one_line(busy)
    assert line == (
        "failed: RuntimeError: another kesu run is writing /r/quarterly/2025Q3 "
        "(run with --debug for the traceback)"
    )


@pytest.mark.parametrize("command", [["report", "quarterly", "2025Q3"], ["watch"]])
def test_report_rules_are_refused_before_prefect_starts(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command
) -> None:
    # the flow refused them, after Prefect had started (a server, a failed flow run)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # answers nothing
    monkeypatch.setenv("PREFECT_HOME", str(site / "prefect-home"))
    (site / "kesu.toml").write_text("[sla]\ndecision_days = 40\nextended_days = 30\n", "utf-8")
    assert cli.main([*command, "--warehouse", str(site / "wh")]) == 2
    line = said(capsys)
    assert "decision_days <= extended_days" in line and "kesu.toml" in line
    assert not (site / "prefect-home").exists()


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[disclosure]\ndate = 5\n", "[disclosure] date must be a date"),
        # a cause code and a typo: never grouped, silently, in the published table
        ("[disclosure]\ncategory_buckets = { '其他业务' = ['B08', 'C01', 'B8'] }\n",
         "[disclosure] category_buckets '其他业务': C01, B8 not among the business category codes"),
    ],
)  # fmt: skip
def test_a_wrong_disclosure_setting_is_refused_before_prefect_starts(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, toml, expected
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # answers nothing
    monkeypatch.setenv("PREFECT_HOME", str(site / "prefect-home"))
    (site / "kesu.toml").write_text(toml, "utf-8")
    assert cli.main(["report", "annual", "2025", "--warehouse", str(site / "wh")]) == 2
    line = said(capsys)
    assert line.startswith("kesu report: ") and f"kesu.toml: {expected}" in line, line
    assert not (site / "prefect-home").exists()


@pytest.mark.parametrize(
    ("toml", "channels", "day"),
    [
        # as a person types them: a TOML date, a list of channels
        ("date = 2026-03-31\nchannels = ['客服热线', '营业网点']", "客服热线、营业网点", "2026年3月31日"),
        ("date = '2026-03-31'\nchannels = [' 客服热线 ', '信函']", "客服热线、信函", "2026年3月31日"),
        ("date = 2026-04-01\nchannels = []", None, "2026年4月1日"),  # no channel: no sentence
        # the text to print, as given
        ("date = '2026年3月31日'\nchannels = '客服热线、营业网点'", "客服热线、营业网点", "2026年3月31日"),
        ("date = '二〇二六年三月三十一日'", "客服热线、营业网点、官方网站、手机银行、信函",
         "二〇二六年三月三十一日"),
    ],
)  # fmt: skip
def test_the_disclosure_closes_with_channels_and_date_as_chinese_text_writes_them(
    site: Path, toml: str, channels: str | None, day: str
) -> None:
    (site / "kesu.toml").write_text(f"[disclosure]\n{toml}\n", "utf-8")
    settings = load_settings(config=str(site / "kesu.toml"), environ={})
    text = disclosure.render(literal_tables(), "2025", 2, settings=settings.values["disclosure"])
    closing = text.split("特此公告。")
    if channels is None:
        assert "本行消费者投诉渠道" not in text
    else:
        assert f"\n本行消费者投诉渠道：{channels}。\n" in closing[0]
    assert closing[1] == f"\n\n本行\n{day}\n"


def test_debug_shows_the_traceback(site: Path) -> None:
    with pytest.raises(ConfigError):
        cli.main(["--debug", *ingest(site, "--landing", str(site / "nowhere"))])


def test_a_folder_that_is_not_a_date_does_not_stop_status(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (site / "landing" / "hotline" / "2025-13-01").mkdir()
    (site / "landing" / "hotline" / "2025-13-01" / "x.csv").write_text("a\n")
    (site / "landing" / "hotline" / "2025-07-01").mkdir()
    (site / "landing" / "hotline" / "2025-07-01" / "x.csv").write_text("a\n")
    argv = ["status", "--landing", str(site / "landing"), "--warehouse", str(site / "wh")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "2025-07-01" in out and "2025-13-01" not in out


def test_status_reads_the_configuration_it_is_given(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # it took no --config, so an s3:// warehouse whose [s3] options live in a named file could
    # not be read by it; a configuration named here must be the one read (here: refused)
    other = site / "elsewhere.toml"
    other.write_text("[s3]\naddressing_style = 'dns'\n", encoding="utf-8")
    argv = ["status", "--landing", str(site / "landing"), "--warehouse", str(site / "wh")]
    assert cli.main(argv) == 0  # ./kesu.toml absent: the defaults
    capsys.readouterr()
    assert cli.main([*argv, "--config", str(other)]) == 2
    assert "elsewhere.toml: [s3] addressing_style must be one of auto, path" in said(capsys)


def test_the_demo_key_serves_only_a_landing_zone_kesu_sample_marked(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KESU_PII_KEY")
    sample = site / "data" / "landing"
    sample.mkdir(parents=True)
    (sample / SAMPLE_MARKER).write_text("sample\n")
    key_path, created = ensure_demo_key(sample)
    assert created and key_path == site / "data" / "secrets" / "pii.key"
    # the marked landing zone, from any working directory: the demo key beside it
    monkeypatch.chdir(site / "landing")
    key = resolve_pii_key(load_settings(landing=str(sample), environ={}), environ={})
    assert key.is_demo and key.source == str(key_path)
    # another landing zone, from the directory that holds data/secrets/pii.key: no key
    monkeypatch.chdir(site)
    other = load_settings(landing=str(site / "landing"), environ={})
    with pytest.raises(ConfigError, match="serves only the landing zone it wrote"):
        resolve_pii_key(other, environ={})


def test_a_reader_that_goes_away_ends_the_command_quietly_as_a_shell_tool(tmp_path: Path) -> None:
    """`kesu status | head -1`: once the reader has gone, kesu said "Broken pipe: the warehouse"
    and exited 1. Now it ends as a tool killed by SIGPIPE would (141), saying nothing."""
    import subprocess
    from datetime import UTC, datetime

    from kesu.transforms.run_records import IngestRun
    from kesu.warehouse.ledger import new_run_id, record_run

    wh = Warehouse.at(tmp_path / "wh")
    started = datetime(2026, 1, 1, tzinfo=UTC)
    record_run(wh, IngestRun(new_run_id(started), date(2025, 7, 1), started, "completed"))
    kesu = Path(sys.executable).with_name("kesu")
    process = subprocess.Popen(
        [str(kesu), "status", "--warehouse", str(tmp_path / "wh")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before kesu writes its first line
    err = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert err == b""
