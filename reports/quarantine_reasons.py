"""The quarantine rules and reasons in Chinese, wherever a reader sees them: the data stewards'
workbook, the report's held updates and the watch list's mark.

The warehouse keeps the reasons as staging and the expectation runner write them (English, with
the Chinese source header and the canonical column name); the workbook is read by the stewards of
the source systems, so it shows them in Chinese. The phrases below are the whole vocabulary those
writers use (transforms.parsing, transforms.staging, expectations.runner, warehouse.landing); a
phrase not listed here stays as it is, so a new reason is never lost, only left in English.
"""

from __future__ import annotations

import re
from typing import Any

RULE_TITLES = {
    "unparseable": "无法解析",
    "unknown_label": "未知分类标签",
    "unknown_branch": "未知机构",
    "personal_data": "含个人信息",
    "duplicate_key": "重复记录",
    "record_shape": "字段个数不符",
    "required": "必填项为空",
    "required_when": "条件必填项为空",
    "in_set": "取值不在允许范围",
    "order": "时间先后不符",
    "range": "数值超出范围",
    "unique_key": "主键重复",
}

# Applied in order: whole-sentence shapes first, then the words inside them.
PHRASES: list[tuple[str, Any]] = [
    (r"(\S+) \([a-z][a-z0-9_]*\)", r"\1"),  # 来电时间 (call_start) -> 来电时间
    # a value not in the reference data, or holding personal data (transforms.staging)
    (
        r" is not a JR/T 0169 code or a label in the label map \((.+?)\); "
        r"map it there or correct the source",
        r" 既不是 JR/T 0169 代码，也不在标签映射表（\1）中；请在映射表中补充，或更正源数据",
    ),
    (
        r" is not a branch code or name in the branch reference; add it or correct the source",
        " 不是机构参考表中的机构代码或名称；请在参考表中补充，或更正源数据",
    ),
    (
        r"holds what looks like a phone, ID or card number \(masked here; the clear value is "
        r"only in the raw zone\); correct the source",
        "含有疑似电话、证件或银行卡号码（此处已脱敏，原值仅存于原始区）；请更正源数据",
    ),
    (
        r"holds the name this row gives in (.+?) \(masked here; the clear value is only in the "
        r"raw zone\); correct the source",
        r"含有本行 \1 中的姓名（此处已脱敏，原值仅存于原始区）；请更正源数据",
    ),
    (
        r": repeats the record at (.+?) line (\d+); only the first occurrence can load",
        r"：与 \1 第 \2 行的记录重复，只有第一条可以入库",
    ),
    (r"^(.*?) appears more than once with the same (.*)$", r"\1 在 \2 相同的记录中重复出现"),
    (r" appears more than once$", " 重复出现"),
    # the condition's own words are translated by _condition (only there: not in quoted values)
    (
        r"^(.*?) is missing, required when (.*)$",
        lambda m: f"{m[1]} 为空（{_condition(m[2])}时必填）",
    ),
    (r": (.*) is not one of (\S+)$", r"：\1 不在允许值 \2 之内"),
    (r" is not between (\S+) and (\S+) \(exclusive\)$", r" 不在 \1 与 \2 之间（不含端点）"),
    (r" is not between (\S+) and (\S+)$", r" 不在 \1 与 \2 之间"),
    (r" is not above (\S+)$", r" 不大于 \1"),
    (r" is not below (\S+)$", r" 不小于 \1"),
    (r" is below (\S+)$", r" 小于 \1"),
    (r" is above (\S+)$", r" 大于 \1"),
    (" is before ", " 早于 "),
    (" is less than ", " 小于 "),
    (" is not after ", " 不晚于 "),
    (" is not greater than ", " 不大于 "),
    (r" is missing$", " 为空"),
    (r"not a date-time in (.+?): ", r"不是日期时间（应为 \1）："),
    (r"not a date in (.+?): ", r"不是日期（应为 \1）："),
    ("not a whole number: ", "不是整数："),
    ("not an amount in yuan with at most 2 decimals: ", "不是金额（元，最多两位小数）："),
    ("not 是 or 否: ", "不是“是”或“否”："),
    (
        r"the record has more fields than the (\d+) in the header",
        r"该行字段多于表头的 \1 个",
    ),
    (
        r"the record has only (\d+) of the (\d+) fields in the header "
        r"\(cut short, or split by a line break outside quotes\)",
        r"该行只有 \1 个字段，表头有 \2 个（记录被截断，或被引号外的换行拆开）",
    ),
    # a record's shape (warehouse.landing, warehouse.csv_records)
    (
        r"a quote opened in (.+?) does not close in a way that makes one record; "
        r"the line is held as a record of its own",
        r"\1 中的引号未能闭合成一条完整记录；该行单独作为一条记录隔离",
    ),
    (
        r"a quote opened in (.+?) does not close on its line, and (.+?) cannot hold a line "
        r"break; the line is held as a record of its own",
        r"\1 中的引号在本行未闭合，而 \2 不能包含换行；该行单独作为一条记录隔离",
    ),
    (
        r"it starts inside a value whose quote opened on line (\d+), in (.+?), which cannot hold "
        r"a line break; the line is held as a record of its own",
        r"该行开头位于第 \1 行 \2 中引号开始的值之内，而 \2 不能包含换行；该行单独作为一条记录隔离",
    ),
    (
        r"it starts inside a value whose quote opened on line (\d+); "
        r"the line is held as a record of its own",
        r"该行开头位于第 \1 行引号开始的值之内；该行单独作为一条记录隔离",
    ),
    (
        r"a quote opened in (.+?) closes on line (\d+), but they make (\d+) fields, not the "
        r"(\d+) in the header; the lines are held as one record",
        r"\1 中的引号到第 \2 行闭合，这几行共 \3 个字段，表头有 \4 个；作为一条记录隔离",
    ),
    (
        r"a quote opened in (.+?) closes on line (\d+), but a column that cannot hold a line "
        r"break has one; the lines are held as one record",
        r"\1 中的引号到第 \2 行闭合，但不能包含换行的列中有换行；这几行作为一条记录隔离",
    ),
    (
        r"a quoted value in (.+?) has text after its closing quote, so the line's values cannot "
        r"be read for sure; the line is held as a record of its own",
        r"\1 中带引号的值在闭合引号后还有文字，无法确定该行的值；该行单独作为一条记录隔离",
    ),
    (
        r"a quote opened in (.+?) closes on line (\d+), but a quoted value in (.+?) has text "
        r"after its closing quote; the lines are held as one record",
        r"\1 中的引号到第 \2 行闭合，但 \3 中带引号的值在闭合引号后还有文字；"
        r"这几行作为一条记录隔离",
    ),
    # an Excel error value (warehouse.landing_excel); "line N: " is translated below
    (
        r"^(line \d+: )?(.+?) holds an Excel error value \(([^)]+)\), not a value",
        r"\1\2 中是 Excel 错误值（\3），不是有效值",
    ),
    (
        r"^(line \d+: )?(.+?) holds an Excel error value, not a value",
        r"\1\2 中是 Excel 错误值，不是有效值",
    ),
    (
        r"^(line \d+: )?(.+?) holds a number of 16 or more digits, more than the 15 Excel keeps: "
        r"its last digits are lost \(the column must be stored as text\)",
        r"\1\2 中是 16 位以上的数字，超过 Excel 保留的 15 位有效数字，末几位已丢失"
        r"（该列须以文本格式保存）",
    ),
    (r"not valid text in the file's encoding \((.+?)\)", r"不是文件编码（\1）下的有效文本"),
    (r"^lines (\d+)-(\d+): ", r"第 \1–\2 行："),
    (r"^line (\d+): ", r"第 \1 行："),
    (r"\(personal data\)", "（个人信息）"),
    (r"(?<= )missing(?= |$)", "（缺失）"),  # a value that is not there (quoted values keep quotes)
    (r"^(\S+): ", r"\1："),
]
CONDITION_WORDS: list[tuple[str, str]] = [
    (" is not one of ", " 不属于 "),
    (" is one of ", " 属于 "),
    (" is missing", " 为空"),
    (" is present", " 不为空"),
    (" is ", " 为 "),
    (" and ", " 且 "),
    (" or ", " 或 "),
]
_COMPILED = [(re.compile(pattern), replacement) for pattern, replacement in PHRASES]
# "; " joins the reasons of one row; the duplicate-key, quote, reference-data and personal-data
# reasons have one of their own
_REASONS = re.compile(
    r"; (?!only the first occurrence|the lines? (?:is|are) held|map it there|add it or correct"
    r"|the clear value|correct the source)"
)


def _condition(text: str) -> str:
    for word, chinese in CONDITION_WORDS:
        text = text.replace(word, chinese)
    return text


def reason_zh(reason: str | None) -> str | None:
    """One stored reason (several are joined by "; ") in Chinese."""
    if reason is None:
        return None
    return "；".join(_one(part) for part in _REASONS.split(reason))


def _one(reason: str) -> str:
    for pattern, replacement in _COMPILED:
        reason = pattern.sub(replacement, reason)
    return reason


def rule_title(rules: str) -> str:
    """`unparseable;required` -> `无法解析；必填项为空`."""
    return "；".join(RULE_TITLES.get(r, r) for r in rules.split(";"))
