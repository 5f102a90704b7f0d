"""The staged-table suites, their Polars translation, and its equality with GX's own result."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kesu.expectations import compiled
from kesu.expectations.runner import FAILURES_SCHEMA, row_failures, summary, unexpected_rows
from kesu.expectations.suites import TABLES, headers, suite_for
from kesu.expectations.translate import failing_rows_expr
from kesu.transforms.columns import COLUMNS

SH = "Asia/Shanghai"
DT = pl.Datetime("us", SH)

SCHEMAS: dict[str, dict[str, Any]] = {
    "stg_hotline": {
        "call_id": pl.String, "call_start_at": DT, "queued_at": DT, "answered_at": DT,
        "hung_up_at": DT, "caller_token": pl.String, "caller_masked": pl.String,
        "service_mode": pl.String, "agent_id": pl.String, "call_type": pl.String,
        "inquiry_category": pl.String, "inquiry_topic": pl.String, "customer_mood": pl.String,
        "complaint_intent": pl.Boolean, "outcome": pl.String, "complaint_id": pl.String,
        "survey_satisfaction": pl.String, "branch_code": pl.String, "source_file": pl.String,
        "source_line": pl.Int64,
    },
    "stg_complaints": {
        "complaint_id": pl.String, "ticket_type": pl.String, "intake_channel": pl.String,
        "received_at": DT, "channel_label": pl.String, "channel_code": pl.String,
        "business_category_label": pl.String, "business_category_code": pl.String,
        "cause_label": pl.String, "cause_code": pl.String, "branch_code": pl.String,
        "customer_name_token": pl.String, "customer_name_masked": pl.String,
        "id_number_token": pl.String, "id_number_masked": pl.String,
        "contact_phone_token": pl.String, "contact_phone_masked": pl.String,
        "content_masked": pl.String, "status": pl.String, "extended": pl.Boolean,
        "excluded_days": pl.Int32, "closed_at": DT, "liability": pl.String,
        "original_complaint_id": pl.String, "callback_satisfaction": pl.String,
        "amount": pl.Decimal(18, 2), "updated_at": DT, "source_file": pl.String,
        "source_line": pl.Int64,
    },
    "stg_regulator_transfers": {
        "transfer_id": pl.String, "regulator": pl.String, "source": pl.String,
        "transferred_on": pl.Date, "due_on": pl.Date, "complainant_name_token": pl.String,
        "complainant_name_masked": pl.String, "contact_phone_token": pl.String,
        "contact_phone_masked": pl.String, "branch_label": pl.String, "branch_code": pl.String,
        "business_category_label": pl.String, "business_category_code": pl.String,
        "matter_masked": pl.String, "complaint_id": pl.String, "replied_on": pl.Date,
        "status": pl.String, "updated_at": DT, "source_file": pl.String, "source_line": pl.Int64,
    },
}  # fmt: skip


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 1, day, hour, minute)


def on(day: int) -> dt.date:
    return dt.date(2025, 1, day)


GOOD: dict[str, dict[str, Any]] = {
    "stg_hotline": {
        "call_id": "C1", "call_start_at": at(1, 9), "queued_at": at(1, 9),
        "answered_at": at(1, 9, 1), "hung_up_at": at(1, 9, 5), "caller_token": "tk-caller",
        "caller_masked": "138****0000", "service_mode": "人工", "agent_id": "A01",
        "call_type": "咨询", "inquiry_category": "信用卡", "inquiry_topic": "账单",
        "customer_mood": "正常", "complaint_intent": False, "outcome": "已解答",
        "complaint_id": None, "survey_satisfaction": "满意", "branch_code": "110001",
        "source_file": "hotline.csv", "source_line": 2,
    },
    "stg_complaints": {
        "complaint_id": "T1", "ticket_type": "投诉", "intake_channel": "客服热线",
        "received_at": at(1, 9), "channel_label": "柜面", "channel_code": "A01",
        "business_category_label": "借记卡", "business_category_code": "B0201",
        "cause_label": "服务态度", "cause_code": "C01", "branch_code": "110001",
        "customer_name_token": "tk-name", "customer_name_masked": "张*",
        "id_number_token": "tk-id", "id_number_masked": "1101**********0011",
        "contact_phone_token": "tk-phone", "contact_phone_masked": "138****0000",
        "content_masked": "客户反映……", "status": "已办结", "extended": False,
        "excluded_days": 0, "closed_at": at(3, 17), "liability": "有责",
        "original_complaint_id": None, "callback_satisfaction": "满意",
        "amount": Decimal("120.50"), "updated_at": at(3, 17), "source_file": "complaints.xlsx",
        "source_line": 2,
    },
    "stg_regulator_transfers": {
        "transfer_id": "R1", "regulator": "北京金融监管局", "source": "12378热线",
        "transferred_on": on(2), "due_on": on(17), "complainant_name_token": "tk-name",
        "complainant_name_masked": "李*", "contact_phone_token": "tk-phone",
        "contact_phone_masked": "139****1111", "branch_label": "北京分行",
        "branch_code": "110001", "business_category_label": "信用卡",
        "business_category_code": "B03", "matter_masked": "投诉事项……", "complaint_id": "T1",
        "replied_on": on(10), "status": "已反馈", "updated_at": at(10, 12),
        "source_file": "transfers.csv", "source_line": 2,
    },
}  # fmt: skip

KEY = {"stg_hotline": "call_id", "stg_complaints": "complaint_id",
       "stg_regulator_transfers": "transfer_id"}  # fmt: skip


def staged(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A staged frame with the table's exact schema; datetimes are read as Shanghai time."""
    schema = SCHEMAS[table]
    naive = {name: (pl.Datetime("us") if dtype == DT else dtype) for name, dtype in schema.items()}
    frame = pl.DataFrame(rows, schema=naive, orient="row")
    return frame.with_columns(pl.col(pl.Datetime("us")).dt.replace_time_zone(SH))


