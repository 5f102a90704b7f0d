"""Staging rules over literal rows: headers, labels, branches, duplicates, personal data."""

from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kesu.transforms import parsing, staging
from kesu.transforms.lookups import Lookups, branch_lookup, label_lookup
from kesu.transforms.quarantine import QUARANTINE_LEAD_SCHEMA, row_problems, split
from kesu.transforms.staging import (
    STAGED_COLUMNS,
    StagingContext,
    check_headers,
    duplicate_keys,
    stage,
    staging_plan,
)
from polars.testing import assert_frame_equal

CODES = pl.DataFrame(
    {
        "axis": ["A", "A", "A", "B", "B", "C", "C"],
        "code": ["A0199", "A010399", "A010303", "B03", "B99", "C01", "C99"],
        "name": ["其他", "其他", "移动客户端", "信用卡", "其他", "服务态度及服务质量", "其他"],
    }
)
LABELS = pl.DataFrame(
    {"axis": ["A", "B"], "label": ["手机银行", "信用卡业务"], "code": ["A010303", "B03"]}
)
BRANCHES = pl.DataFrame({"branch_code": ["0101"], "branch_name": ["金泉银行辽宁省分行"]})
QUARANTINE = "quarantine"  # these cases are about the rule that holds an unknown label
CTX = StagingContext(
    b"k" * 32, Lookups(label_lookup(CODES, LABELS), branch_lookup(BRANCHES), QUARANTINE)
)


def complaint(**overrides):
    row = {
        "complaint_id": "T1",
        "ticket_type": "投诉",
        "intake_channel": "客服热线",
        "received_at": "2025-01-01 10:00:00",
        "channel": "手机银行",
        "business_category": "B03",
        "cause": "C01",
        "branch_code": "0101",
        "customer_name": "张三",
        "id_number": "11010519491231002X",
        "contact_phone": "13812345678",
        "content": "张三反映13812345678收到催收短信",
        "status": "已受理",
        "extended": "否",
        "excluded_days": "0",
        "closed_at": None,
        "liability": None,
        "original_complaint_id": None,
        "callback_satisfaction": None,
        "amount": "100.00",
        "updated_at": "2025-01-01 10:00:00",
    }
    return row | overrides


def frame(rows):
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).with_columns(
        pl.int_range(2, len(rows) + 2, dtype=pl.Int64).alias("_line")
    )


def test_label_lookup_accepts_codes_names_and_local_labels_but_not_ambiguous_names():
    lookup = label_lookup(CODES, LABELS)
    assert lookup["B"]["B03"] == lookup["B"]["信用卡"] == lookup["B"]["信用卡业务"] == "B03"
    # A's 其他 is both A0199 and A010399: a person has to decide, so it maps to neither.
    assert "其他" not in lookup["A"]
    assert lookup["B"]["其他"] == "B99"


def test_branch_by_code_or_full_name():
    assert branch_lookup(BRANCHES) == {"0101": "0101", "金泉银行辽宁省分行": "0101"}


def test_headers_in_any_order_and_what_is_missing_or_unknown():
    check = check_headers("regulator_transfers", ["更新时间", "转办单号", "备注", "转办单号#2"])
    assert check.rename == {"更新时间": "updated_at", "转办单号": "transfer_id"}
    assert "转办机构" in check.missing_required and "来源" in check.missing_optional
    assert check.unknown == ["备注"] and check.repeated == ["转办单号"]


def test_a_good_complaint_stages_typed_and_tokenized():
    staged = stage("complaints", frame([complaint()]), "c.csv", CTX)
    row = staged.staged.row(0, named=True)
    assert staged.staged.columns == STAGED_COLUMNS["complaints"]
    assert staged.issues.height == 0
    assert (row["channel_code"], row["business_category_code"], row["cause_code"]) == (
        "A010303",
        "B03",
        "C01",
    )
    assert row["customer_name_masked"] == "张*" and row["contact_phone_masked"] == "138****5678"
    assert row["content_masked"] == "张*反映138****5678收到催收短信"
    assert row["source_file"] == "c.csv" and row["source_line"] == 2


