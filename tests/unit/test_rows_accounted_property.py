"""Property: whatever a complaints CSV holds, every record is loaded or quarantined, once.

Hypothesis writes CSV files the contract allows (any column order, any quoting, LF or CRLF,
blank lines, UTF-8 / UTF-8 with BOM / GB18030) holding valid rows and rows with bad values, and
checks, through `stage_feed` (no Prefect): rows in = loaded + quarantined, and rows in = the
records Python's `csv` module reads. A prefix of such a file (a cut export) must still finish
with every row it read accounted for.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kesu.flows.config import load_settings
from kesu.flows.ingest_steps import FeedStaged, stage_feed
from kesu.flows.pii_key import PiiKey
from kesu.transforms.columns import COMPLAINTS
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
def csv_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """(file bytes, encoding): random rows, column order, quoting, line ends and blank lines."""
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
    return text.encode(encoding), encoding


def _stage(data: bytes) -> FeedStaged:
    with TemporaryDirectory() as tmp:
        folder = Path(tmp) / "landing" / "complaints" / DAY.isoformat()
        folder.mkdir(parents=True)
        (folder / "export.csv").write_bytes(data)
        config = load_settings(landing=str(Path(tmp) / "landing"), warehouse=tmp, environ={})
        listing = list_drop(config.landing, "complaints", DAY)
        staged = stage_feed(
            config, KEY, "complaints", DAY, [str(p) for p in listing.files], Path(tmp)
        )
        # the counts are what the frames handed to publish really hold
        for path, counted in (
            (staged.loaded_path, "loaded"),
            (staged.quarantine_path, "quarantined"),
        ):
            assert (scratch.read_frame(path).height if path else 0) == getattr(
                staged.files[0], counted
            )
        return staged


def _csv_records(data: bytes, encoding: str) -> int:
    text = data.decode(encoding)
    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]  # [] is a blank line
    return len(records) - 1  # the header


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(csv_files())
def test_every_record_is_loaded_or_quarantined_once(file):
    data, encoding = file
    (outcome,) = _stage(data).files
    assert outcome.status == "ok", outcome.message
    assert outcome.encoding == encoding or (encoding == "gb18030" and outcome.encoding == "utf-8")
    assert outcome.rows_in == outcome.loaded + outcome.quarantined
    assert outcome.rows_in == _csv_records(data, encoding)


@PROPERTY
@given(csv_files(), st.floats(0, 1))
def test_a_cut_export_still_accounts_for_every_row_it_read(file, where):
    data, _ = file
    cut = data[: int(len(data) * where)]
    (outcome,) = _stage(cut).files
    if outcome.status == "ok":
        assert outcome.rows_in == outcome.loaded + outcome.quarantined
        assert outcome.rows_in == _csv_records(cut, outcome.encoding)
    else:  # cut inside the header or inside a character: the file fails alone, named
        assert outcome.status == "failed" and outcome.message.startswith("export.csv: ")
