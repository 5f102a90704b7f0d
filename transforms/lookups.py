"""Reference data as lookups: label -> JR/T 0169 code per axis, and code or name -> branch code.

The flows read the reference files; this module only shapes their bytes and frames.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import polars as pl
from kesu.transforms.columns import BRANCH_HEADERS

AXIS_OF_KIND = {"channel_label": "A", "category_label": "B", "cause_label": "C"}
# Where a label missing from the mapping goes ([validation] unknown_label = "other"): the axis's
# 其他. Axis A has no top-level 其他; A0199 is the front office's.
OTHER_CODE = {"A": "A0199", "B": "B99", "C": "C99"}
UNKNOWN_LABEL_MODES = ("other", "quarantine")


@dataclass(frozen=True)
class Lookups:
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # axis -> label -> code
    branches: dict[str, str] = field(default_factory=dict)  # code or full name -> code
    unknown_label: str = "other"  # [validation] unknown_label: "other" or "quarantine"

    def __post_init__(self) -> None:
        if self.unknown_label not in UNKNOWN_LABEL_MODES:
            raise ValueError(f"[validation] unknown_label must be one of {UNKNOWN_LABEL_MODES}, "
                             f"not {self.unknown_label!r}")  # fmt: skip


def label_lookup(codes: pl.DataFrame, label_map: pl.DataFrame) -> dict[str, dict[str, str]]:
    """Per axis: each code maps to itself, each unambiguous standard name and local label to it.

    A standard name used by two codes of one axis (A's 其他 is both A0199 and A010399) maps to
    neither: a source writing just "其他" for a channel has to be resolved by a person.
    """
    lookup: dict[str, dict[str, str]] = {}
    for axis in ("A", "B", "C"):
        axis_codes = codes.filter(pl.col("axis") == axis)
        mapping = {c: c for c in axis_codes["code"].to_list()}
        names = (
            axis_codes.group_by("name").agg(pl.col("code")).filter(pl.col("code").list.len() == 1)
        )
        mapping |= {n: c[0] for n, c in names.iter_rows()}
        axis_labels = label_map.filter(pl.col("axis") == axis)
        mapping |= dict(
            zip(axis_labels["label"].to_list(), axis_labels["code"].to_list(), strict=True)
        )
        lookup[axis] = mapping
    return lookup


def branch_lookup(branches: pl.DataFrame) -> dict[str, str]:
    """Branch code -> itself and full name -> code (the regulator's platform writes either)."""
    codes = branches["branch_code"].cast(pl.String).to_list()
    names = branches["branch_name"].to_list()
    return {n: c for n, c in zip(names, codes, strict=True)} | {c: c for c in codes}


def code_names(codes: pl.DataFrame) -> dict[str, str]:
    return dict(zip(codes["code"].to_list(), codes["name"].to_list(), strict=True))


def from_reference_files(
    codes: bytes, label_map: bytes, branches: bytes, unknown_label: str
) -> Lookups:
    """The lookups of the reference files' bytes (feeds.md, "Reference data"; the branch file
    may carry its Chinese headers)."""
    frames = (pl.read_csv(io.BytesIO(c), infer_schema=False) for c in (codes, label_map, branches))
    codes_frame, label_frame, branch_frame = frames
    branch_frame = branch_frame.rename(
        {k: v for k, v in BRANCH_HEADERS.items() if k in branch_frame.columns}
    )
    return Lookups(
        labels=label_lookup(codes_frame, label_frame),
        branches=branch_lookup(branch_frame),
        unknown_label=unknown_label,
    )