@pytest.mark.parametrize(
    ("overrides", "rule", "field"),
    [
        ({"business_category": "银行卡"}, "unknown_label", "业务类别"),  # debit or credit? unknown
        ({"branch_code": "9999"}, "unknown_branch", "机构代码"),
        ({"received_at": "2025-13-01 10:00:00"}, "unparseable", "受理时间"),
        ({"amount": "12.345"}, "unparseable", "涉及金额"),
        ({"extended": "Y"}, "unparseable", "是否延期"),
    ],
)
def test_each_staging_rule_reports_field_rule_and_value(overrides, rule, field):
    staged = stage("complaints", frame([complaint(**overrides)]), "c.csv", CTX)
    issue = staged.issues.row(0, named=True)
    assert (issue["row"], issue["rule"], issue["field"]) == (0, rule, field)
    assert next(iter(overrides.values())) in issue["reason"]


def test_duplicate_key_keeps_the_first_and_points_back_to_it():
    # Same ticket version twice (same id and 更新时间) in two files: the second is the repeat.
    first = stage("complaints", frame([complaint()]), "a.csv", CTX).staged
    again = stage("complaints", frame([complaint()]), "b.csv", CTX).staged
    later = stage("complaints", frame([complaint(updated_at="2025-01-02 09:00:00")]), "b.csv", CTX)
    dups = duplicate_keys(pl.concat([first, again, later.staged]), "complaints")
    assert dups["row"].to_list() == [1]  # the later version (row 2) is a new version, not a repeat
    assert "a.csv line 2" in dups["reason"][0]


def test_an_id_pasted_with_an_invisible_character_is_the_same_id():
    # 投诉编号 copied from a web page carries a zero-width space: the same ticket version again,
    # a repeat, not a ticket of its own; an id of nothing but a BOM is a missing id.
    first = stage("complaints", frame([complaint()]), "a.csv", CTX).staged
    again = stage("complaints", frame([complaint(complaint_id="T1\u200b")]), "b.csv", CTX).staged
    assert again["complaint_id"].to_list() == ["T1"]
    dups = duplicate_keys(pl.concat([first, again]), "complaints")
    assert dups["row"].to_list() == [1]
    none = stage("complaints", frame([complaint(complaint_id="\ufeff\u200b")]), "c.csv", CTX)
    assert none.staged["complaint_id"].to_list() == [None]


def test_split_accounts_for_every_row_and_masks_quarantined_personal_data():
    rows = [complaint(), complaint(complaint_id="T2", business_category="银行卡")]
    staged = stage("complaints", frame(rows), "c.csv", CTX)
    failures = pl.DataFrame(
        {"row": [1], "field": ["业务类别"], "rule": ["required_when"], "reason": ["missing"]},
        schema={"row": pl.UInt32, "field": pl.String, "rule": pl.String, "reason": pl.String},
    )
    problems = row_problems(staged.issues, failures)
    loaded, bad = split(staged.staged, staged.masked_source, problems)
    assert loaded.height + bad.height == 2
    assert loaded["complaint_id"].to_list() == ["T1"]
    # The expectation's "missing" on a field staging already explained is not repeated.
    assert bad["rule"][0] == "unknown_label"
    assert bad["customer_name"][0] == "张*" and bad["id_number"][0] == "1101**********002X"
    assert "13812345678" not in str(bad.row(0))
    # its lead columns are those a review reads back, also for a drop with nothing held
    lead = bad.select(bad.columns[: len(QUARANTINE_LEAD_SCHEMA)])
    assert dict(lead.schema) == QUARANTINE_LEAD_SCHEMA


def _issues(rows):
    return pl.DataFrame(rows, schema=["row", "field", "rule", "reason"], orient="row").cast(
        {"row": pl.UInt32}
    )


def test_a_misshapen_record_shows_only_its_shape_problem_and_withholds_its_values():
    # The record lost a field before 联系电话, so the phone number slid into 办结时间: quoting
    # that "unparseable date" would print the number, and every other column is misplaced too.
    staged = stage("complaints", frame([complaint(closed_at="13812345678")]), "c.csv", CTX)
    issues = pl.concat(
        [
            staged.issues,
            _issues([(0, "(record)", "record_shape", "the record has only 20 of the 21 fields")]),
        ]
    )
    problems = row_problems(issues, _issues([]))
    _, bad = split(staged.staged, staged.masked_source, problems)
    row = bad.row(0, named=True)
    assert row["rule"] == "record_shape" and "13812345678" not in row["reason"]
    assert row["complaint_id"] == "T1"  # the id still leads to the record
    assert row["closed_at"] is None and row["content"] is None


