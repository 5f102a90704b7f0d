"""How big and what shape of bank to simulate, and the deterministic random streams."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from kesu.transforms.columns import column


@dataclass(frozen=True)
class Profile:
    name: str
    calls: float  # hotline calls on a weekday
    tickets: float  # new complaint-system tickets on a weekday (before regulator-linked ones)
    transfers: float  # new regulator transfers on a weekday
    agents: int  # hotline agents on the roster
    home: str | None  # keep only the tier-1 branches seated in this city (a city bank)
    intake: dict[str, float]  # 受理渠道 of tickets not linked to a transfer
    categories: dict[str, float]  # 业务类别 (B codes) of 投诉 tickets


def value(feed: str, name: str, text: str) -> str:
    """One enum value, checked against the staging mapping at import."""
    return next(iter(checked(feed, name, {text: 1.0})))


def checked(feed: str, name: str, weights: dict[str, float]) -> dict[str, float]:
    """A weight table keyed by enum values, checked against the staging mapping at import."""
    allowed = column(feed, name).values
    unknown = set(weights) - set(allowed)
    if unknown:
        raise ValueError(f"{feed}.{name}: {sorted(unknown)} not in {allowed}")
    return weights


HOTLINE_INTAKE = value("complaints", "intake_channel", "客服热线")

# fmt: off
# 业务类别 of 投诉: a city bank has few cards; at a national bank credit cards dominate.
_CITY_BANK_CATEGORIES = {
    "B01": 14, "B02": 18, "B03": 12, "B04": 22, "B05": 9, "B06": 5, "B07": 5, "B08": 0.5,
    "B09": 0.5, "B10": 3, "B11": 1, "B12": 2, "B13": 0.2, "B14": 1.8, "B99": 6,
}
_NATIONAL_BANK_CATEGORIES = {
    "B01": 3.5, "B02": 7, "B03": 55, "B04": 12, "B05": 6, "B06": 3, "B07": 3, "B08": 0.5,
    "B09": 0.3, "B10": 2.5, "B11": 0.3, "B12": 3, "B13": 0.1, "B14": 1.3, "B99": 2.5,
}
PROFILES = {
    "small": Profile(
        name="small", calls=105, tickets=1.1, transfers=0.3, agents=12, home="大连",
        intake=checked("complaints", "intake_channel", {
            "客服热线": 45, "营业网点": 35, "手机银行": 8, "网上银行": 2, "微信银行": 4, "信函": 2,
            "电子邮件": 1, "媒体舆情": 1, "信访": 2}),
        categories=_CITY_BANK_CATEGORIES,
    ),
    "bank": Profile(
        name="bank", calls=310_000, tickets=1000, transfers=100, agents=2400, home=None,
        intake=checked("complaints", "intake_channel", {
            "客服热线": 62, "营业网点": 17, "手机银行": 10, "网上银行": 2, "微信银行": 4,
            "信函": 1.5, "电子邮件": 1.5, "媒体舆情": 1, "信访": 1}),
        categories=_NATIONAL_BANK_CATEGORIES,
    ),
}
# fmt: on

# Volume on Saturdays and Sundays relative to a weekday, per feed.
WEEKEND_FACTOR = {"calls": 0.8, "tickets": 0.7, "transfers": 0.15}


def volume(profile: Profile, what: str, day: dt.date, scale: float) -> float:
    """Expected count of new `what` (calls, tickets, transfers) on `day`."""
    base = getattr(profile, what) * scale
    return base * WEEKEND_FACTOR[what] if day.weekday() >= 5 else base


def stream(seed: int, day: dt.date, name: str) -> np.random.Generator:
    """The random stream of one (seed, day, purpose): every day is reproducible on its own."""
    return np.random.default_rng([seed % (1 << 64), day.toordinal(), zlib.crc32(name.encode())])


def weighted(weights: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    """Keys and normalised probabilities of a weight table."""
    p = np.array(list(weights.values()), dtype=float)
    return list(weights), p / p.sum()
