"""The branch reference as the generator uses it: who owns a record, how busy each outlet is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

# Rough economic weight of each province: how much of the bank's business happens there.
PROVINCE_WEIGHT = {
    "广东省": 12,
    "江苏省": 10,
    "浙江省": 8,
    "山东省": 8,
    "北京市": 6,
    "上海市": 6,
    "四川省": 5,
    "河南省": 5,
    "湖北省": 4,
    "福建省": 4,
    "湖南省": 4,
    "安徽省": 4,
    "河北省": 3.5,
    "陕西省": 3,
    "辽宁省": 3,
    "重庆市": 2.5,
    "江西省": 2.5,
    "云南省": 2.5,
    "广西壮族自治区": 2.2,
    "山西省": 2,
    "内蒙古自治区": 2,
    "贵州省": 1.8,
    "天津市": 1.5,
    "新疆维吾尔自治区": 1.5,
    "黑龙江省": 1.5,
    "吉林省": 1.2,
    "甘肃省": 1,
    "海南省": 0.6,
    "宁夏回族自治区": 0.4,
    "青海省": 0.3,
    "西藏自治区": 0.2,
}
# 计划单列市 have their own NFRA office (监管局) separate from their province's.
SEPARATE_REGULATOR_CITIES = ("大连", "青岛", "宁波", "厦门", "深圳")
_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "省", "市")


def province_short(province: str) -> str:
    """辽宁省 -> 辽宁, 广西壮族自治区 -> 广西."""
    for suffix in _PROVINCE_SUFFIXES:
        if province.endswith(suffix):
            return province[: -len(suffix)]
    return province


@dataclass(frozen=True)
class Branches:
    outlets: np.ndarray  # codes of the 支行 that hold customers' accounts
    outlet_weights: np.ndarray
    tier1: np.ndarray  # codes of the 分行
    card_centre: str
    service_centre: str
    known: frozenset[str]
    tier1_of: dict[str, str]
    name: dict[str, str]
    province: dict[str, str]
    city: dict[str, str]
    regulator: dict[str, str]  # code -> the NFRA office that forwards complaints about it


def _tier1_of(code: str, parent: dict[str, str], kind: dict[str, str]) -> str:
    """The 分行 above `code` (itself if it is one); a head-office unit stands for itself."""
    seen = code
    while seen and kind.get(seen) != "分行":
        seen = parent.get(seen, "")
    return seen or code


def load_branches(path: Path, home: str | None = None) -> Branches:
    """Read a branch reference; `home` keeps only the tier-1 branches seated in that city."""
    ref = pl.read_csv(path, infer_schema=False).fill_null("")
    rows = ref.rows(named=True)
    parent = {r["机构代码"]: r["上级机构代码"] for r in rows}
    kind = {r["机构代码"]: r["机构类型"] for r in rows}
    city = {r["机构代码"]: r["城市"] for r in rows}
    province = {r["机构代码"]: r["省份"] for r in rows}
    tier1_of = {code: _tier1_of(code, parent, kind) for code in parent}
    regulator = {}
    for code, top in tier1_of.items():
        seat = city.get(top, "").removesuffix("市")
        office = seat if seat in SEPARATE_REGULATOR_CITIES else province_short(province[top])
        regulator[code] = f"国家金融监督管理总局{office}监管局"
    tier1 = [c for c, k in kind.items() if k == "分行"]
    if home and any(city[c].startswith(home) for c in tier1):
        tier1 = [c for c in tier1 if city[c].startswith(home)]
    outlets = [c for c, k in kind.items() if k == "支行" and tier1_of[c] in tier1] or tier1
    rural = {r["机构代码"] for r in rows if r["城乡"] == "乡镇"}
    weights = np.array(
        [PROVINCE_WEIGHT.get(province[c], 1.0) * (0.4 if c in rural else 1.0) for c in outlets]
    )
    # a province's weight is shared among its outlets, so count outlets per province
    per_province = {
        p: sum(province[c] == p for c in outlets) for p in {province[c] for c in outlets}
    }
    weights = weights / np.array([per_province[province[c]] for c in outlets])
    centre = {k: c for c, k in kind.items() if k in ("信用卡中心", "客服中心")}
    return Branches(
        outlets=np.array(outlets),
        outlet_weights=weights / weights.sum(),
        tier1=np.array(tier1),
        card_centre=centre.get("信用卡中心", tier1[0]),
        service_centre=centre.get("客服中心", tier1[0]),
        known=frozenset(parent),
        tier1_of=tier1_of,
        name={r["机构代码"]: r["机构名称"] for r in rows},
        province=province,
        city=city,
        regulator=regulator,
    )