@pytest.mark.parametrize(
    ("complaint_id", "kept"),
    [
        ("T1", "T1"),  # an id: it leads to the ticket
        ("CP-001/2", "CP-001/2"),  # letters, digits and - / are an id's
        ("KF13812345678", "KF13812345678"),  # digits glued to a letter: an id's, as everywhere
        ("岳灵珊", None),  # the next line of an unclosed 投诉内容 quote starts with the name
        ("卫十五要求退款", None),  # a comma in 投诉内容 shifted its text under 投诉编号
        ("T1 张三", None),  # a space: two fields run together
        ("62345678", None),  # 7+ digits not glued to a letter: a local phone number
        ("13812345678", None),  # masked by staging to 138****5678, which is no id either
        ("T" * 41, None),  # longer than any id
    ],
)
def test_a_misshapen_record_keeps_an_id_only_if_it_looks_like_one(complaint_id, kept):
    staged = stage("complaints", frame([complaint(complaint_id=complaint_id)]), "c.csv", CTX)
    issues = _issues([(0, "(record)", "record_shape", "the record has more fields than the 21")])
    _, bad = split(staged.staged, staged.masked_source, row_problems(issues, _issues([])))
    assert bad["complaint_id"].to_list() == [kept]


def test_reasons_never_quote_a_phone_or_id_number_in_clear():
    # Whatever rule quoted it, a number shaped like a mobile or resident ID is masked; a call id
    # that merely contains digits stays readable.
    problems = row_problems(
        _issues(
            [
                (0, "挂机时间", "unparseable", "挂机时间: not a date-time: 13812345678"),
                (1, "通话编号", "duplicate_key", "通话编号 C2025070100001 repeats line 2"),
                (2, "受理时间", "unparseable", "受理时间: 11010519491231002X"),
            ]
        ),
        _issues([]),
    )
    assert problems["reason"].to_list() == [
        "挂机时间: not a date-time: 138****5678",
        "通话编号 C2025070100001 repeats line 2",
        "受理时间: 1101**********002X",
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "masked"),
    [
        # a phone typed where no personal data belongs: the row is held, the value masked
        ({"original_complaint_id": "138.3333.4444"}, "原投诉编号", "138****4444"),
        ({"complaint_id": "138 - 6666 - 7777"}, "投诉编号", "138****7777"),
        ({"channel": "１３８５５５５６６６６"}, "业务办理渠道", "138****6666"),
        ({"branch_code": "110105 19491231 002X"}, "机构代码", "1101**********002X"),
        ({"status": "6222 0212 3456 7890 128"}, "处理状态", "6222****0128"),
        ({"received_at": "1385555-6666"}, "受理时间", "138****6666"),
        # spaces around it, as exported: still found
        ({"original_complaint_id": " \t13833334444 "}, "原投诉编号", "138****4444"),
        # a label is no id: a letter before the number is like any other character
        ({"business_category": "Tel13912345614"}, "业务类别", "Tel139****5614"),
        # 0086 glued on, and a card in groups of 6 and 13, in an id column
        ({"original_complaint_id": "008613912345613"}, "原投诉编号", "139****5613"),
        ({"original_complaint_id": "622202-1234567890128"}, "原投诉编号", "6222****0128"),
    ],
)
def test_personal_data_in_any_column_is_held_and_masked(overrides, field, masked):
    staged = stage("complaints", frame([complaint(**overrides)]), "c.csv", CTX)
    problems = row_problems(staged.issues, _issues([]))
    loaded, bad = split(staged.staged, staged.masked_source, problems)
    assert loaded.height == 0 and bad.height == 1
    assert field in bad["field"][0]
    clear = next(iter(overrides.values()))
    for frame_ in (bad, staged.staged, staged.masked_source):
        assert not [c for c in frame_.columns if clear in str(frame_[c].to_list())]
    name = next(iter(overrides))
    assert bad[name][0] == masked


