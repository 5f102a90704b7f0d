"""The staging mapping: every source header, its canonical name, type and rule.

This is the only module where the Chinese source headers appear (feeds.md is the contract).
The sample generator writes files from it and staging reads files through it, so the two
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "id",  # identifier kept exactly as the source wrote it
    "text",  # plain text, no personal data
    "datetime",  # China local time, any accepted format
    "date",
    "enum",  # one of `values`
    "yes_no",  # 是 / 否 -> Boolean
    "int",
    "decimal",  # yuan, two decimals
    "phone",  # personal data
    "person_name",  # personal data
    "id_number",  # personal data: 18-char resident ID
    "free_text",  # may contain personal data: masked
    "channel_label",  # JR/T 0169 axis A, code or label
    "category_label",  # axis B
    "cause_label",  # axis C
    "branch",  # branch code (or full name) resolved against the branch reference
]

FEEDS = ("hotline", "complaints", "regulator_transfers")
FeedName = Literal["hotline", "complaints", "regulator_transfers"]


def check_feeds(names: Sequence[str]) -> list[str]:
    """`names` as a list; ValueError naming the unknown ones (or none named) in one line."""
    unknown = sorted(set(names) - set(FEEDS))
    if unknown or not names:
        what = f"unknown feed(s) {unknown}" if unknown else "no feed named"
        raise ValueError(f"{what}; choose from {', '.join(FEEDS)}")
    return list(names)


STAGED_TABLE = {
    "hotline": "stg_hotline",
    "complaints": "stg_complaints",
    "regulator_transfers": "stg_regulator_transfers",
}

# The key of one source record. Complaint tickets and transfers are snapshots: the same id
# appears again in later drops, so their key within a drop includes the version time.
RECORD_KEY = {
    "hotline": ("call_id",),
    "complaints": ("complaint_id", "updated_at"),
    "regulator_transfers": ("transfer_id", "updated_at"),
}


@dataclass(frozen=True)
class Column:
    header: str
    name: str
    kind: Kind
    required: bool = False
    values: tuple[str, ...] = ()
    # required only on rows where column `when[0]` takes one of the values `when[1]`
    required_when: tuple[str, tuple[str, ...]] | None = None


YES_NO = ("是", "否")

HOTLINE = (
    Column("通话编号", "call_id", "id", required=True),
    Column("来电时间", "call_start_at", "datetime", required=True),
    Column("进入队列时间", "queued_at", "datetime"),
    Column("应答时间", "answered_at", "datetime"),
    Column("挂机时间", "hung_up_at", "datetime", required=True),
    Column("主叫号码", "caller_number", "phone", required=True),
    Column("服务方式", "service_mode", "enum", required=True, values=("自助语音", "人工")),
    Column("坐席工号", "agent_id", "id"),
    Column(
        "来电类型",
        "call_type",
        "enum",
        required=True,
        values=("咨询", "查询", "办理", "挂失", "投诉", "建议", "表扬"),
    ),
    Column(
        "业务大类",
        "inquiry_category",
        "enum",
        required=True,
        values=("个人业务", "电子银行", "银行卡", "信用卡", "贷款", "对公业务", "其他"),
    ),
    Column("业务小类", "inquiry_topic", "text"),
    Column("客户情绪", "customer_mood", "enum", required=True, values=("正常", "不满")),
    Column("投诉意向", "complaint_intent", "yes_no", required=True),
    Column(
        "处理结果",
        "outcome",
        "enum",
        required=True,
        values=("已解答", "已化解", "转投诉", "转办", "未解决"),
    ),
    Column("投诉编号", "complaint_id", "id", required_when=("outcome", ("转投诉",))),
    Column(
        "满意度",
        "survey_satisfaction",
        "enum",
        required=True,
        values=("满意", "一般", "不满意", "未评价"),
    ),
    Column("归属机构", "branch_code", "id"),
)

COMPLAINT_TYPES = ("投诉", "意见", "表扬")
COMPLAINT_CLOSED_STATUSES = ("已办结", "已撤诉")

COMPLAINTS = (
    Column("投诉编号", "complaint_id", "id", required=True),
    Column("工单类型", "ticket_type", "enum", required=True, values=COMPLAINT_TYPES),
    Column(
        "受理渠道",
        "intake_channel",
        "enum",
        required=True,
        values=(
            "客服热线",
            "营业网点",
            "网上银行",
            "手机银行",
            "微信银行",
            "信函",
            "电子邮件",
            "监管转办",
            "媒体舆情",
            "信访",
        ),
    ),
    Column("受理时间", "received_at", "datetime", required=True),
    Column("业务办理渠道", "channel", "channel_label", required_when=("ticket_type", ("投诉",))),
    Column(
        "业务类别", "business_category", "category_label", required_when=("ticket_type", ("投诉",))
    ),
    Column("投诉原因", "cause", "cause_label", required_when=("ticket_type", ("投诉",))),
    Column("机构代码", "branch_code", "branch", required=True),
    Column("客户姓名", "customer_name", "person_name"),
    Column("证件号码", "id_number", "id_number"),
    Column("联系电话", "contact_phone", "phone"),
    Column("投诉内容", "content", "free_text"),
    Column(
        "处理状态",
        "status",
        "enum",
        required=True,
        values=("已受理", "处理中", "已办结", "已撤诉"),
    ),
    Column("是否延期", "extended", "yes_no"),
    Column("扣除天数", "excluded_days", "int"),
    Column(
        "办结时间", "closed_at", "datetime", required_when=("status", COMPLAINT_CLOSED_STATUSES)
    ),
    Column("责任认定", "liability", "enum", values=("有责", "无责", "待认定")),
    Column("原投诉编号", "original_complaint_id", "id"),
    Column(
        "回访满意度",
        "callback_satisfaction",
        "enum",
        values=("满意", "基本满意", "不满意", "未回访"),
    ),
    Column("涉及金额", "amount", "decimal"),
    Column("更新时间", "updated_at", "datetime", required=True),
)

REGULATOR_TRANSFERS = (
    Column("转办单号", "transfer_id", "id", required=True),
    Column("转办机构", "regulator", "text", required=True),
    Column("来源", "source", "enum", values=("12378热线", "信函", "网络", "来访")),
    Column("转办日期", "transferred_on", "date", required=True),
    Column("办理期限", "due_on", "date", required=True),
    Column("投诉人", "complainant_name", "person_name"),
    Column("联系电话", "contact_phone", "phone"),
    Column("被投诉机构", "branch_code", "branch", required=True),
    Column("业务类别", "business_category", "category_label", required=True),
    Column("投诉事项", "matter", "free_text"),
    Column("行内投诉编号", "complaint_id", "id"),
    Column("反馈日期", "replied_on", "date"),
    Column(
        "办理状态", "status", "enum", required=True, values=("待处理", "处理中", "已反馈", "已办结")
    ),
    Column("更新时间", "updated_at", "datetime", required=True),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "hotline": HOTLINE,
    "complaints": COMPLAINTS,
    "regulator_transfers": REGULATOR_TRANSFERS,
}

# The only headers whose values may hold a line break (feeds.md, "Additions"): a quote that
# leaves any other column open is a defect of the records it touches.
MULTILINE_HEADERS = frozenset(
    c.header for feed in FEEDS for c in COLUMNS[feed] if c.kind == "free_text"
)


# Personal-data columns are stored as `<stem>_token` and `<stem>_masked`; the stem is the column
# name except where that would read badly.
PII_STEM = {"caller_number": "caller"}


def pii_column(col: Column, suffix: str) -> str:
    """`caller_token`, `customer_name_masked`, ...: where a PII column's outputs are stored."""
    return f"{PII_STEM.get(col.name, col.name)}_{suffix}"


def header_to_name(feed: str) -> dict[str, str]:
    """Source header -> canonical snake_case name for one feed."""
    return {c.header: c.name for c in COLUMNS[feed]}


def column(feed: str, name: str) -> Column:
    return next(c for c in COLUMNS[feed] if c.name == name)


# The branch reference file (feeds.md, "Reference data") uses Chinese headers too.
BRANCH_HEADERS = {
    "机构代码": "branch_code",
    "机构名称": "branch_name",
    "上级机构代码": "parent_code",
    "机构类型": "branch_type",
    "省份": "province",
    "城市": "city",
    "城乡": "urban_rural",
}
