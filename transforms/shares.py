"""Shares and rates as regulators read them: decimal rounding, 其他 last, columns that add up.

Every rounded number is computed in `decimal.Decimal` (or exact integers) from raw counts: never
from binary floats, never by adding rounded values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext

import polars as pl

ROUNDINGS = ("half_up", "largest_remainder")
OTHER_CODES = frozenset({"A0199", "A010399", "B99", "C99"})
OTHER_NAME = "其他"
VALUE = pl.Decimal(20, 2)  # `value` of overview / hotline_kpis: counts and rates in one column
_LAST_KEY = "\uffff"  # the unshown remainder of a parent: loses every tie


def pct_dtype(decimals: int = 2) -> pl.Decimal:
    """Dtype of a percentage column: exactly the rounded value, up to 100 with `decimals`."""
    return pl.Decimal(10, decimals)


def ratio(top: int | Decimal, bottom: int | Decimal | None, decimals: int = 2) -> Decimal | None:
    """top / bottom rounded half-up (ties away from zero); None when bottom is 0 or None."""
    if bottom is None or bottom == 0:
        return None
    with localcontext(prec=60):  # exact to far below any tie for counts of any realistic size
        exact = Decimal(top) / Decimal(bottom)
        return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def percent(part: int | Decimal, whole: int | Decimal | None, decimals: int = 2) -> Decimal | None:
    """part / whole x 100, half-up to `decimals`; None when whole is 0 or unknown."""
    return ratio(Decimal(part) * 100, whole, decimals)


def largest_remainder(counts: Sequence[int], keys: Sequence[str], decimals: int,
                      denominator: int | None = None, units: int | None = None,
                      ) -> list[Decimal | None]:  # fmt: skip
    """Percent of `denominator` (default: the sum) per row, floored at `decimals`; the `units`
    (default: 100 % in steps of 10^-decimals) not yet handed out go to the largest remainders,
    ties to the larger count, then the smaller key. The result adds to exactly `units`."""
    total = sum(counts) if denominator is None else denominator
    if total == 0:
        return [None] * len(counts)
    scale = 100 * 10**decimals
    target = scale if units is None else units
    floors, remainders = zip(*(divmod(c * scale, total) for c in counts), strict=True)
    left = target - sum(floors)
    if not 0 <= left <= len(counts):
        raise ValueError(f"cannot hand out {target} units over {len(counts)} rows")
    order = sorted(range(len(counts)), key=lambda i: (-remainders[i], -counts[i], keys[i]))
    bonus = set(order[:left])
    return [Decimal(f + (i in bonus)).scaleb(-decimals) for i, f in enumerate(floors)]


def shares(counts: Sequence[int], keys: Sequence[str], rounding: str, decimals: int,
           denominator: int | None = None) -> list[Decimal | None]:  # fmt: skip
    """Share (percent) of each row under the configured rounding; None when the total is 0."""
    if rounding == "largest_remainder":
        return largest_remainder(counts, keys, decimals, denominator)
    if rounding != "half_up":
        raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
    total = sum(counts) if denominator is None else denominator
    return [percent(c, total, decimals) for c in counts]


def display(share: Decimal | None, decimals: int) -> str | None:
    """The printed form of a share: 33.60%."""
    return None if share is None else f"{share:.{decimals}f}%"


def top_share(counts: Sequence[int], n: int, decimals: int = 1, other: int = 0) -> Decimal | None:
    """Share of the n largest counts in the total, from the raw counts (half-up), for sentences
    like "the top three categories account for 77.1%". `other` (the 其他 count) is in the total
    but never ranks among the top n."""
    ranked = sorted(counts, reverse=True)
    return percent(sum(ranked[:n]), sum(ranked) + other, decimals)


def is_other(key: pl.Expr, name: pl.Expr | None = None) -> pl.Expr:
    """True on the 其他 rows (B99, C99, A0199, A010399, or a row named 其他)."""
    other = key.is_in(sorted(OTHER_CODES)) | (key == OTHER_NAME)
    return other if name is None else other | (name == OTHER_NAME)


def ordered(frame: pl.DataFrame, count: str, key: str, last: pl.Expr) -> pl.DataFrame:
    """The rows of `frame` by descending count, `last` rows (其他) at the end, ties by key."""
    return (
        frame.with_columns(last.fill_null(False).alias("_last"))
        .sort(["_last", count, key], descending=[False, True, False], maintain_order=True)
        .drop("_last")
    )


def with_shares(frame: pl.DataFrame, count: str, key: str, rounding: str, decimals: int,
                label: str = "share_display") -> pl.DataFrame:  # fmt: skip
    """The rows of `frame` with `share_pct` (of the column total) and its printed form."""
    values = shares(frame[count].to_list(), [str(k) for k in frame[key].to_list()], rounding,
                    decimals)  # fmt: skip
    return frame.with_columns(
        pl.Series("share_pct", values, dtype=pct_dtype(decimals)),
        pl.Series(label, [display(v, decimals) for v in values], dtype=pl.String),
    )


def tree_shares(counts: Mapping[str, int], parent: Mapping[str, str | None], total: int,
                rounding: str, decimals: int,
                ) -> dict[str, tuple[Decimal | None, Decimal | None]]:  # fmt: skip
    """code -> (share of `total`, share among its siblings) for a code tree whose counts roll up.

    Under largest_remainder the top level adds to 100 and each parent's units are handed out
    among its children; what was coded at the parent itself (or at no known code, at the top)
    takes part as an unshown row, so the shown children add to the parent minus that part.
    """
    out: dict[str, tuple[Decimal | None, Decimal | None]] = {}

    def visit(node: str | None, units: int | None) -> None:
        kids = sorted(k for k, p in parent.items() if p == node)
        if not kids:
            return
        kid_counts = [counts.get(k, 0) for k in kids]
        own = (total if node is None else counts.get(node, 0)) - sum(kid_counts)
        rows, keys = kid_counts + [max(own, 0)], kids + [_LAST_KEY]
        if rounding == "largest_remainder" and units is not None:
            of_total = largest_remainder(rows, keys, decimals, total, units)[:-1]
        else:
            of_total = [percent(c, total, decimals) for c in kid_counts]
        among = shares(kid_counts, kids, rounding, decimals)
        for kid, share, sibling in zip(kids, of_total, among, strict=True):
            out[kid] = (share, sibling)
            visit(kid, None if share is None else int(share.scaleb(decimals)))

    visit(None, 100 * 10**decimals if total else None)
    return out


def rates(name: str, parts: Sequence[int], wholes: Sequence[int]) -> pl.Series:
    """A column of percentages part / whole, half-up to 2 decimals (None where whole is 0)."""
    values = [percent(p, w) for p, w in zip(parts, wholes, strict=True)]
    return pl.Series(name, values, dtype=pct_dtype(2))


def metric_values(values: Mapping[str, int | Decimal | None]) -> pl.DataFrame:
    """One row per metric: `metric`, `value` as Decimal(20, 2), counts and rates alike."""
    amounts = [None if v is None else Decimal(v) for v in values.values()]
    return pl.DataFrame({"metric": list(values), "value": pl.Series(amounts, dtype=VALUE)})