@pytest.mark.parametrize(
    ("amount", "masked"),
    [
        # a phone, a card passing the Luhn check, an ID number typed as 涉及金额: an amount
        # parses from each (the department's totals were off by billions), none may load
        ("13912345678", "139****5678"),
        ("4111111111111111", "4111****1111"),
        ("11010519491231002X", "1101**********002X"),
        ("110105194912310021", "1101**********0021"),
        ("4111 1111 1111 1111", "4111****1111"),
    ],
)
def test_personal_data_in_the_amount_is_held_as_personal_data_not_loaded(amount, masked):
    staged = stage("complaints", frame([complaint(amount=amount)]), "c.csv", CTX)
    loaded, bad = split(
        staged.staged, staged.masked_source, row_problems(staged.issues, _issues([]))
    )
    assert loaded.height == 0
    # the same rule and reason as a phone in any text column, and no second "unparseable"
    assert bad.select("field", "rule").row(0) == ("涉及金额", "personal_data")
    assert bad["reason"][0] == f"涉及金额 (amount): {staging.PERSONAL_DATA}"
    assert bad["amount"][0] == masked
    assert staged.staged["amount"][0] is None
    for frame_ in (bad, staged.staged, staged.masked_source):
        assert not [r for r in frame_.rows() if amount in str(r)]


@pytest.mark.parametrize(
    "amount",
    [
        "100.00",
        "1234567.89",  # seven digits of yuan: an amount, not a local phone number
        "1,234,567,890.00",
        "6222021234567890",  # fails the Luhn check: no card for the detector, loads as written
    ],
)
def test_an_amount_without_personal_data_loads(amount):
    staged = stage("complaints", frame([complaint(amount=amount)]), "c.csv", CTX)
    assert staged.issues.is_empty()
    assert staged.staged["amount"][0] is not None


def test_the_rows_own_name_and_a_phone_in_the_amount_are_one_personal_data_problem():
    rows = [complaint(customer_name="张三丰", amount=a) for a in ("张三丰", "13912345678", "9")]
    staged = stage("complaints", frame(rows), "c.csv", CTX)
    held = staged.issues.filter(pl.col("rule") == "personal_data")
    assert held["row"].to_list() == [0, 1]
    assert staged.masked_source["amount"].to_list() == ["张*", "139****5678", "9"]


def test_an_id_glued_to_latin_letters_loads_in_an_id_column_and_free_text_is_masked():
    # in an id column, digits glued to a letter are the id (an agent id KF + 11 digits); in free
    # text a letter is like any other character before a phone or an ID number
    content = "客户TEL13912345610，身份证号ID11010519491231011X，电话139/1234/5621"
    row = complaint(original_complaint_id="KF13812345678", content=content)
    staged = stage("complaints", frame([row]), "c.csv", CTX)
    assert staged.issues.is_empty()
    assert staged.staged["original_complaint_id"][0] == "KF13812345678"
    assert staged.staged["content_masked"][0] == (
        "客户TEL139****5610，身份证号ID1101**********011X，电话139****5621"
    )


def test_only_the_row_with_personal_data_in_a_column_is_held():
    rows = [complaint(complaint_id=f"C{i}", original_complaint_id=f"C{i - 1}") for i in range(3)]
    rows[1]["original_complaint_id"] = "13833334444"
    staged = stage("complaints", frame(rows), "c.csv", CTX)
    loaded, bad = split(
        staged.staged, staged.masked_source, row_problems(staged.issues, _issues([]))
    )
    assert loaded["complaint_id"].to_list() == ["C0", "C2"]
    assert loaded["original_complaint_id"].to_list() == ["C-1", "C1"]
    assert bad["original_complaint_id"].to_list() == ["138****4444"]


