"""`disclosure.md`: the annual public disclosure (年度消费投诉情况), written from the tables alone.

In the order and wording published disclosures use: an opening citing the rules it is made
under, the total after merging duplicates with its year-on-year change, handling performance,
the business-category (its tail grouped into configured buckets), region and cause
distributions, the business-handling channels, the hotline, and the bank's complaint channels
and date. Numbers are written as Chinese official text writes them (``199件``, ``6.42%``: no space
between a numeral and its unit). A 合计 row is the sum of its column as printed; a footnote says
how the shares were rounded. Sentences such as "前三类业务投诉合计占比 x%" come from raw counts
(half-up, decimal arithmetic), never from adding rounded shares. A year the data covers only in
part is named by its span (2025年1月1日至6月30日), never 全年; a year no drop covers (a report
written with --allow-empty) says 暂无数据 in its title and opening and states no figure.

Longer than most modules: it is one document whose sections share the number formatting.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
from kesu.reports import labels
from kesu.transforms import shares
from kesu.transforms.periods import Coverage
from kesu.transforms.shares import is_other, top_share

RULES = "《银行业保险业消费投诉处理管理办法》"
REGION_WORDS = {"province": "省份", "branch": "一级分行", "city": "城市", "urban_rural": "城乡"}


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value}%"


def _count(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _metric(frame: pl.DataFrame | None, metric: str, column: str = "value") -> Any:
    if frame is None or "metric" not in frame.columns:
        return None
    rows = frame.filter(pl.col("metric") == metric)
    return rows[column][0] if rows.height else None


def _span(year: str, coverage: Coverage | None) -> str:
    """'2025年' for a complete year, '2025年1月1日至6月30日' for one the data covers in part."""
    through = coverage.through if coverage else None
    if through is None:
        return f"{year}年"
    return f"{year}年1月1日至{labels.day_text(through, year=False)}"


def grouped(frame: pl.DataFrame, buckets: dict[str, list[str]], decimals: int, rounding: str,
            ) -> pl.DataFrame:  # fmt: skip
    """The category rows with each configured bucket's codes shown as one row (its count the
    sum, its share recomputed from the counts under the rounding policy), after the named rows
    and before 其他. Without a bucket that applies, the rows as they are."""
    if frame.is_empty() or "code" not in frame.columns:
        return frame
    member = {code: name for name, codes in buckets.items() for code in codes}
    used = [c for c in frame["code"].to_list() if c in member]
    if not used:
        return frame
    rows = frame.to_dicts()
    kept = [r for r in rows if r["code"] not in member and not _is_other(r)]
    tail = [r for r in rows if _is_other(r) and r["code"] not in member]
    bucket_rows = []
    for name in buckets:
        inside = [r for r in rows if member.get(r["code"]) == name]
        if inside:
            total = sum(r["complaints"] for r in inside)
            bucket_rows.append({"code": "+".join(r["code"] for r in inside), "name": name,
                                "complaints": total})  # fmt: skip
    shown = kept + bucket_rows + tail
    counts = [r["complaints"] for r in shown]
    values = shares.shares(counts, [r["code"] for r in shown], rounding, decimals)
    return pl.DataFrame(
        {
            "code": [r["code"] for r in shown],
            "name": [r["name"] for r in shown],
            "complaints": pl.Series(counts, dtype=pl.Int64),
            "share_pct": pl.Series(values, dtype=shares.pct_dtype(decimals)),
            "share_display": [shares.display(v, decimals) for v in values],
        }
    )


def _is_other(row: dict[str, Any]) -> bool:
    return row.get("code") in shares.OTHER_CODES or row.get("name") == shares.OTHER_NAME


def _share_text(row: dict[str, Any]) -> str:
    return row.get("share_display") or _pct(row.get("share_pct"))


def _distribution(frame: pl.DataFrame, label_col: str, header: str) -> list[str]:
    lines = [f"| {header} | 投诉量（件） | 占比 |", "|---|---:|---:|"]
    for row in frame.iter_rows(named=True):
        name, count = _cell(row[label_col]), _count(row["complaints"])
        lines.append(f"| {name} | {count} | {_share_text(row)} |")
    total = sum(frame["complaints"].to_list())
    share_total = sum(v for v in frame["share_pct"].to_list() if v is not None)
    lines.append(f"| 合计 | {_count(total)} | {_pct(share_total) if frame.height else '—'} |")
    return lines


def _top(frame: pl.DataFrame, label_col: str, n: int, decimals: int) -> tuple[list[str], Any]:
    """Up to n of the largest named rows with complaints (其他 never ranks, a row of 0 is never
    named) and their combined share, from raw counts."""
    other = is_other(pl.col("code"), pl.col(label_col)) if "code" in frame.columns else None
    flagged = frame.with_columns(
        (other if other is not None else pl.lit(False)).fill_null(False).alias("_other")
    )
    named = flagged.filter(~pl.col("_other") & (pl.col("complaints") > 0)).sort(
        "complaints", descending=True, maintain_order=True
    )
    other_count = sum(flagged.filter(pl.col("_other"))["complaints"].to_list())
    share = top_share(named["complaints"].to_list(), n, decimals, other=other_count)
    return [str(x) for x in named.head(n)[label_col].to_list()], share


def _top_sentence(frame: pl.DataFrame, label_col: str, what: str, decimals: int) -> str:
    """The sentence naming the largest rows: 前三类业务（“A”、“B”和“C”）投诉合计占比x%; with only
    two named rows with complaints 前两类…, with one 投诉最多的业务为“A”，占比x%; with none ''."""
    names, share = _top(frame, label_col, 3, decimals)
    if not names or share is None:
        return ""
    quoted = [f"“{n}”" for n in names]  # names such as 管理制度、业务规则与流程 contain 、
    if len(quoted) == 1:
        return f"投诉最多的{what}为{quoted[0]}，占比{share}%。"
    count = "三" if len(quoted) == 3 else "两"
    return f"前{count}类{what}（{'、'.join(quoted[:-1])}和{quoted[-1]}）投诉合计占比{share}%。"


def _opening(span: str) -> list[str]:
    return [f"根据{RULES}有关规定，现将本行{span}消费投诉情况披露如下。"]


def _no_data(year: str, late_records: bool = False) -> list[str]:
    """The opening of a year no drop covers: it states no count at all (a 0 would read as
    measured; records that came with later drops are not the year's), nor a span or a day
    the data reaches."""
    found = f"{labels.NO_DATA}覆盖本期"
    if late_records:
        found = f"{labels.NO_DROP}；现有数据{labels.LATE_RECORDS}"
    return [f"根据{RULES}有关规定，现将本行{year}年度消费投诉情况说明如下："
            f"{found}，尚无可披露的投诉及客服热线数据。"]  # fmt: skip


def _headline(overview: pl.DataFrame | None, span: str) -> list[str]:
    value = _metric(overview, "complaints")
    previous = _metric(overview, "complaints", "previous")
    change = _metric(overview, "complaints", "change_pct")
    text = f"{span}，本行共受理消费投诉{_count(value)}件（合并重复后）"
    if value is None or previous is None:
        text += "，上年无可比数据"
    else:
        diff = int(value) - int(previous)
        if diff == 0:
            text += "，与上年持平"
        else:
            word = "增加" if diff > 0 else "减少"
            text += f"，较上年{word}{abs(diff):,}件"
            if change is not None:
                trend = "上升" if diff > 0 else "下降"
                text += f"，同比{trend}{abs(Decimal(str(change)))}%"
    text += "。"
    transferred = _metric(overview, "regulator_transferred")
    if transferred is not None:
        text += f"其中，监管转办投诉{_count(transferred)}件。"
    return [text]


def _handling(overview: pl.DataFrame | None) -> list[str]:
    """办结率 and the share of closed complaints decided within the first limit (15 days)."""
    closed, rate = _metric(overview, "closed"), _metric(overview, "close_rate")
    if closed is None or rate is None:
        return ["本期无可统计的投诉办理情况。"]
    text = f"已办结投诉{_count(closed)}件，办结率{_pct(rate)}"
    within = _metric(overview, "closed_within_15d")
    share = shares.percent(int(within), int(closed)) if within is not None else None
    if share is not None:
        days = _days_of(overview)
        text += f"；其中{days}日内办结{_count(within)}件，占已办结投诉的{share}%"
    return [text + "。"]


def _days_of(overview: pl.DataFrame | None) -> str:
    label = _metric(overview, "closed_within_15d", "label") or ""
    digits = "".join(c for c in str(label).split("日")[0] if c.isdigit())
    return digits or "15"


def _region_paragraph(region: pl.DataFrame, mode: str, national: str) -> list[str]:
    if region.height == 0:
        return []
    rows = region.to_dicts()
    listed = "、".join(f"{_cell(r['region'])}{_count(r['complaints'])}件（占{_share_text(r)}）"
                       for r in rows[:5])  # fmt: skip
    word = REGION_WORDS.get(mode, "地区")
    text = f"按{word}划分，" + ("投诉分布为" if len(rows) <= 5 else "投诉量居前五位的为") + listed
    text += "。"
    if national == "separate":
        text += "信用卡中心、客服中心等全国性服务机构的投诉单独列示。"
    elif mode == "province":
        text += "信用卡中心、客服中心等全国性服务机构的投诉计入其所在省份。"
    return [text]


def _channel_paragraph(by_channel: pl.DataFrame) -> list[str]:
    if by_channel.height == 0:
        return ["本期无可按业务办理渠道统计的投诉。"]
    top_level = by_channel["level"].min()
    rows = by_channel.to_dicts()
    parts = []
    for row in (r for r in rows if r["level"] == top_level):
        text = f"{row['name']}{_count(row['complaints'])}件，占{_pct(row['share_pct'])}"
        children = [r for r in rows if r.get("parent_code") == row["code"]]
        if children:
            inner = "、".join(
                f"{c['name']}{_count(c['complaints'])}件（占{row['name']}"
                f"{_pct(c['share_of_parent_pct'])}）"
                for c in children
            )
            text += f"，其中{inner}"
        parts.append(text)
    return ["按业务办理渠道划分：" + "；".join(parts) + "。"]


def _hotline(kpis: pl.DataFrame | None, coverage: Coverage | None = None) -> list[str]:
    calls = _metric(kpis, "calls")
    if calls is None:
        return ["本期无客服热线数据。"]
    through = coverage.through if coverage else None
    span = f"截至{labels.day_text(through, year=False)}" if through else "全年"
    text = f"本行客服热线{span}受理来电{_count(calls)}通"
    answer = _metric(kpis, "answer_rate")
    if answer is not None:
        text += f"，人工接通率{_pct(answer)}"
    satisfaction = _metric(kpis, "survey_satisfaction_rate")
    if satisfaction is not None:
        text += f"，客户满意度{_pct(satisfaction)}"
    responses = _metric(kpis, "survey_responses")
    if responses is not None:
        text += f"（参评{_count(responses)}通）"
    text += "。"
    intent, defused = _metric(kpis, "complaint_intent_calls"), _metric(kpis, "defused_calls")
    if intent:
        text += f"表达投诉意向的来电{_count(intent)}通，其中在通话中化解{_count(defused)}通。"
    return [text]


def _closing(settings: dict[str, Any]) -> list[str]:
    lines = []
    channels = str(settings.get("channels") or "").strip()
    if channels:
        lines += [f"本行消费者投诉渠道：{channels}。", ""]
    lines.append("特此公告。")
    when = str(settings.get("date") or "").strip()
    lines += ["", "本行", *([when] if when else [])]
    return lines


def _note(decimals: int, rounding: str) -> str:
    return "注：投诉数量为合并重复投诉后的件数；" + labels.share_note(rounding, decimals)[2:]


EMPTY = pl.DataFrame(
    schema={
        "code": pl.String,
        "name": pl.String,
        "complaints": pl.Int64,
        "share_pct": pl.Decimal(5, 2),
    }
)


def render(
    tables: dict[str, pl.DataFrame],
    year: str,
    decimals: int,
    rounding: str = "half_up",
    *,
    coverage: Coverage | None = None,
    settings: dict[str, Any] | None = None,
) -> str:
    """The disclosure as Markdown; `coverage` of the year (None: complete): a year the drops
    cover in part is named by its span, never 全年; a year no drop covers says 暂无数据 and
    states no figure. `settings`: the [disclosure] configuration plus `region` and
    `national_units` of [report]."""
    config = settings or {}
    span = _span(year, coverage)
    empty = EMPTY
    buckets = config.get("category_buckets") or {}
    category = grouped(tables.get("by_business_category", empty), buckets, decimals, rounding)
    cause = tables.get("by_cause", empty)
    region = tables.get("by_region", empty.rename({"name": "region"}))
    overview = tables.get("overview")
    out = [f"# {labels.period_title('annual', year, coverage)}消费投诉情况", ""]
    if coverage is not None and coverage.empty:
        opening = _no_data(year, coverage.late_records)
        return "\n".join([*out, *opening, "", *_closing(config), ""])
    out += [*_opening(span), ""]
    out += ["## 一、消费投诉总体情况", "", *_headline(overview, span), ""]
    out += ["## 二、投诉处理情况", "", *_handling(overview), ""]
    out += ["## 三、投诉业务类别分布", ""]
    out += [_top_sentence(category, "name", "业务", decimals), ""]
    out += [*_distribution(category, "name", "业务类别"), ""]
    mode, national = config.get("region", "province"), config.get("national_units", "province")
    out += ["## 四、投诉地区分布", "", *_region_paragraph(region, mode, national), ""]
    out += [*_distribution(region, "region", "地区"), ""]
    out += ["## 五、投诉原因分布", ""]
    out += [_top_sentence(cause, "name", "原因", decimals), ""]
    out += [*_distribution(cause, "name", "投诉原因"), ""]
    if "by_channel" in tables:
        out += ["## 六、投诉业务办理渠道分布", "", *_channel_paragraph(tables["by_channel"]), ""]
    out += ["## 七、客服热线服务情况", "", *_hotline(tables.get("hotline_kpis"), coverage), ""]
    out += [_note(decimals, rounding), "", *_closing(config), ""]
    text = "\n".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text
