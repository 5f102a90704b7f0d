"""Property: whatever a landed file holds, every record is loaded or quarantined, once.

Hypothesis writes files the contract allows (any column order, any quoting, LF or CRLF, blank
lines, UTF-8 / UTF-8 with BOM / GB18030) holding valid rows and rows with bad values, and checks,
through `stage_feed` (no Prefect): rows in = loaded + quarantined, and rows in = the records as
landed — a line break in a column that cannot hold one (every column but 投诉内容) splits its
record into the lines it spans. Then it breaks such files as real exports are broken (a stray
quote, a line break, one line in GBK) for all three feeds, and writes xlsx workbooks with
quotes and line breaks in their cells: records in = loaded + held, every time; for the hotline
feed, where no column may hold a line break, every non-blank line is one record. A prefix of a
file (a cut export) must still finish with every row it read accounted for.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from tempfile import TemporaryDirectory

import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kesu.flows.config import load_settings
from kesu.flows.ingest_steps import FeedStaged, stage_feed
from kesu.flows.pii_key import PiiKey
from kesu.transforms.columns import COLUMNS, COMPLAINTS, MULTILINE_HEADERS
from kesu.warehouse import scratch
from kesu.warehouse.landing import list_drop

DAY = date(2025, 3, 1)
KEY = PiiKey(b"property-test-key-0123456789abcdef", "test", is_demo=False)
HEADER = {c.name: c.header for c in COMPLAINTS}

# Valid values per column (the first is the default); ids and 更新时间 repeat to make duplicates.
VALID = {
    "complaint_id": ["T1", "T2", "T3", "T4"],
    "ticket_type": ["投诉", "意见", "表扬"],
    "intake_channel": ["客服热线", "手机银行"],
    "received_at": ["2025-02-28 10:00:00", "2025/02/28 10:00", "2025年02月28日"],
    "channel": ["手机银行", "A010303", ""],
    "business_category": ["B03", ""],
    "cause": ["C01", ""],
    "branch_code": ["0101"],
    "customer_name": ["张三", ""],
    "id_number": ["11010519491231002X", ""],
    "contact_phone": ["13812345678", ""],
    "content": ["客户反映转账失败", "", '说"不行",再说\n第二行', "𠮷先生来电"],
    "status": ["已受理", "处理中"],
    "extended": ["否", "是", ""],
    "excluded_days": ["0", "3", ""],
    "closed_at": [""],
    "liability": ["", "有责"],
    "original_complaint_id": [""],
    "callback_satisfaction": ["", "满意"],
    "amount": ["100.00", "1,234.50", ""],
    "updated_at": ["2025-02-28 10:00:00", "2025-02-28 11:00:00"],
}
NASTY = [
    "",
    " ",
    "N/A",
    "2025-02-30 10:00:00",
    "03/04/2025",
    "-5",
    "abc",
    "１２３",
    "银行卡",
    "9999",
    "已关闭",
    "含,逗号",
    'a"b',
    '"',
    "多\n行",
    "回车\r\n换行",
    "\r",
    "=1+1",
    "𠮷",
    ",,,",
]
ENCODINGS = ["utf-8", "utf-8-sig", "gb18030"]


@st.composite
def complaint_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        row = {name: draw(st.sampled_from(values)) for name, values in VALID.items()}
        damage = draw(
            st.dictionaries(st.sampled_from(list(VALID)), st.sampled_from(NASTY), max_size=3)
        )
        rows.append(row | damage)
    return rows


def _field(value: str, quote: bool) -> str:
    if quote or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, str, tuple[int, int]]:
    """(file bytes, encoding, records as landed): random rows, column order, quoting, line
    ends and blank lines."""
    rows = draw(complaint_rows())
    names = draw(st.permutations(list(VALID)))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(_field(HEADER[n], draw(st.booleans())) for n in names)]
    for row in rows:
        if draw(st.integers(0, 9)) == 0:
            lines.append("")  # a blank line between records
        lines.append(",".join(_field(row[n], draw(st.booleans())) for n in names))
    text = eol.join(lines) + draw(st.sampled_from(["", eol, eol + eol]))
    encoding = draw(st.sampled_from(ENCODINGS))
    return text.encode(encoding), encoding, _landed_records(rows)


def _stage(data: bytes, feed: str = "complaints", name: str = "export.csv") -> FeedStaged:
    with TemporaryDirectory() as tmp:
        folder = Path(tmp) / "landing" / feed / DAY.isoformat()
        folder.mkdir(parents=True)
        (folder / name).write_bytes(data)
        config = load_settings(landing=str(Path(tmp) / "landing"), warehouse=tmp, environ={})
        listing = list_drop(config.landing, feed, DAY)
        staged = stage_feed(config, KEY, feed, DAY, [str(p) for p in listing.files], Path(tmp))
        # the counts are what the frames handed to publish really hold
        for path, counted in (
            (staged.loaded_path, "loaded"),
            (staged.quarantine_path, "quarantined"),
        ):
            assert (scratch.read_frame(path).height if path else 0) == getattr(
                staged.files[0], counted
            )
        return staged


def _landed_records(rows: list[dict[str, str]]) -> tuple[int, int]:
    """Records as landed, as a range: each row is one record, unless it has a line break in a
    column that cannot hold one — then it is split into the lines it spans (the quote left open
    there holds a piece on its own). A later piece whose own free text spans lines may read as
    one record with the next, so a broken row counts 1 to (its lines) records; a whole row is
    exactly one."""
    free = {c.name for c in COMPLAINTS if c.header in MULTILINE_HEADERS}
    low = high = 0
    for row in rows:
        broken = any("\n" in v for n, v in row.items() if n not in free)
        low += 1
        high += 1 + sum(v.count("\n") for v in row.values()) if broken else 1
    return low, high


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(csv_files())
def test_every_record_is_loaded_or_quarantined_once(file):
    data, encoding, records = file
    (outcome,) = _stage(data).files
    assert outcome.status == "ok", outcome.message
    assert outcome.encoding == encoding or (encoding == "gb18030" and outcome.encoding == "utf-8")
    assert outcome.rows_in == outcome.loaded + outcome.quarantined
    low, high = records
    assert low <= outcome.rows_in <= high


@PROPERTY
@given(csv_files(), st.floats(0, 1))
def test_a_cut_export_still_accounts_for_every_row_it_read(file, where):
    data, _, _ = file
    cut = data[: int(len(data) * where)]
    (outcome,) = _stage(cut).files
    if outcome.status == "ok":
        assert outcome.rows_in == outcome.loaded + outcome.quarantined
    else:  # cut inside the header or inside a character: the file fails alone, named
        assert outcome.status == "failed" and outcome.message.startswith("export.csv: ")


# --- broken exports of every feed ------------------------------------------------------------

# One valid value per column and feed, under the headers as exported.
VALID_BY_FEED = {
    "complaints": {HEADER[n]: v[0] for n, v in VALID.items()},
    "hotline": {
        "通话编号": "C001",
        "来电时间": "2025-03-01 09:00:00",
        "进入队列时间": "2025-03-01 09:00:30",
        "应答时间": "2025-03-01 09:00:40",
        "挂机时间": "2025-03-01 09:05:00",
        "主叫号码": "13800000000",
        "服务方式": "人工",
        "坐席工号": "KF10011",
        "来电类型": "查询",
        "业务大类": "个人业务",
        "业务小类": "存款利率",
        "客户情绪": "正常",
        "投诉意向": "否",
        "处理结果": "已解答",
        "投诉编号": "",
        "满意度": "满意",
        "归属机构": "0101",
    },
    "regulator_transfers": {
        "转办单号": "R001",
        "转办机构": "国家金融监督管理总局辽宁监管局",
        "来源": "12378热线",
        "转办日期": "2025-02-27",
        "办理期限": "2025-03-13",
        "投诉人": "李四",
        "联系电话": "13900001111",
        "被投诉机构": "0101",
        "业务类别": "B03",
        "投诉事项": "信用卡年费争议",
        "行内投诉编号": "",
        "反馈日期": "",
        "办理状态": "待处理",
        "更新时间": "2025-02-28 09:00:00",
    },
}
ID_HEADER = {"complaints": "投诉编号", "hotline": "通话编号", "regulator_transfers": "转办单号"}
assert all(set(v) == {c.header for c in COLUMNS[f]} for f, v in VALID_BY_FEED.items())


@st.composite
def feed_rows(draw: st.DrawFn, feed: str) -> list[dict[str, str]]:
    """1-8 rows of `feed` under its headers, with unique ids and up to 3 nasty values each."""
    rows = []
    for i in range(draw(st.integers(1, 8))):
        damage = draw(
            st.dictionaries(
                st.sampled_from(sorted(VALID_BY_FEED[feed])), st.sampled_from(NASTY), max_size=3
            )
        )
        rows.append(VALID_BY_FEED[feed] | damage | {ID_HEADER[feed]: f"X{i:03d}"})
    return rows


@st.composite
def broken_exports(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(feed, file bytes, its text before the encoding damage): a valid CSV of a random feed,
    then 1-4 breaks of its data lines: a quote inserted, a line break inserted, one line GBK."""
    feed = draw(st.sampled_from(sorted(VALID_BY_FEED)))
    rows = draw(feed_rows(feed))
    names = draw(st.permutations(sorted(VALID_BY_FEED[feed])))
    lines = [",".join(names)] + [
        ",".join(_field(row[n], draw(st.booleans())) for n in names) for row in rows
    ]
    text = "\n".join(lines) + "\n"
    data_lines = text.split("\n")
    gbk_line = None
    for _ in range(draw(st.integers(1, 4))):
        what = draw(st.sampled_from(["quote", "line break", "gbk"]))
        at = draw(st.integers(1, len(data_lines) - 2)) if len(data_lines) > 2 else None
        if at is None:
            break
        line = data_lines[at]
        where = draw(st.integers(0, len(line)))
        if what == "quote":
            data_lines[at] = line[:where] + '"' + line[where:]
        elif what == "line break":
            data_lines[at] = line[:where] + "\n" + line[where:]
        elif gbk_line is None:
            gbk_line = at
    encoded = [_gbk_first_line(line) if i == gbk_line else line.encode("utf-8")
               for i, line in enumerate(data_lines)]  # fmt: skip
    return feed, b"\n".join(encoded), "\n".join(data_lines)


