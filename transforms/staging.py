"""Staging: one source file's text columns -> the typed, tokenized rows of its staged table.

Rename, cast, map to codes, tokenize — nothing else (dbt's `stg_` layer). The work is driven by
`kesu.transforms.columns`, one spec for all three feeds, so the feeds cannot drift apart; what
differs per feed is data in that spec, not code. Every problem found on the way is an *issue* (row,
field, rule, reason); the rows stay, and the expectations decide what loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl
from kesu.transforms import parsing, pii
from kesu.transforms.columns import COLUMNS, RECORD_KEY, Column, pii_column
from kesu.transforms.lookups import AXIS_OF_KIND, OTHER_CODE, Lookups
from kesu.transforms.personal_data import has_personal_data, mask_personal_data

SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"
LINE = "_line"
RAGGED = "_ragged"
PII_KINDS = ("phone", "person_name", "id_number")
ISSUE_SCHEMA = {"row": pl.UInt32, "field": pl.String, "rule": pl.String, "reason": pl.String}


@dataclass(frozen=True)
class StagingContext:
    pii_key: bytes
    lookups: Lookups
    # plausible dates and times: from `earliest` to the end of the day `latest` (None: no end)
    earliest: date = date(2000, 1, 1)
    latest: date | None = None


# Dates that lie ahead by nature (a reply's due date): only too early is a defect for them.
FUTURE_BY_NATURE = frozenset({"due_on"})


@dataclass(frozen=True)
class HeaderCheck:
    rename: dict[str, str]  # source header -> canonical name
    missing_required: list[str] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StagedFile:
    """One row per source record, in source order: typed values, their issues, masked text."""

    staged: pl.DataFrame
    issues: pl.DataFrame  # ISSUE_SCHEMA, `row` = position in `staged`
    masked_source: pl.DataFrame  # canonical names, text as written, personal data masked


def check_headers(feed: str, headers: list[str]) -> HeaderCheck:
    """Match a file's headers against the feed's spec; order does not matter."""
    spec = {c.header: c for c in COLUMNS[feed]}
    present = [h for h in headers if h in spec]
    unknown = [h for h in headers if h not in spec and not h.startswith("_")]
    repeated = sorted({h.split("#")[0] for h in unknown if "#" in h and h.split("#")[0] in spec})
    unknown = [h for h in unknown if h.split("#")[0] not in repeated]
    missing = [c for c in COLUMNS[feed] if c.header not in present]
    return HeaderCheck(
        rename={h: spec[h].name for h in present},
        missing_required=[c.header for c in missing if c.required],
        missing_optional=[c.header for c in missing if not c.required],
        unknown=unknown,
        repeated=repeated,
    )


def _issue(problem: pl.Series, col: Column, rule: str) -> pl.DataFrame:
    rows = problem.is_not_null().arg_true().cast(pl.UInt32)
    n = rows.len()
    return pl.DataFrame(
        {
            "row": rows,
            "field": [col.header] * n,
            "rule": [rule] * n,
            "reason": f"{col.header} ({col.name}): " + problem.gather(rows),
        },
        schema=ISSUE_SCHEMA,
    )


def _unknown(clean: pl.Series, code: pl.Series, what: str) -> pl.Series:
    return pl.select(
        pl.when(pl.lit(clean).is_not_null() & pl.lit(code).is_null()).then(
            pl.lit('"') + pl.lit(clean) + f'" {what}'
        )
    ).to_series()


PARSERS = {
    "datetime": parsing.parse_datetime,
    "date": parsing.parse_date,
    "int": parsing.parse_int,
    "decimal": parsing.parse_decimal,
    "yes_no": parsing.parse_yes_no,
}
PII = {
    "phone": (pii.normalize_phone, pii.mask_phone),
    "person_name": (pii.normalize_name, pii.mask_name),
    "id_number": (pii.normalize_id_number, pii.mask_id_number),
}
UNKNOWN_LABEL = (
    "is not a JR/T 0169 code or a label in the label map (reference/label_map.csv); "
    "map it there or correct the source"
)
PERSONAL_DATA = (
    "holds what looks like a phone, ID or card number (masked here; the clear value is only in "
    "the raw zone); correct the source"
)
UNKNOWN_BRANCH = (
    "is not a branch code or name in the branch reference; add it or correct the source"
)


def _stage_column(
    col: Column, clean: pl.Series, ctx: StagingContext, own_name: pl.Series | None
) -> tuple[list[pl.Series], pl.Series, pl.DataFrame | None]:
    """(typed output columns, text for quarantine, issues) of one source column."""
    kind = col.kind
    if kind in PARSERS:
        values, problem = PARSERS[kind](clean)
        issues = _issue(problem, col, "unparseable")
        if kind in ("datetime", "date"):
            latest = None if col.name in FUTURE_BY_NATURE else ctx.latest
            odd = parsing.implausible(values, ctx.earliest, latest)
            issues = pl.concat([issues, _issue(odd, col, "implausible_time")])
        return [values.alias(col.name)], mask_personal_data(clean), issues
    if kind in PII:
        normalize, mask = PII[kind]
        normal = normalize(clean)
        masked = mask(normal).alias(pii_column(col, "masked"))
        token = pii.tokens(normal, ctx.pii_key, kind).alias(pii_column(col, "token"))
        return [token, masked], masked, None
    if kind == "free_text":
        masked = pii.mask_free_text(clean, own_name).alias(f"{col.name}_masked")
        return [masked], masked, None
    # Not meant to hold personal data, but a phone typed here must not load in clear: the value
    # is masked and its row held (a masked id or label would be a wrong value, not a safe one).
    found = has_personal_data(clean)
    personal = None
    if found.any():
        clean = clean.zip_with(~found, mask_personal_data(clean))
        reason = pl.Series([PERSONAL_DATA] * clean.len()).set(~found, None)
        personal = _issue(reason, col, "personal_data")
    if kind in AXIS_OF_KIND:
        axis = AXIS_OF_KIND[kind]
        code = clean.replace_strict(ctx.lookups.labels[axis], default=None, return_dtype=pl.String)
        if ctx.lookups.unknown_label == "other":  # loaded under 其他; the report lists the label
            code = pl.select(pl.when(pl.lit(clean).is_not_null()).then(
                pl.lit(code).fill_null(OTHER_CODE[axis]))).to_series()  # fmt: skip
        issues = _issue(_unknown(clean, code, UNKNOWN_LABEL), col, "unknown_label")
        columns = [clean.alias(f"{col.name}_label"), code.alias(f"{col.name}_code")]
    elif kind == "branch":
        code = clean.replace_strict(ctx.lookups.branches, default=None, return_dtype=pl.String)
        issues = _issue(_unknown(clean, code, UNKNOWN_BRANCH), col, "unknown_branch")
        columns = [clean.alias("branch_label"), code.alias("branch_code")]
    else:
        issues, columns = None, [clean.alias(col.name)]  # type: ignore[assignment]
    if personal is not None:
        issues = personal if issues is None else pl.concat([personal, issues])
    return columns, clean, issues


def duplicate_keys(staged: pl.DataFrame, feed: str) -> pl.DataFrame:
    """Issues for every repeat of a record key after its first occurrence (in file, line order).

    The first occurrence loads; within one drop the same call, or the same ticket version, twice
    is an export fault, not new information.
    """
    key = list(RECORD_KEY[feed])
    # Repeats are rare: the windows below run only over the rows whose key occurs twice.
    repeated = pl.struct(key).is_duplicated() if len(key) > 1 else pl.col(key[0]).is_duplicated()
    indexed = staged.with_row_index("row").filter(
        pl.all_horizontal(pl.col(k).is_not_null() for k in key) & repeated
    )
    first = pl.col("row").first().over(key)
    dups = indexed.with_columns(
        first.alias("first_row"),
        pl.col(SOURCE_FILE).first().over(key).alias("first_file"),
        pl.col(SOURCE_LINE).first().over(key).alias("first_line"),
    ).filter(pl.col("row") != pl.col("first_row"))
    header = {c.name: c.header for c in COLUMNS[feed]}
    fields = "、".join(header[k] for k in key)
    # Keys are ids and times, never personal data: the reason may quote them.
    shown = [
        pl.col(k).dt.to_string("%Y-%m-%d %H:%M:%S")
        if staged.schema[k].is_temporal()
        else '"' + pl.col(k) + '"'
        for k in key
    ]
    values = shown[0] if len(shown) == 1 else pl.concat_str(shown, separator="、")
    return dups.select(
        pl.col("row").cast(pl.UInt32),
        pl.lit(fields).alias("field"),
        pl.lit("duplicate_key").alias("rule"),
        (
            pl.lit(f"{fields} ")
            + values
            + ": repeats the record at "
            + pl.col("first_file")
            + " line "
            + pl.col("first_line").cast(pl.String)
            + "; only the first occurrence can load"
        ).alias("reason"),
    )


def _ragged(source: pl.DataFrame) -> pl.DataFrame:
    problem = source[RAGGED] if RAGGED in source.columns else pl.Series([None] * source.height)
    rows = problem.is_not_null().arg_true().cast(pl.UInt32)
    return pl.DataFrame(
        {
            "row": rows,
            "field": ["(record)"] * rows.len(),
            "rule": ["record_shape"] * rows.len(),
            "reason": problem.gather(rows).cast(pl.String),
        },
        schema=ISSUE_SCHEMA,
    )


def stage(feed: str, source: pl.DataFrame, source_file: str, ctx: StagingContext) -> StagedFile:
    """One row per source record: the file's text columns (canonical names) typed and tokenized.

    `source` carries canonical column names (missing optional columns may be absent) and `_line`.
    """
    outputs: list[pl.Series] = []
    masked_source: list[pl.Series] = []
    issues = [_ragged(source)]
    person = next((c for c in COLUMNS[feed] if c.kind == "person_name"), None)
    own_name = None
    if person is not None and person.name in source.columns:
        own_name = pii.normalize_name(parsing.clean_text(source[person.name]))
    for col in COLUMNS[feed]:
        text = source[col.name].cast(pl.String) if col.name in source.columns else None
        if text is None:
            text = pl.Series(col.name, [None] * source.height, dtype=pl.String)
        values, masked, found = _stage_column(col, parsing.clean_text(text), ctx, own_name)
        outputs.extend(values)
        masked_source.append(masked.alias(col.name))
        if found is not None:
            issues.append(found)
    staged = pl.DataFrame(outputs).with_columns(
        pl.lit(source_file).alias(SOURCE_FILE), source[LINE].alias(SOURCE_LINE)
    )
    staged = staged.select(STAGED_COLUMNS[feed])
    return StagedFile(staged, pl.concat(issues), pl.DataFrame(masked_source))


# Column order of the staged tables (docs/architecture.md); it is part of the warehouse contract.
STAGED_COLUMNS = {
    "hotline": [
        "call_id",
        "call_start_at",
        "queued_at",
        "answered_at",
        "hung_up_at",
        "caller_token",
        "caller_masked",
        "service_mode",
        "agent_id",
        "call_type",
        "inquiry_category",
        "inquiry_topic",
        "customer_mood",
        "complaint_intent",
        "outcome",
        "complaint_id",
        "survey_satisfaction",
        "branch_code",
        SOURCE_FILE,
        SOURCE_LINE,
    ],
    "complaints": [
        "complaint_id",
        "ticket_type",
        "intake_channel",
        "received_at",
        "channel_label",
        "channel_code",
        "business_category_label",
        "business_category_code",
        "cause_label",
        "cause_code",
        "branch_code",
        "customer_name_token",
        "customer_name_masked",
        "id_number_token",
        "id_number_masked",
        "contact_phone_token",
        "contact_phone_masked",
        "content_masked",
        "status",
        "extended",
        "excluded_days",
        "closed_at",
        "liability",
        "original_complaint_id",
        "callback_satisfaction",
        "amount",
        "updated_at",
        SOURCE_FILE,
        SOURCE_LINE,
    ],
    "regulator_transfers": [
        "transfer_id",
        "regulator",
        "source",
        "transferred_on",
        "due_on",
        "complainant_name_token",
        "complainant_name_masked",
        "contact_phone_token",
        "contact_phone_masked",
        "branch_label",
        "branch_code",
        "business_category_label",
        "business_category_code",
        "matter_masked",
        "complaint_id",
        "replied_on",
        "status",
        "updated_at",
        SOURCE_FILE,
        SOURCE_LINE,
    ],
}