def rows_of(table: str, *changes: dict[str, Any]) -> list[dict[str, Any]]:
    """One good row per change, each with its own key and source line, then the change."""
    return [
        {**GOOD[table], KEY[table]: f"K{i}", "source_line": i + 2, **change}
        for i, change in enumerate(changes)
    ]


def failures_of(table: str, change: dict[str, Any]) -> set[tuple[str, str]]:
    """(rule, field) failures of a good row after one change, with a good row next to it."""
    frame = staged(table, rows_of(table, {}, change))
    failures = row_failures(frame, table)
    assert set(failures["row"].to_list()) <= {1}, "the untouched good row must pass"
    return set(failures.select("rule", "field").iter_rows())


def test_importing_suites_does_not_import_great_expectations() -> None:
    code = "import kesu.expectations.suites, sys; assert 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("table", TABLES)
def test_compiled_suites_are_what_gx_declares_now(table: str) -> None:
    # The Polars engine reads expectations/compiled/<table>.json; a suite changed in suites.py
    # (or a GX upgrade that changes a default) without regenerating the file fails here.
    assert compiled.path_of(table).read_text(encoding="utf-8") == compiled.render(table), (
        "stale compiled suite: run `python -m expectations.compiled`"
    )


def test_checking_rows_with_the_polars_engine_does_not_import_great_expectations(
    tmp_path: Path,
) -> None:
    frame = staged("stg_hotline", rows_of("stg_hotline", {}, {}))
    frame = pl.concat([frame, frame])  # the same call twice: unique_key fails on both rows
    frame.write_parquet(tmp_path / "f.parquet")
    code = (
        "import sys, polars as pl; from kesu.expectations.runner import row_failures; "
        f"f = row_failures(pl.read_parquet({str(tmp_path / 'f.parquet')!r}), 'stg_hotline'); "
        "assert f['rule'].to_list() == ['unique_key'] * 4, f; "
        "assert 'great_expectations' not in sys.modules, 'GX was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("table", TABLES)
def test_every_expectation_names_its_rule_fields_and_staged_columns(table: str) -> None:
    known_headers = {c.header for c in COLUMNS[table.removeprefix("stg_")]}
    for expectation in suite_for(table).expectations:
        meta = expectation.meta
        assert meta["rule"] in {"required", "in_set", "required_when", "order", "range",
                                "unique_key"}  # fmt: skip
        assert set(meta["fields"]) <= known_headers
        assert set(meta["columns"]) <= set(SCHEMAS[table])
        assert [headers(table)[c] for c in meta["columns"]] == meta["fields"]


@pytest.mark.parametrize("table", TABLES)
def test_suites_check_columns_staging_writes(table: str) -> None:
    from kesu.transforms.staging import STAGED_COLUMNS

    written = STAGED_COLUMNS[table.removeprefix("stg_")]
    assert list(SCHEMAS[table]) == written  # the frames below follow the staged schema
    for expectation in suite_for(table).expectations:
        assert set(expectation.meta["columns"]) <= set(written)


@pytest.mark.parametrize("table", TABLES)
def test_good_rows_produce_no_failure(table: str) -> None:
    frame = staged(table, rows_of(table, {}, {}, {}))
    assert row_failures(frame, table).is_empty()
    assert row_failures(frame, table).schema == FAILURES_SCHEMA


CASES = [
    # required: a missing caller number is reported on its token column, never quoted
    ("stg_hotline", {"caller_token": None, "caller_masked": None}, {("required", "主叫号码")}),
    # required: a missing JR/T code (label unresolved) on a transfer
    ("stg_regulator_transfers", {"business_category_code": None}, {("required", "业务类别")}),
    # required boolean
    ("stg_hotline", {"complaint_intent": None}, {("required", "投诉意向")}),
    # in_set: a status staging did not know
    ("stg_complaints", {"status": "已完成"}, {("in_set", "处理状态")}),
    # in_set: an optional enum may be missing ...
    ("stg_complaints", {"liability": None}, set()),
    # ... but not wrong
    ("stg_complaints", {"liability": "全责"}, {("in_set", "责任认定")}),
    # required + enum missing: one required failure, in_set ignores nulls
    ("stg_regulator_transfers", {"status": None}, {("required", "办理状态")}),
    # required_when: a complaint ticket needs its channel code ...
    ("stg_complaints", {"channel_code": None}, {("required_when", "业务办理渠道")}),
    # ... an 意见 ticket does not
    ("stg_complaints", {"ticket_type": "意见", "channel_code": None, "cause_code": None}, set()),
    # required_when: closed tickets need a closing time (withdrawn ones too) ...
    ("stg_complaints", {"status": "已撤诉", "closed_at": None}, {("required_when", "办结时间")}),
    # ... open ones do not
    ("stg_complaints", {"status": "处理中", "closed_at": None}, set()),
    # required_when: a call turned into a complaint needs the complaint id ...
    ("stg_hotline", {"outcome": "转投诉", "complaint_id": None}, {("required_when", "投诉编号")}),
    # ... a call without outcome gets only the required failure, not required_when
    ("stg_hotline", {"outcome": None}, {("required", "处理结果")}),
    # order: hung up before the call started
    ("stg_hotline", {"hung_up_at": at(1, 8, 59)}, {("order", "挂机时间、来电时间")}),
    # order: equal times are fine
    ("stg_hotline", {"hung_up_at": at(1, 9), "answered_at": at(1, 9)}, set()),
    # order: answered before queued
    ("stg_hotline", {"answered_at": at(1, 8)}, {("order", "应答时间、进入队列时间")}),
    # order ignored when one side is missing (never queued, self-service)
    ("stg_hotline", {"queued_at": None, "answered_at": at(1, 8)}, set()),
    # order: closed before received
    ("stg_complaints", {"closed_at": at(1, 8)}, {("order", "办结时间、受理时间")}),
    # order: due before transferred; replied before transferred
    ("stg_regulator_transfers", {"due_on": on(1)}, {("order", "办理期限、转办日期")}),
    ("stg_regulator_transfers", {"replied_on": on(1)}, {("order", "反馈日期、转办日期")}),
    # order ignored when not yet replied
    ("stg_regulator_transfers", {"replied_on": None, "status": "处理中"}, set()),
    # range: excluded days inside [0, 365] only, nulls allowed
    ("stg_complaints", {"excluded_days": 366}, {("range", "扣除天数")}),
    ("stg_complaints", {"excluded_days": -1}, {("range", "扣除天数")}),
    ("stg_complaints", {"excluded_days": 365}, set()),
    ("stg_complaints", {"excluded_days": None}, set()),
    # range: negative amounts, even by a cent; zero and missing are fine
    ("stg_complaints", {"amount": Decimal("-0.01")}, {("range", "涉及金额")}),
    ("stg_complaints", {"amount": Decimal("0.00")}, set()),
    ("stg_complaints", {"amount": None}, set()),
]


@pytest.mark.parametrize(("table", "change", "expected"), CASES)
def test_each_rule_catches_its_bad_case(
    table: str, change: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    assert failures_of(table, change) == expected


def test_reasons_name_the_header_and_the_offending_value() -> None:
    frame = staged(
        "stg_complaints",
        rows_of(
            "stg_complaints",
            {"status": "已完成"},  # not in set
            {"status": "已办结", "closed_at": None},  # required when closed
            {"customer_name_token": None, "amount": Decimal("-5.00")},  # PII never quoted
        ),
    )
    reasons = row_failures(frame, "stg_complaints")["reason"].to_list()
    assert reasons == [
        '处理状态 (status): "已完成" is not one of 已受理/处理中/已办结/已撤诉',
        "办结时间 (closed_at) is missing, required when 处理状态 (status) is one of 已办结/已撤诉",
        "涉及金额 (amount) -5.00 is below 0",
    ]
    hotline = staged("stg_hotline", rows_of("stg_hotline", {"hung_up_at": at(1, 8, 55)}))
    assert row_failures(hotline, "stg_hotline")["reason"].to_list() == [
        "挂机时间 (hung_up_at) 2025-01-01 08:55:00 is before 来电时间 (call_start_at) "
        "2025-01-01 09:00:00"
    ]


def test_duplicate_call_id_flags_every_duplicated_row() -> None:
    # rows 0, 1 and 3 share C1; row 2 is alone
    rows = [{**GOOD["stg_hotline"], "call_id": key} for key in ("C1", "C1", "C2", "C1")]
    failures = row_failures(staged("stg_hotline", rows), "stg_hotline")
    assert failures["row"].to_list() == [0, 1, 3]
    assert set(failures["rule"]) == {"unique_key"}
    assert failures["reason"][0] == '通话编号 (call_id) "C1" appears more than once'


def test_compound_key_needs_both_columns_equal() -> None:
    rows = rows_of(
        "stg_complaints",
        {"complaint_id": "T1"},  # duplicated with the next row: same id, same update time
        {"complaint_id": "T1"},
        {"complaint_id": "T1", "updated_at": at(4, 9)},  # a later version of T1: fine
        {"complaint_id": "T2"},  # another ticket at the same update time: fine
    )
    failures = row_failures(staged("stg_complaints", rows), "stg_complaints")
    assert failures.select("row", "rule", "field").rows() == [
        (0, "unique_key", "投诉编号、更新时间"),
        (1, "unique_key", "投诉编号、更新时间"),
    ]
    assert failures["reason"][0] == (
        '投诉编号 (complaint_id) "T1" appears more than once with the same '
        "更新时间 (updated_at) 2025-01-03 17:00:00"
    )


MIXED: dict[str, list[dict[str, Any]]] = {
    "stg_hotline": [
        {},
        {"caller_token": None, "service_mode": "机器"},  # required + in_set
        {"outcome": "转投诉", "complaint_id": None},  # required_when
        {"hung_up_at": at(1, 8), "answered_at": at(1, 8, 30)},  # both orders violated
        {"queued_at": None, "answered_at": None, "call_start_at": None},  # required, no order
        {"call_id": "K0"},  # duplicates row 0
    ],
    "stg_complaints": [
        {},
        {"ticket_type": "咨询", "channel_code": None},  # in_set; ticket not 投诉: no required_when
        {"cause_code": None, "business_category_code": None},  # two required_when
        {"status": "已办结", "closed_at": at(1, 8)},  # closed before received
        {"excluded_days": 400, "amount": Decimal("-1.00")},  # two ranges
        {"status": None, "closed_at": None, "liability": "x"},  # required, in_set
        {"complaint_id": "K0"},  # same key as row 0
    ],
    "stg_regulator_transfers": [
        {},
        {"regulator": None, "source": "电话"},  # required, in_set
        {"due_on": on(1), "replied_on": on(1)},  # both orders
        {"transferred_on": None},  # required; orders ignored
        {"transfer_id": "K0"},  # same key as row 0
        {"transfer_id": "K0", "updated_at": at(11, 9)},  # a later version: fine
    ],
}


@pytest.mark.parametrize("table", TABLES)
def test_polars_engine_equals_gx_on_a_mixed_frame(table: str) -> None:
    frame = staged(table, rows_of(table, *MIXED[table]))
    polars_result = row_failures(frame, table, engine="polars")
    gx_result = row_failures(frame, table, engine="gx")
    assert polars_result.height >= len(MIXED[table]) - 1
    assert polars_result.equals(gx_result)


def test_unsupported_expectation_type_is_refused() -> None:
    import great_expectations as gx

    regex = gx.expectations.ExpectColumnValuesToMatchRegex(column="call_id", regex="^C")
    with pytest.raises(NotImplementedError, match="expect_column_values_to_match_regex"):
        failing_rows_expr(regex)


def test_row_conditions_follow_pandas_null_semantics() -> None:
    # != and not-in keep rows whose condition column is null (numpy: nan != x); ==, in drop them
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    frame = pl.DataFrame({"on": ["a", "b", None], "value": [None, None, None]},
                         schema={"on": pl.String, "value": pl.String})  # fmt: skip
    conditions = [
        Column("on") == "a",
        Column("on") != "a",
        Column("on").is_in(["a"]),
        Column("on").is_not_in(["a"]),
        Column("on").is_null(),
        (Column("on") == "a") | Column("on").is_null(),
        (Column("on") != "a") & Column("on").is_not_null(),
    ]
    suite = gx.ExpectationSuite(
        name="conditions",
        expectations=[
            gx.expectations.ExpectColumnValuesToNotBeNull(
                column="value", row_condition=c, meta={"case": i}
            )
            for i, c in enumerate(conditions)
        ],
    )
    polars_rows = [s.to_list() for s in unexpected_rows(frame, suite, "polars")]
    assert polars_rows == [s.to_list() for s in unexpected_rows(frame, suite, "gx")]
    assert polars_rows[1] == [1, 2]


def test_summary_counts_failures_rows_and_rules() -> None:
    frame = staged("stg_hotline", rows_of("stg_hotline", *MIXED["stg_hotline"]))
    counts = summary(row_failures(frame, "stg_hotline"))
    assert counts["failing_rows"] == 6
    assert counts["by_rule"]["order"] == 2
    assert counts["failures"] == sum(counts["by_rule"].values())


# --- property: both engines agree on random complaint frames -------------------------------

_TIMES = [at(d, h) for d in (1, 2) for h in (8, 9, 17)]


def _maybe(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.sampled_from(values))


def _enum(table: str, name: str) -> st.SearchStrategy[Any]:
    feed = table.removeprefix("stg_")
    allowed = next(c.values for c in COLUMNS[feed] if c.name == name)
    return _maybe([*allowed, "未知", ""])  # inside the set, outside it, or missing


def _complaint_row() -> st.SearchStrategy[dict[str, Any]]:
    table = "stg_complaints"
    enums = ("ticket_type", "intake_channel", "status", "liability", "callback_satisfaction")
    return st.fixed_dictionaries(
        {
            **{name: _enum(table, name) for name in enums},
            "complaint_id": _maybe(["T1", "T2", "T3"]),
            "received_at": _maybe(_TIMES),
            "closed_at": _maybe(_TIMES),
            "updated_at": _maybe(_TIMES[:2]),
            "channel_code": _maybe(["A01"]),
            "business_category_code": _maybe(["B01"]),
            "cause_code": _maybe(["C01"]),
            "branch_code": _maybe(["110001"]),
            "excluded_days": _maybe([-1, 0, 30, 365, 366]),
            "amount": _maybe([Decimal("-0.01"), Decimal("0.00"), Decimal("99.99")]),
        }
    )


def _hotline_row() -> st.SearchStrategy[dict[str, Any]]:
    table = "stg_hotline"
    enums = ("service_mode", "call_type", "outcome", "survey_satisfaction", "customer_mood")
    return st.fixed_dictionaries(
        {
            **{name: _enum(table, name) for name in enums},
            "call_id": _maybe(["C1", "C2", "C3"]),
            "call_start_at": _maybe(_TIMES),
            "queued_at": _maybe(_TIMES),
            "answered_at": _maybe(_TIMES),
            "hung_up_at": _maybe(_TIMES),
            "caller_token": _maybe(["tk"]),
            "complaint_intent": st.one_of(st.none(), st.booleans()),
            "complaint_id": _maybe(["T1"]),
        }
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    complaints=st.lists(_complaint_row(), min_size=0, max_size=12),
    calls=st.lists(_hotline_row(), min_size=0, max_size=12),
    kept=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_engines_agree_on_random_frames(
    complaints: list[dict[str, Any]], calls: list[dict[str, Any]], kept: list[bool]
) -> None:
    for table, changes in (("stg_complaints", complaints), ("stg_hotline", calls)):
        frame = staged(table, [{**GOOD[table], **change} for change in changes])
        polars_result = row_failures(frame, table, engine="polars")
        assert polars_result.equals(row_failures(frame, table, engine="gx"))
        # validating some rows, the others masked, is validating those rows alone
        among = pl.Series(kept[: frame.height], dtype=pl.Boolean)
        alone = row_failures(frame.filter(among), table, engine="polars")
        positions = among.arg_true().cast(pl.UInt32)
        alone = alone.with_columns(positions.gather(alone["row"]).alias("row"))
        assert row_failures(frame, table, engine="polars", among=among).equals(alone)


@pytest.mark.parametrize("table", TABLES)
def test_engines_agree_on_the_rows_they_are_given(table: str) -> None:
    frame = staged(table, rows_of(table, *MIXED[table]))
    among = pl.Series([i % 2 == 0 or i == frame.height - 1 for i in range(frame.height)])
    polars_result = row_failures(frame, table, engine="polars", among=among)
    assert polars_result.equals(row_failures(frame, table, engine="gx", among=among))
    assert set(polars_result["row"]) <= set(among.arg_true())
    assert polars_result.height < row_failures(frame, table, engine="polars").height
