"""The versions of a complaint ticket: 已受理, 处理中 (again when extended), then 已办结 or 已撤诉.

Closing happens mostly within the 15-day limit, some tickets are extended to 30 days, a very few
run longer (some of those because outside appraisal days are excluded from the limit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
from kesu.transforms.columns import YES_NO, column

from .profiles import checked, weighted
from .world import DAY, clock, datetimes, ordinal_of

ACCEPTED, IN_PROGRESS, CLOSED, WITHDRAWN = column("complaints", "status").values
COMPLAINT, OPINION, PRAISE = column("complaints", "ticket_type").values
LIABLE, NOT_LIABLE, UNDECIDED = column("complaints", "liability").values
YES, NO = YES_NO
LIABILITY = checked("complaints", "liability", {"有责": 40, "无责": 55, "待认定": 5})
CALLBACK = checked(
    "complaints", "callback_satisfaction", {"满意": 55, "基本满意": 25, "不满意": 7, "未回访": 13}
)
NO_CALLBACK = "未回访"
_WITHIN = 0.86 ** np.arange(15)  # days 1..15: most tickets close in the first week


def close_days(
    rng: np.random.Generator, ticket_type: np.ndarray, withdrawn: np.ndarray
) -> np.ndarray:
    """Days from receipt to closing (>= 1)."""
    n = len(ticket_type)
    u = rng.random(n)
    days = np.where(
        u < 0.885,
        rng.choice(15, n, p=_WITHIN / _WITHIN.sum()) + 1,
        np.where(u < 0.987, rng.integers(16, 31, n), rng.integers(31, 56, n)),
    )
    days = np.where(ticket_type == COMPLAINT, days, rng.integers(1, 8, n))
    return np.where(withdrawn, rng.integers(1, 11, n), days)


def versions(
    rng: np.random.Generator,
    ticket_type: np.ndarray,
    received: np.ndarray,
    close_day: np.ndarray,
    withdrawn: np.ndarray,
) -> pl.DataFrame:
    """One row per version of each ticket (`_row` = its position in the inputs), with `_day`,
    the ordinal of the drop it lands in; `close_day` is after the receipt day."""
    n = len(ticket_type)
    recv_day = received // DAY  # days since 1970-01-01
    span = np.maximum(close_day - ordinal_of(received), 1)
    complaint = (ticket_type == COMPLAINT) & ~withdrawn
    appraisal = complaint & ((rng.random(n) < 0.025) | ((span > 30) & (rng.random(n) < 0.5)))
    excluded = np.where(appraisal, rng.integers(3, 11, n), 0).astype(str)
    extended = complaint & (span - np.where(appraisal, excluded.astype(int), 0) > 15)
    progress = rng.choice([1, 2], n, p=[0.7, 0.3])
    first_at = np.minimum(received + rng.integers(60, 1200, n), (recv_day + 1) * DAY - 1)
    progress_at = (recv_day + progress) * DAY + clock(rng, n, 8.5, 20)
    extension_at = (recv_day + 13 + rng.integers(0, 3, n)) * DAY + clock(rng, n, 9, 18)
    closed_at = (recv_day + span) * DAY + clock(rng, n, 9, 19)
    final_at = np.minimum(closed_at + rng.integers(60, 1800, n), (recv_day + span + 1) * DAY - 1)

    liability = _draw(rng, LIABILITY, n)
    liability[ticket_type == PRAISE] = None
    soft = (ticket_type == OPINION) | withdrawn
    liability[soft] = _some(rng.random(soft.sum()) < 0.7, NOT_LIABLE)
    callback = _draw(rng, CALLBACK, n)
    callback[withdrawn] = NO_CALLBACK
    pending = _some(rng.random(n) < 0.4, UNDECIDED)
    final = np.where(withdrawn, WITHDRAWN, CLOSED)
    plan: list[tuple[np.ndarray, dict[str, Any]]] = [  # (version exists, its values)
        (np.ones(n, bool), {"status": ACCEPTED, "extended": NO, "_updated": first_at}),
        (progress < span, {"status": IN_PROGRESS, "extended": NO, "excluded_days": excluded,
                           "liability": pending, "_updated": progress_at}),
        (extended, {"status": IN_PROGRESS, "extended": YES, "excluded_days": excluded,
                    "liability": pending, "_updated": extension_at}),
        (np.ones(n, bool), {"status": final, "extended": np.where(extended, YES, NO),
                            "excluded_days": excluded, "liability": liability,
                            "callback_satisfaction": callback, "_closed": closed_at,
                            "_updated": final_at}),
    ]  # fmt: skip
    keep = [np.flatnonzero(exists) for exists, _ in plan]

    def stacked(name: str, missing: Any = None) -> np.ndarray:
        return np.concatenate(
            [
                np.broadcast_to(np.asarray(v.get(name, missing)), n)[k]
                for (_, v), k in zip(plan, keep, strict=True)
            ]
        )

    closed, updated = stacked("_closed", 0).astype(np.int64), stacked("_updated").astype(np.int64)
    text = ("status", "extended", "excluded_days", "liability", "callback_satisfaction")
    return pl.DataFrame(
        {
            "_row": np.concatenate(keep),
            **{name: pl.Series(stacked(name).tolist(), dtype=pl.String) for name in text},
            "closed_at": datetimes(closed, closed > 0),
            "updated_at": datetimes(updated),
            "_day": ordinal_of(updated),
        }
    )


def _some(mask: np.ndarray, value: str) -> np.ndarray:
    """`value` where `mask`, else None."""
    out = np.full(len(mask), None, dtype=object)
    out[mask] = value
    return out


def _draw(rng: np.random.Generator, weights: Mapping[str, float], n: int) -> np.ndarray:
    values, p = weighted(weights)
    return np.array(values, dtype=object)[rng.choice(len(values), n, p=p)]