def test_a_long_column_of_few_values_is_checked_by_its_distinct_values(monkeypatch):
    """Past `REPEATS_SAMPLE` rows, a column whose first values repeat is checked by its distinct
    values: a phone far past the sample is still found, and the result is the row-by-row one."""
    rows = [complaint(complaint_id=f"C{i}", original_complaint_id=f"P{i % 5}") for i in range(3000)]
    rows[2900]["original_complaint_id"] = " 13833334444"  # after the sample; padded
    rows[2950]["original_complaint_id"] = None
    source = frame(rows)
    assert staging._repeats_much(source["original_complaint_id"])
    by_distinct = stage("complaints", source, "c.csv", CTX)
    monkeypatch.setattr(staging, "REPEATS_SAMPLE", 10_000)  # every row tested, as before
    by_row = stage("complaints", source, "c.csv", CTX)
    assert_frame_equal(by_distinct.staged, by_row.staged)
    assert_frame_equal(by_distinct.issues, by_row.issues)
    assert_frame_equal(by_distinct.masked_source, by_row.masked_source)
    held = by_distinct.issues.filter(pl.col("rule") == "personal_data")
    assert held["row"].to_list() == [2900]
    assert by_distinct.masked_source["original_complaint_id"][2900] == "138****4444"


def test_a_long_files_dates_parsed_as_written_stage_as_cleaned_first(monkeypatch):
    """A long file's dates and date-times are parsed as written (`parsing.PARSED_AS_WRITTEN`):
    the same rows and issues as a short file's, cleaned first; the held text keeps the padding
    of a value that parsed, and a value that did not parse is quoted clean and masked."""
    written = [" 2025-01-01 10:00:00", "2025/01/01 10:00 ", "1385555-6666", "", None, "昨天"]
    rows = [
        complaint(complaint_id=f"C{i}", received_at=w, closed_at=w)
        for i, w in enumerate(written * 3)
    ]
    source = frame(rows)
    monkeypatch.setattr(parsing, "PARSED_AS_WRITTEN", 0)
    as_written = stage("complaints", source, "c.csv", CTX)
    monkeypatch.setattr(parsing, "PARSED_AS_WRITTEN", 10_000)
    cleaned_first = stage("complaints", source, "c.csv", CTX)
    assert_frame_equal(as_written.staged, cleaned_first.staged)
    assert_frame_equal(as_written.issues, cleaned_first.issues)
    held = as_written.masked_source["received_at"].to_list()[:6]
    assert held == [" 2025-01-01 10:00:00", "2025/01/01 10:00", "138****6666", None, None, "昨天"]
    assert cleaned_first.masked_source["received_at"][0] == "2025-01-01 10:00:00"
    assert as_written.staged["received_at"].null_count() == 3 * 4


def test_a_value_with_full_width_digits_but_no_personal_data_loads():
    staged = stage(
        "complaints", frame([complaint(original_complaint_id="TS２０２５")]), "c.csv", CTX
    )
    assert staged.issues.is_empty()
    assert staged.staged["original_complaint_id"][0] == "TS２０２５"


def transfer(**overrides):
    row = {
        "transfer_id": "R1",
        "regulator": "国家金融监督管理总局辽宁监管局",
        "source": "12378热线",
        "transferred_on": "2025-01-01",
        "due_on": "2025-01-15",
        "complainant_name": "李四光",
        "contact_phone": "13900001111",
        "branch_code": "0101",
        "business_category": "B03",
        "matter": "信用卡年费争议",
        "complaint_id": None,
        "replied_on": None,
        "status": "待处理",
        "updated_at": "2025-01-02 09:00:00",
    }
    return row | overrides


def call(**overrides):
    row = {
        "call_id": "C1",
        "call_start_at": "2025-01-01 10:00:00",
        "queued_at": "2025-01-01 10:00:05",
        "answered_at": "2025-01-01 10:00:10",
        "hung_up_at": "2025-01-01 10:05:00",
        "caller_number": "13812345678",
        "service_mode": "人工",
        "agent_id": "KF001",
        "call_type": "咨询",
        "inquiry_category": "信用卡",
        "inquiry_topic": "年费",
        "customer_mood": "正常",
        "complaint_intent": "否",
        "outcome": "已解答",
        "complaint_id": None,
        "survey_satisfaction": "满意",
        "branch_code": "0101",
    }
    return row | overrides


GLUED = "13912345678"  # a phone glued to the digits before it: no shape, a long digit run


