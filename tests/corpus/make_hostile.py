"""Writes the hostile corpus (tests/corpus/hostile/<feed>/<file>): hand-broken copies of valid
exports, one defect each, as issue 10 found them. Run it to regenerate the checked-in bytes:

    .venv/bin/python tests/corpus/make_hostile.py

The expected accounting of every file is in tests/unit/test_bad_input_corpus.py (HOSTILE) and
in tests/corpus/README.md. Cases too large or too dangerous to check in (a field over 128 KiB,
an xlsx whose sheet claims XFD1048576) are built by the test itself.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent / "hostile"
HOTLINE_HEADER = (
    "通话编号,来电时间,进入队列时间,应答时间,挂机时间,主叫号码,服务方式,坐席工号,来电类型,"
    "业务大类,业务小类,客户情绪,投诉意向,处理结果,投诉编号,满意度,归属机构"
)
COMPLAINTS_HEADER = (
    "投诉编号,工单类型,受理渠道,受理时间,业务办理渠道,业务类别,投诉原因,机构代码,客户姓名,"
    "证件号码,联系电话,投诉内容,处理状态,是否延期,扣除天数,办结时间,责任认定,原投诉编号,"
    "回访满意度,涉及金额,更新时间"
)


def call(n: int, topic: str = "存款利率", start: str = "2025-03-01 09:00:00") -> str:
    """One valid hotline record (the 11th field, 业务小类, is where stray quotes land)."""
    return (
        f"C{n:03d},{start},,,2025-03-01 09:05:00,13800000000,自助语音,,查询,个人业务,{topic},"
        "正常,否,已解答,,未评价,0101"
    )


def ticket(n: int, content: str = "客户反映转账失败", **changed: str) -> str:
    """One valid complaints record; `changed` replaces 受理时间 / 机构代码 / 更新时间."""
    received = changed.get("received", "2025-02-28 10:00:00")
    branch = changed.get("branch", "0101")
    updated = changed.get("updated", "2025-02-28 10:00:00")
    return (
        f"T{n:03d},投诉,客服热线,{received},手机银行,B03,C01,{branch},,,,{content},已受理,否,0,,,,,"
        f"100.00,{updated}"
    )


def lines(header: str, records: list[str], eol: str = "\n") -> bytes:
    return (eol.join([header, *records]) + eol).encode("utf-8")


def corpus() -> dict[str, bytes]:
    calls = [call(n) for n in range(1, 11)]
    stray = list(calls)
    stray[2] = call(3, '"存款利率')  # a quote opened in 业务小类 …
    stray[6] = call(7, '存款利率"')
    early = list(calls)
    early[1] = call(2, '"存款利率')  # never closed: swallowed everything after it
    extra_line = [HOTLINE_HEADER + ",_line"] + [c + f",{n}" for n, c in enumerate(calls[:3], 1)]
    dst = [
        call(1),
        call(2, start="1988-04-17 02:30:00"),  # the spring gap: this wall-clock time never was
        call(3, start="1988-09-11 01:30:00"),  # the autumn hour: this one was twice
    ]
    gbk = (
        lines(COMPLAINTS_HEADER, [ticket(1)])
        + ticket(2, "客户反映信用卡年费").encode("gbk")
        + b"\n"
        + (ticket(3) + "\n").encode("utf-8")
    )
    merged_text = [
        ticket(1),
        ticket(2, '"客户说手机银行不能用'),  # opened in 投诉内容 (may span lines) …
        ticket(3),
        ticket(4),
        ticket(5, '好的"'),  # … and closed three records later
        ticket(6),
    ]
    trailing = [call(1), call(2) + ",", call(3) + ",,x", call(4)]  # extra fields, empty or not
    split_id = [ticket(1), '"T002', ticket(2).replace("T002", 'T002b"', 1), ticket(3)]
    # the quotes inside a quoted value not doubled (Polars read `他说你好` without a word),
    # and quotes inside a value that is not quoted (text, as CSV reads them)
    inner_quotes = [
        ticket(1),
        ticket(2, '"客户说"转账"失败"'),
        ticket(3, '客户说"转账"失败'),
        ticket(4),
    ]
    doubled_id = [call(1), call(2).replace("C002", '""C002"', 1), call(3)]
    return {
        "hotline/stray_quote_pair.csv": lines(HOTLINE_HEADER, stray),
        "hotline/trailing_commas.csv": lines(HOTLINE_HEADER, trailing),
        # the last record is unterminated, with an extra, empty field; the first is cut short
        "hotline/unterminated_last_record.csv": (
            "\n".join([HOTLINE_HEADER, call(1).removesuffix(",0101"), call(2) + ","]).encode()
        ),
        "hotline/unbalanced_quote_early.csv": lines(HOTLINE_HEADER, early),
        "hotline/cr_only.csv": lines(HOTLINE_HEADER, calls[:3], eol="\r"),
        "hotline/line_column.csv": ("\n".join(extra_line) + "\n").encode(),
        "hotline/dst_local_times.csv": lines(HOTLINE_HEADER, dst),
        "hotline/quote_doubled_before_id.csv": lines(HOTLINE_HEADER, doubled_id),
        "complaints/gb18030_bom.csv": b"\x84\x31\x95\x33"
        + ("\n".join([COMPLAINTS_HEADER, ticket(1), ticket(2, "客户𠮷先生")]) + "\n").encode(
            "gb18030"
        ),
        "complaints/gbk_line_in_utf8.csv": gbk,
        "complaints/stray_quote_pair_in_free_text.csv": lines(COMPLAINTS_HEADER, merged_text),
        # 投诉编号 written over two lines: the second starts inside the quoted value
        "complaints/line_break_in_id.csv": lines(COMPLAINTS_HEADER, split_id),
        "complaints/quotes_not_doubled_in_text.csv": lines(COMPLAINTS_HEADER, inner_quotes),
        "complaints/quote_open_in_branch.csv": lines(
            COMPLAINTS_HEADER, [ticket(1), ticket(2, branch='"0101'), ticket(3)]
        ),
        "complaints/implausible_times.csv": lines(
            COMPLAINTS_HEADER,
            [
                ticket(1),
                ticket(2, received="0001-01-01 00:00:00"),
                ticket(3, received="9999-12-31 23:59:59"),
                ticket(1, updated="2099-01-01 00:00:00"),  # a version "from the future"
            ],
        ),
    }


if __name__ == "__main__":
    for name, data in corpus().items():
        path = HERE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(HERE.parent)} ({len(data)} bytes)")
