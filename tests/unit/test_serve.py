"""kesu serve: the deployments' names, schedules and parameters (built, not served), and the
day or quarter a scheduled run derives from its scheduled time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from kesu.flows.schedule import month_just_ended, previous_drop_date, quarter_just_ended

CHINA = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("scheduled", "drop"),
    [
        (datetime(2025, 7, 2, 2, 0, tzinfo=CHINA), date(2025, 7, 1)),  # the 02:00 run: yesterday
        (datetime(2025, 7, 1, 18, 0, tzinfo=UTC), date(2025, 7, 1)),  # same instant, told in UTC
        (datetime(2025, 3, 1, 2, 0, tzinfo=CHINA), date(2025, 2, 28)),  # across a month end
        (datetime(2025, 1, 1, 2, 0, tzinfo=CHINA), date(2024, 12, 31)),  # and a year end
    ],
)
def test_nightly_ingests_the_day_before_its_scheduled_start_china_time(scheduled, drop):
    assert previous_drop_date(scheduled) == drop  # a late start changes nothing: no clock read


@pytest.mark.parametrize(
    ("scheduled", "quarter"),
    [
        (datetime(2026, 1, 5, 6, 0, tzinfo=CHINA), "2025Q4"),
        (datetime(2025, 4, 5, 6, 0, tzinfo=CHINA), "2025Q1"),
        (datetime(2025, 7, 5, 6, 0, tzinfo=CHINA), "2025Q2"),
        (datetime(2025, 10, 5, 6, 0, tzinfo=CHINA), "2025Q3"),
        (datetime(2025, 3, 31, 22, 0, tzinfo=UTC), "2025Q1"),  # 1 April 06:00 in China
        (datetime(2025, 3, 31, 15, 0, tzinfo=UTC), "2024Q4"),  # still 31 March in China
    ],
)
def test_quarterly_report_covers_the_quarter_that_just_ended(scheduled, quarter):
    assert quarter_just_ended(scheduled) == quarter


@pytest.mark.parametrize(
    ("scheduled", "month"),
    [
        (datetime(2025, 7, 3, 6, 0, tzinfo=CHINA), "2025-06"),  # the 06:00 run on the 3rd
        (datetime(2026, 1, 3, 6, 0, tzinfo=CHINA), "2025-12"),  # across a year end
        (datetime(2025, 2, 28, 22, 0, tzinfo=UTC), "2025-02"),  # 1 March 06:00 in China
        (datetime(2025, 2, 28, 15, 0, tzinfo=UTC), "2025-01"),  # still 28 February in China
    ],
)
def test_monthly_report_covers_the_month_that_just_ended(scheduled, month):
    assert month_just_ended(scheduled) == month


def test_a_naive_scheduled_time_is_refused():
    with pytest.raises(ValueError, match="time zone"):
        previous_drop_date(datetime(2025, 7, 2, 2, 0))


def test_deployments_register_with_their_schedules_and_parameters(tmp_path: Path, monkeypatch):
    from kesu.flows.serve import deployments, locations

    monkeypatch.delenv("KESU_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no kesu.toml here
    where = locations(landing="land", warehouse=str(tmp_path / "wh"), reports="rep")
    assert where == {  # relative flags resolved now, not in whatever process runs the flow
        "landing_dir": str(tmp_path / "land"),
        "warehouse_dir": str(tmp_path / "wh"),
        "out": str(tmp_path / "rep"),
    }
    built = {f"{d.flow_name}/{d.name}": d for d in deployments(where)}
    assert sorted(built) == [
        "backfill/kesu-backfill",
        "maintain/kesu-maintain",
        "monthly-report/kesu-monthly-report",
        "nightly/kesu-nightly",
        "quarterly-report/kesu-quarterly-report",
        "report/kesu-report",
    ]

    def schedules(name: str) -> list[tuple[str, str]]:
        return [(s.schedule.cron, s.schedule.timezone) for s in built[name].schedules]

    assert schedules("nightly/kesu-nightly") == [("0 2 * * *", "Asia/Shanghai")]
    assert schedules("quarterly-report/kesu-quarterly-report") == [
        ("0 6 5 1,4,7,10 *", "Asia/Shanghai")
    ]
    assert schedules("monthly-report/kesu-monthly-report") == [("0 6 3 * *", "Asia/Shanghai")]
    assert schedules("maintain/kesu-maintain") == [("0 4 * * 0", "Asia/Shanghai")]  # weekly, Sunday
    assert schedules("backfill/kesu-backfill") == schedules("report/kesu-report") == []  # on demand

    ingest = {"landing_dir": where["landing_dir"], "warehouse_dir": where["warehouse_dir"]}
    reporting = {"out": where["out"], "warehouse_dir": where["warehouse_dir"]}
    # no drop_date (derived when it runs); the watch list after each ingest, under the reports
    watch = {"watch": True, "reports_dir": where["out"]}
    assert built["nightly/kesu-nightly"].parameters == ingest | watch
    assert built["backfill/kesu-backfill"].parameters == ingest | {"workers": 2}
    assert built["report/kesu-report"].parameters == reporting
    assert built["quarterly-report/kesu-quarterly-report"].parameters == reporting
    assert built["monthly-report/kesu-monthly-report"].parameters == reporting
    assert built["maintain/kesu-maintain"].parameters == {"warehouse_dir": where["warehouse_dir"]}

    def required(name: str) -> list[str]:  # what `prefect deployment run -p` must supply
        return sorted(built[name]._parameter_openapi_schema.required or [])

    assert (
        required("nightly/kesu-nightly") == required("quarterly-report/kesu-quarterly-report") == []
    )
    assert required("backfill/kesu-backfill") == ["end", "start"]
    assert required("report/kesu-report") == ["kind", "period"]
    assert (
        built["nightly/kesu-nightly"].entrypoint == "kesu.flows.ingest.nightly"
    )  # by module: any cwd


@pytest.mark.parametrize(
    ("setting", "refusal"),
    [
        # a mistyped landing zone: registered as every deployment's default, it failed at 02:00
        (["--landing", "nowhere"], "landing zone {tmp}/nowhere does not exist"),
        # accepted by `kesu ingest`, refused by the nightly's watch list and by every report
        ("[sla]\ndecision_days = 40\nextended_days = 30\n", "[sla] needs 0 < decision_days"),
        # printed as given into the annual disclosure ("5"), or a bucket silently never grouped
        ("[disclosure]\ndate = 5\n", "[disclosure] date must be a date"),
        (
            "[disclosure]\ncategory_buckets = { '其他业务' = ['B8'] }\n",
            "[disclosure] category_buckets '其他业务': B8 not among the business category codes",
        ),
        (
            "[reference]\nbranches = 'gone.csv'\n",
            "reference file {tmp}/gone.csv ([reference] branches)",
        ),
        ("", "no key for tokenizing personal data"),  # KESU_PII_KEY unset
    ],
)
def test_serve_refuses_in_one_line_what_its_runs_would_refuse(
    setting, refusal, tmp_path: Path, monkeypatch, capsys
):
    """Before Prefect starts: the API given here answers nothing, so only a refusal is quick."""
    from kesu.flows import cli

    for name in ("KESU_CONFIG", "KESU_LANDING", "KESU_WAREHOUSE", "KESU_REPORTS", "KESU_PII_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "landing").mkdir()
    if refusal != "no key for tokenizing personal data":
        monkeypatch.setenv("KESU_PII_KEY", "serve-test-key-0123456789abcdef")
    argv = ["serve", "--landing", "landing", "--warehouse", "wh"]
    if isinstance(setting, list):
        argv += setting
    else:
        (tmp_path / "kesu.toml").write_text(setting, encoding="utf-8")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kesu serve: ") and err.count("\n") == 1, err
    assert refusal.format(tmp=tmp_path) in err
    assert not (tmp_path / "prefect-home").exists()  # no Prefect server was started