@pytest.mark.parametrize(
    ("feed", "row", "column", "held"),
    [
        # a phone alone in a date, date-time, whole-number or amount column of each feed: held
        ("hotline", call(queued_at="13912345678"), "queued_at", "139****5678"),
        ("complaints", complaint(excluded_days="13912345678"), "excluded_days", "139****5678"),
        ("regulator_transfers", transfer(replied_on="13912345678"), "replied_on", "139****5678"),
        # glued to other digits, masked in the held text as its reason masks it
        (
            "regulator_transfers",
            transfer(due_on="2025-07-1" + GLUED),
            "due_on",
            "2025-07-113****5678",
        ),
        (
            "hotline",
            call(hung_up_at="2025-07-01 1" + GLUED),
            "hung_up_at",
            "2025-07-01 113****5678",
        ),
        (
            "complaints",
            complaint(received_at="2025/07/01 " + GLUED),
            "received_at",
            "2025/07/01 139****5678",
        ),
        ("complaints", complaint(excluded_days="1" + GLUED), "excluded_days", "113****5678"),
        ("hotline", call(complaint_intent="是" + GLUED), "complaint_intent", "是139****5678"),
        ("complaints", complaint(amount="1,2" + GLUED), "amount", "1,213****5678"),
    ],
)
def test_a_held_value_is_never_clearer_than_its_reason(feed, row, column, held):
    staged = stage(feed, frame([row]), "f.csv", CTX)
    _, bad = split(staged.staged, staged.masked_source, row_problems(staged.issues, _issues([])))
    assert bad[column].to_list() == [held]
    assert bad["reason"][0].endswith(held)
    assert not [r for r in bad.rows() if "2345678" in str(r)]


def test_a_held_text_value_is_masked_as_the_reason_quoting_it():
    # an unknown label (staging) and a status outside its values (the suite) quote the value,
    # and reasons mask a run of 7 digits; a column no problem names keeps its text (an id)
    rows = [
        complaint(complaint_id="1234567", channel="手机银行 1234567"),
        complaint(complaint_id="T2", status="处理 7654321"),
    ]
    staged = stage("complaints", frame(rows), "c.csv", CTX)
    quoted = '处理状态 (status): "处理 7654321" is not one of 已受理/处理中/已办结/已撤诉'
    failures = _issues([(1, "处理状态", "in_set", quoted)])
    _, bad = split(staged.staged, staged.masked_source, row_problems(staged.issues, failures))
    assert bad["channel"].to_list() == ["手机银行 ****4567", "手机银行"]
    assert bad["status"].to_list() == ["已受理", "处理 ****4321"]
    assert '"手机银行 ****4567"' in bad["reason"][0] and '"处理 ****4321"' in bad["reason"][1]
    assert bad["complaint_id"].to_list() == ["1234567", "T2"]


@pytest.mark.parametrize(
    ("feed", "overrides", "field", "held"),
    [
        # the row's own name typed where a type, branch, number, time or label belongs
        ("complaints", {"ticket_type": "张三丰"}, "工单类型", "张*"),
        ("complaints", {"branch_code": "张三丰"}, "机构代码", "张*"),
        ("complaints", {"excluded_days": "张三丰"}, "扣除天数", "张*"),
        ("complaints", {"received_at": "张三丰"}, "受理时间", "张*"),
        ("complaints", {"cause": "张三丰"}, "投诉原因", "张*"),
        # inside a longer value, padded as exported, or written with a space in the name column
        ("complaints", {"original_complaint_id": "TS01张三丰"}, "原投诉编号", "TS01张*"),
        ("complaints", {"status": " 张三丰 "}, "处理状态", "张*"),
        ("complaints", {"customer_name": "张 三丰", "liability": "张三丰"}, "责任认定", "张*"),
        ("regulator_transfers", {"branch_code": "李四光"}, "被投诉机构", "李*"),
        ("regulator_transfers", {"transferred_on": "李四光"}, "转办日期", "李*"),
        ("regulator_transfers", {"due_on": "李四光"}, "办理期限", "李*"),
        ("regulator_transfers", {"status": "李四光"}, "办理状态", "李*"),
    ],
)
def test_the_rows_own_name_in_another_column_is_held_and_masked(feed, overrides, field, held):
    row = complaint(customer_name="张三丰") if feed == "complaints" else transfer()
    staged = stage(feed, frame([row | overrides]), "c.csv", CTX)
    loaded, bad = split(
        staged.staged, staged.masked_source, row_problems(staged.issues, _issues([]))
    )
    assert loaded.height == 0 and bad.height == 1
    assert field in bad["field"][0] and "personal_data" in bad["rule"][0]
    column = next(name for name in overrides if name != "customer_name")
    assert bad[column][0].strip() == held
    # nowhere in clear: not in the reasons, the held text, nor the typed values the suite reads
    for frame_ in (bad, staged.staged, staged.masked_source):
        assert not [r for r in frame_.rows() if "三丰" in str(r) or "四光" in str(r)]