def _gbk_first_line(line: str) -> bytes:
    """One physical line in GBK: a line break inserted before would otherwise make the broken
    record's every line GBK, and a file mostly in GBK among UTF-8 lines is refused, rightly."""
    first, sep, rest = line.partition("\n")
    return first.encode("gbk", errors="replace") + (sep + rest).encode("utf-8")


@PROPERTY
@given(broken_exports())
def test_a_broken_export_of_any_feed_accounts_for_every_record(export):
    feed, data, text = export
    (outcome,) = _stage(data, feed).files
    assert outcome.status == "ok", outcome.message
    assert outcome.rows_in == outcome.loaded + outcome.quarantined
    lines = [line for line in text.split("\n")[1:] if line.removesuffix("\r")]
    if feed == "hotline":  # no column may hold a line break: every line is one record
        assert outcome.rows_in == len(lines)
    else:
        assert 0 < outcome.rows_in <= len(lines)


CELL_VALUES = st.sampled_from([*NASTY, '"引号', '尾"', '"', "多\n行\n三行", "\t制表"])


@st.composite
def transfer_workbooks(draw: st.DrawFn) -> tuple[bytes, int]:
    """(xlsx bytes, rows): transfers with quotes, line breaks and odd text in random cells."""
    rows = draw(feed_rows("regulator_transfers"))
    for row in rows:
        for header in draw(st.sets(st.sampled_from(sorted(row)), max_size=4)):
            if header != ID_HEADER["regulator_transfers"]:
                row[header] = draw(CELL_VALUES)
    names = draw(st.permutations(sorted(VALID_BY_FEED["regulator_transfers"])))
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    sheet = book.add_worksheet()
    for j, name in enumerate(names):
        sheet.write_string(0, j, name)
    for i, row in enumerate(rows, start=1):
        for j, name in enumerate(names):
            if row[name]:
                sheet.write_string(i, j, row[name])
    book.close()
    return buf.getvalue(), len(rows)


@PROPERTY
@given(transfer_workbooks())
def test_every_row_of_an_xlsx_is_loaded_or_quarantined_once(workbook):
    data, rows = workbook
    (outcome,) = _stage(data, "regulator_transfers", "transfers.xlsx").files
    assert outcome.status == "ok", outcome.message
    assert outcome.rows_in == outcome.loaded + outcome.quarantined == rows
