"""`charts/*.png`: shares by business category, cause and region, and the monthly trend.

matplotlib with the Agg backend (no display). Chinese labels need a CJK font: the first of
`CJK_FONTS` that is installed (Debian: fonts-noto-cjk, see scripts/system-deps.sh); without one
the charts are still written, with a warning, and Chinese shows as empty boxes. PNGs carry no
"Software" text chunk, so equal tables give identical files.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import polars as pl  # noqa: E402
from kesu.reports import labels  # noqa: E402
from kesu.transforms.periods import Coverage  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

log = logging.getLogger(__name__)

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Noto Sans CJK JP",
    "SimHei",
    "Microsoft YaHei",
)
DPI = 110
BAR_COLOR = "#2F6DB5"


def cjk_font() -> str | None:
    """The family name of an installed CJK font, None if there is none."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    found = next((n for n in CJK_FONTS if n in names), None)
    if found is None:
        # matplotlib caches its font list: pick up fonts installed after the cache was built
        for path in font_manager.findSystemFonts():
            if "cjk" in path.lower() or "wqy" in path.lower() or "sourcehan" in path.lower():
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError):
                    continue
        names = {f.name for f in font_manager.fontManager.ttflist}
        found = next((n for n in CJK_FONTS if n in names), None)
    return found


def _style(font: str | None) -> Any:  # matplotlib types its keys as a Literal of rc names
    family = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    return {
        "font.family": "sans-serif",
        "font.sans-serif": family,
        "axes.unicode_minus": False,  # CJK fonts often lack U+2212
        "svg.hashsalt": "kesu",
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def _share_chart(frame: pl.DataFrame, label_col: str, title: str) -> Figure:
    rows = frame.select(label_col, "share_pct").to_dicts()[::-1]  # largest at the top
    names = [str(r[label_col]) for r in rows]
    shares = [float(r["share_pct"] or 0) for r in rows]
    height = max(2.5, 0.42 * len(rows) + 1.2)
    fig, ax = plt.subplots(figsize=(8, height), dpi=DPI)
    bars = ax.barh(names, shares, color=BAR_COLOR)
    texts = [f"{r['share_pct']}%" if isinstance(r["share_pct"], Decimal) else "" for r in rows]
    ax.bar_label(bars, labels=texts, padding=3, fontsize=9)
    ax.set_xlabel("占比（%）")
    ax.set_xlim(0, max(shares + [1.0]) * 1.18)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _trend_chart(frame: pl.DataFrame, title: str) -> Figure:
    # "2025-03" -> "3月": the year is in the title, and twelve full dates would overlap
    months = [f"{int(str(m)[5:7])}月" for m in frame["month"].to_list()]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=DPI)
    heads = labels.MONTHLY_TREND
    for col in ("complaints", "opinions", "praises", "regulator_transferred"):
        if col in frame.columns:
            values = [int(v or 0) for v in frame[col].to_list()]
            ax.plot(months, values, marker="o", label=heads[col])
    ax.set_ylabel("件数")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    handles, names = ax.get_legend_handles_labels()
    if "calls" in frame.columns:
        calls_ax = ax.twinx()
        calls = [int(v or 0) for v in frame["calls"].to_list()]
        calls_ax.bar(months, calls, color="#BBBBBB", alpha=0.35, label=heads["calls"], zorder=0)
        calls_ax.set_ylabel("热线来电（通）")
        calls_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        calls_ax.spines["right"].set_visible(True)
        ax.set_zorder(calls_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        h2, n2 = calls_ax.get_legend_handles_labels()
        handles, names = handles + h2, names + n2
    ax.legend(handles, names, loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _charts(heading: str) -> dict[str, tuple[str, Callable[[pl.DataFrame], Figure]]]:
    """{file stem: (table it draws, how)}."""
    return {
        "business_category_share": (
            "by_business_category",
            lambda f: _share_chart(f, "name", f"{heading} 投诉业务类别占比"),
        ),
        "cause_share": ("by_cause", lambda f: _share_chart(f, "name", f"{heading} 投诉原因占比")),
        "region_share": (
            "by_region",
            lambda f: _share_chart(f, "region", f"{heading} 投诉地区占比"),
        ),
        "monthly_trend": ("monthly_trend", lambda f: _trend_chart(f, f"{heading} 月度趋势")),
    }


def known_months(trend: pl.DataFrame, last_drop: date | None) -> pl.DataFrame:
    """The trend's months up to the month of an incomplete period's last drop: later months
    are unknown, not zero, and are not drawn (none at all when no drop covers the period)."""
    if last_drop is None:
        return trend.clear()
    month = pl.col("month").cast(pl.String).str.slice(0, 7)
    return trend.filter(month <= f"{last_drop:%Y-%m}")


def write_charts(
    tables: dict[str, pl.DataFrame],
    folder: Path,
    kind: str,
    period: str,
    coverage: Coverage | None = None,
) -> list[Path]:
    """Draw every chart whose table is present; returns the PNG files written. The trend of a
    period the data does not cover stops at the month of its last drop: later months are
    unknown, not zero (`coverage` None: the period is complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    font = cjk_font()
    if font is None:
        log.warning(
            "no CJK font installed (tried %s): Chinese in the charts will not render; "
            "install fonts-noto-cjk (scripts/system-deps.sh)",
            ", ".join(CJK_FONTS),
        )
    heading = labels.period_title(kind, period, coverage)
    if coverage is not None and not coverage.complete and "monthly_trend" in tables:
        trend = known_months(tables["monthly_trend"], coverage.through)
        tables = tables | {"monthly_trend": trend}
    written = []
    with plt.rc_context(_style(font)), warnings.catch_warnings():
        if font is None:  # said once above: not once per missing glyph (~120 lines a report)
            warnings.filterwarnings(
                "ignore", message="Glyph .* missing from font", category=UserWarning
            )
        for stem, (table, draw) in _charts(heading).items():
            if table not in tables:
                continue
            fig = draw(tables[table])
            path = folder / f"{stem}.png"
            fig.savefig(path, format="png", metadata={"Software": None})
            plt.close(fig)
            written.append(path)
    return written