def test_the_rows_own_name_in_a_label_is_held_also_where_unknown_labels_load():
    # by default an unknown label loads under 其他 and the report lists it: not a name
    other = StagingContext(CTX.pii_key, Lookups(CTX.lookups.labels, CTX.lookups.branches))
    staged = stage(
        "complaints", frame([complaint(customer_name="陈十三", cause="陈十三")]), "c", other
    )
    assert staged.issues["rule"].to_list() == ["personal_data"]
    assert staged.staged["cause_label"].to_list() == ["陈*"]


@pytest.mark.parametrize(
    "overrides",
    [
        # a name of one character would be found nearly everywhere (投 in 投诉)
        {"customer_name": "投"},
        # digits are no name, and would be found in dates and amounts
        {"customer_name": "01"},
        # a value of the column's own vocabulary is read as itself: an enum's value, a label
        # of the map, a branch's code or name
        {"customer_name": "信函", "intake_channel": "信函"},
        {"customer_name": "银行", "channel": "手机银行"},
        {"customer_name": "辽宁", "branch_code": "金泉银行辽宁省分行"},
        # free text masks the row's own name itself, and the row loads
        {"customer_name": "张三", "content": "张三来电"},
    ],
)
def test_a_name_found_only_where_it_is_no_leak_loads(overrides):
    staged = stage("complaints", frame([complaint(**overrides)]), "c.csv", CTX)
    assert staged.issues.is_empty()


def test_only_the_row_whose_own_name_is_out_of_place_is_held():
    rows = [
        complaint(complaint_id="T1", customer_name="张三", original_complaint_id="T0"),
        complaint(complaint_id="T2", customer_name="李四", original_complaint_id="李四"),
        complaint(complaint_id="T3", customer_name=None, original_complaint_id="T2"),
    ]
    staged = stage("complaints", frame(rows), "c.csv", CTX)
    assert staged.issues["row"].to_list() == [1]
    assert staged.staged["original_complaint_id"].to_list() == ["T0", "李*", "T2"]


# Spaces an export may leave around a value (Rust's and Polars' trim: Unicode White_Space)
_PADDING = st.text(alphabet=" \t\u3000\u00a0\r", max_size=2)
_STATUS = st.sampled_from(["已受理", "处理中", "已办结", "已撤诉", "办结", "", None])
_PHONE = st.sampled_from(["13812345678", "138 1234 5678", "１３８１２３４５６７８", "", "12", None])
_NAME = st.sampled_from(["张三", "张 三", "", None])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(_STATUS, _PHONE, _NAME, _PADDING, _PADDING, _PADDING, _PADDING),
        min_size=1,
        max_size=8,
    )
)
def test_spaces_around_a_value_never_change_what_stages(rows):
    """Enums and personal data go into the plan as written (not trimmed first); staging the
    padded values gives what staging the trimmed ones gives, in every output."""

    def rows_of(pad: bool):
        out = []
        for i, (status, phone, name, a, b, c, d) in enumerate(rows):
            padded = {
                "status": status if status is None or not pad else a + status + b,
                "contact_phone": phone if phone is None or not pad else c + phone + d,
                "customer_name": name if name is None or not pad else b + name + c,
            }
            out.append(complaint(complaint_id=f"T{i}", **padded))
        return frame(out)

    padded = stage("complaints", rows_of(True), "f.csv", CTX)
    trimmed = stage("complaints", rows_of(False), "f.csv", CTX)
    assert padded.staged.equals(trimmed.staged)
    assert padded.masked_source.equals(trimmed.masked_source)
    assert padded.issues.sort(pl.all()).equals(trimmed.issues.sort(pl.all()))


