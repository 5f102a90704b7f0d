"""JR/T 0169 classification as source systems write it: codes, standard names, local labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from kesu.reference import JRT0169_CODES, LABEL_MAP
from kesu.transforms.columns import COMPLAINT_TYPES

from .profiles import weighted

COMPLAINT, OPINION, PRAISE = COMPLAINT_TYPES
# fmt: off
# 投诉原因 by 业务类别: the default row, and the categories whose causes differ from it.
CAUSES: dict[str, dict[str, float]] = {
    "*": {"C01": 22, "C02": 8, "C03": 24, "C04": 6, "C05": 4, "C06": 2, "C07": 14, "C08": 2,
          "C09": 3, "C10": 5, "C11": 3, "C12": 0.3, "C99": 6.7},
    "B03": {"C01": 15, "C02": 5, "C03": 20, "C04": 8, "C05": 5, "C06": 2, "C07": 22, "C08": 0.5,
            "C09": 5, "C10": 4, "C11": 3, "C12": 8, "C99": 2.5},
    "B04": {"C01": 16, "C03": 30, "C04": 5, "C05": 6, "C06": 3, "C07": 18, "C09": 10, "C10": 2,
            "C11": 2, "C12": 3, "C99": 5},
    "B06": {"C01": 10, "C03": 12, "C04": 20, "C05": 18, "C06": 5, "C08": 22, "C09": 8, "C99": 5},
    "B07": {"C01": 10, "C03": 12, "C04": 25, "C05": 18, "C06": 6, "C08": 15, "C09": 9, "C99": 5},
    "B10": {"C11": 70, "C03": 10, "C01": 10, "C99": 10},
    "B12": {"C12": 72, "C01": 12, "C11": 8, "C03": 5, "C99": 3},
}
# 业务办理渠道 by 业务类别.
CHANNELS: dict[str, dict[str, float]] = {
    "*": {"A0101": 32, "A010303": 22, "A02": 22, "A010302": 9, "A010301": 3, "A0102": 4,
          "A010304": 2, "A010305": 1, "A0104": 3, "A0199": 1, "A010399": 0.5, "A0103": 0.5},
    "B03": {"A02": 32, "A010303": 25, "A010302": 22, "A0101": 8, "A0104": 6, "A010305": 3,
            "A010304": 2, "A0199": 2},
    "B05": {"A010303": 35, "A0101": 20, "A010301": 12, "A0104": 15, "A02": 15, "A0102": 3},
    "B12": {"A010302": 60, "A02": 30, "A010305": 10},
}
# fmt: on
# 意见 and 表扬 are mostly about everyday service.
OPINION_CATEGORIES: dict[str, float] = {
    "B01": 20,
    "B02": 20,
    "B03": 20,
    "B04": 10,
    "B05": 10,
    "B99": 20,
}


@dataclass(frozen=True)
class Taxonomy:
    spellings: dict[str, list[str]]  # code -> every way a source system may write it

    def pick(
        self, table: Mapping[str, Mapping[str, float]], key: str, rng: np.random.Generator, n: int
    ) -> np.ndarray:
        """n codes drawn from table[key] (or the default row)."""
        codes, p = weighted(table.get(key, table["*"]))
        return np.array(codes)[rng.choice(len(codes), n, p=p)]

    def spell(
        self, codes: Sequence[str | None] | np.ndarray, rng: np.random.Generator
    ) -> list[str | None]:
        """Each code as a source system writes it: the code, its standard name or a local label."""
        u = rng.random(len(codes))
        out: list[str | None] = []
        plain = codes.tolist() if isinstance(codes, np.ndarray) else list(codes)
        for code, x in zip(plain, u.tolist(), strict=True):
            if code is None:
                out.append(None)
                continue
            names = self.spellings.get(code, [])
            if not names or x < 0.35:
                out.append(code)
            else:
                out.append(names[int((x - 0.35) / 0.65 * len(names))])
        return out

    def classify(
        self, rng: np.random.Generator, ticket_type: np.ndarray, categories: dict[str, float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """JR/T 0169 codes (category, cause, channel) per ticket; 意见/表扬 leave some empty."""
        n = len(ticket_type)
        complaint = ticket_type == COMPLAINT
        cats, p = weighted(categories)
        other, p_other = weighted(OPINION_CATEGORIES)
        category = np.where(
            complaint,
            np.array(cats)[rng.choice(len(cats), n, p=p)],
            np.array(other)[rng.choice(len(other), n, p=p_other)],
        ).astype(object)
        cause, channel = self.cause_and_channel(rng, category)
        category[(ticket_type == PRAISE) & (rng.random(n) < 0.4)] = None
        cause[(ticket_type == PRAISE) | ((ticket_type == OPINION) & (rng.random(n) < 0.5))] = None
        channel[~complaint & (rng.random(n) < 0.5)] = None
        return category, cause, channel

    def cause_and_channel(
        self, rng: np.random.Generator, category: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """投诉原因 and 业务办理渠道 codes, drawn given each ticket's 业务类别."""
        cause = np.empty(len(category), dtype=object)
        channel = np.empty(len(category), dtype=object)
        for code in np.unique(category.astype(str)):
            rows = np.flatnonzero(category == code)
            cause[rows] = self.pick(CAUSES, code, rng, len(rows))
            channel[rows] = self.pick(CHANNELS, code, rng, len(rows))
        return cause, channel


def load_taxonomy(codes: Path = JRT0169_CODES, labels: Path = LABEL_MAP) -> Taxonomy:
    """Spellings that map back to their code: the standard name first, then local labels."""
    standard = pl.read_csv(codes, infer_schema=False)
    mapped = pl.read_csv(labels, infer_schema=False)
    spellings: dict[str, list[str]] = {}
    for row in mapped.iter_rows(named=True):
        spellings.setdefault(row["code"], []).append(row["label"])
    for row in standard.iter_rows(named=True):
        names = spellings.get(row["code"], [])
        if row["name"] in names:  # the standard name gets as much weight as all local labels
            local = [n for n in names if n != row["name"]]
            spellings[row["code"]] = [row["name"]] * max(1, len(local)) + local
    return Taxonomy(spellings)