def test_each_columns_part_of_the_plan_gives_what_the_whole_plan_gives():
    """`bench/drop_steps.py --columns` times each column's plan alone: those parts must be the
    work the whole plan does, column by column (free text still masks its row's own name)."""
    rows = frame(
        [
            complaint(),
            complaint(complaint_id="T2", received_at="2025/01/02 09:30", contact_phone="138-1234"),
            complaint(complaint_id="T3", cause="13912345678", amount="x", closed_at="N/A"),
            complaint(complaint_id="T4", customer_name=" 李四 ", content="李四说 李四 不满意"),
            complaint(complaint_id="T5", customer_name="王五", ticket_type="王五", amount="王五"),
        ]
    )
    whole = staging_plan("complaints", rows, CTX)[1].collect()
    seen = []
    for col in staging.COLUMNS["complaints"]:
        part = staging_plan("complaints", rows, CTX, (col,))[1].collect()
        assert_frame_equal(part, whole.select(part.columns))
        seen += part.columns
    assert sorted(seen) == sorted(whole.columns)


def test_the_staging_fingerprint_covers_every_module_the_staging_code_imports() -> None:
    """A drop is skipped only while the code that stages it is unchanged: each kesu module that
    staging code imports is staging code too, so a change to it re-stages history."""
    import ast
    import importlib
    from pathlib import Path

    from kesu.flows.staging_inputs import STAGING_CODE

    covered = {m.__name__ for m in STAGING_CODE}
    missing = set()
    for module in STAGING_CODE:
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("kesu."):
                continue
            names = [f"{node.module}.{a.name}" for a in node.names] + [str(node.module)]
            for name in names:
                try:
                    imported = importlib.import_module(name)
                except ImportError:  # a function or class, not a module
                    continue
                if imported.__name__ not in covered and imported.__name__.count(".") >= 2:
                    missing.add(f"{module.__name__} imports {imported.__name__}")
    assert not missing, sorted(missing)


def test_every_rule_module_the_ingest_steps_use_is_staging_code() -> None:
    """The rules about rows live in `kesu.transforms` and `kesu.expectations`, which the ingest
    steps call (design.md: flows are wiring): each module of theirs that the steps import is
    part of the fingerprint, so a new rule module cannot be left out of it."""
    import ast
    from pathlib import Path

    from kesu.flows import ingest_steps
    from kesu.flows.staging_inputs import STAGING_CODE

    covered = {m.__name__ for m in STAGING_CODE}
    used = set()
    for node in ast.walk(ast.parse(Path(ingest_steps.__file__ or "").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module in (
            "kesu.transforms",
            "kesu.expectations",
        ):
            used |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            ("kesu.transforms.", "kesu.expectations.")
        ):
            used.add(str(node.module))
    records = {"kesu.transforms.run_records"}  # the ledger's record types: they decide no row
    assert "kesu.transforms.run_records" in used  # (so the exception is still needed)
    assert used - records and used - records <= covered, sorted(used - records - covered)


def test_a_drops_dates_are_plausible_up_to_its_future_days():
    """`[validation] future_days` after the drop date is the last plausible day (a due date
    excepted: it lies ahead by nature)."""
    ctx = staging.StagingContext.for_drop(
        CTX.pii_key, CTX.lookups, date(2025, 1, 1), earliest=date(2020, 1, 1), future_days=1
    )
    assert (ctx.earliest, ctx.latest) == (date(2020, 1, 1), date(2025, 1, 2))
    rows = [
        complaint(complaint_id="T1", updated_at="2025-01-02 23:59:59"),
        complaint(complaint_id="T2", updated_at="2025-01-03 00:00:00"),
        complaint(complaint_id="T3", received_at="2019-12-31 23:59:59"),
    ]
    found = stage("complaints", frame(rows), "f.csv", ctx).issues
    odd = found.filter(pl.col("rule") == "implausible_time").select("row", "field")
    assert sorted(odd.rows()) == [(1, "更新时间"), (2, "受理时间")]
