"""Staging: one source file's text columns -> the typed, tokenized rows of its staged table.

Rename, cast, map to codes, tokenize — nothing else (dbt's `stg_` layer). The work is driven by
`kesu.transforms.columns`, one spec for all three feeds, so the feeds cannot drift apart; what
differs per feed is data in that spec, not code. Every problem found on the way is an *issue* (row,
field, rule, reason); the rows stay, and the expectations decide what loads.

Over 250 lines: the plan of every kind of column (one lazy plan per file, or per group of small
files) and the staged tables' column order (the warehouse contract) belong together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial

import polars as pl
from kesu.transforms import parsing, pii
from kesu.transforms.columns import COLUMNS, RECORD_KEY, Column, pii_column
from kesu.transforms.lookups import AXIS_OF_KIND, OTHER_CODE, Lookups
from kesu.transforms.personal_data import (
    has_personal_data,
    mask_personal_data,
    may_hold_personal_data,
)
from kesu.transforms.value_sets import one_of, repeated

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

    @classmethod
    def for_drop(
        cls, pii_key: bytes, lookups: Lookups, drop_date: date, earliest: date, future_days: int
    ) -> StagingContext:
        """A drop's context: its dates are plausible from `earliest` to `future_days` after it
        (`[validation]`: a date "from the future" cannot be in tonight's export)."""
        return cls(pii_key, lookups, earliest, drop_date + timedelta(days=future_days))


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


def _unknown(clean: pl.Expr, code: pl.Expr, what: str) -> pl.Expr:
    unknown = clean.is_not_null() & code.is_null()
    return parsing.sentences(clean, [(unknown, '"')], after=f'" {what}', limit=None)


PARSERS = {
    "datetime": parsing.parse_datetime,
    "date": parsing.parse_date,
    "int": parsing.parse_int,
    "decimal": parsing.parse_decimal,
    "yes_no": parsing.parse_yes_no,
}
# the typed value and the problem of clean text, as expressions (date-times and dates: below)
EXPRESSION_PARSERS = {"int": parsing.ints, "decimal": parsing.decimals, "yes_no": parsing.yes_no}
PII = {
    "phone": (pii.phone, pii.phone_masked),
    "person_name": (pii.person_name, pii.name_masked),
    "id_number": (pii.id_number, pii.id_number_masked),
}
UNKNOWN_LABEL = (
    "is not a JR/T 0169 code or a label in the label map (reference/label_map.csv); "
    "map it there or correct the source"
)
PERSONAL_DATA = (
    "holds what looks like a phone, ID or card number (masked here; the clear value is only in "
    "the raw zone); correct the source"
)
OWN_NAME = (
    "holds the name this row gives in {header} (masked here; the clear value is only in the raw "
    "zone); correct the source"
)
UNKNOWN_BRANCH = (
    "is not a branch code or name in the branch reference; add it or correct the source"
)


def _masked_at(text: pl.Series, problem: pl.Series) -> pl.Series:
    """`text` with personal data masked in the rows that have a `problem` (not null).

    For the text of a parsed column as the quarantine keeps it (the split then masks it as
    strictly as the reason that quotes it: `quarantine.masked_as_reasons`). A value that parsed
    as a date, a date-time, a whole number or 是/否 holds no personal data: the detector's shapes
    need 10 digits or more in a run (a landline), and these have at most 9, or 10 split by ':' or
    '年' (`2025/07/01 23`: a mobile needs 11, a landline a leading 0). So only the values with a
    problem go through the detector, after the plan and only in the columns that have one: run
    on every value it took ~0.03 s per date-time column of a bank day, and even a pass picking
    the rows out cost ~3% of staging, for the few rows ever held."""
    rows = problem.is_not_null().arg_true()
    return text.scatter(rows, mask_personal_data(text.gather(rows)))


def _without_personal_data(
    text: pl.Series, known: tuple[str, ...] = (), ids: bool = False
) -> pl.Series:
    """{text, found}: a column not meant to hold personal data, with any masked, and where.

    Only values the detector would look at (10+ digits; `\\d` takes full-width digits too) are
    checked, and those by distinct value: most such columns have none at all. `known`: values
    that hold none (an enum's own), not looked at. With `known`, `text` is as written: the values
    not in `known` are cleaned here (`parsing.clean`), and an enum's are nearly all known. `ids`:
    an id column's text, where digits glued to a Latin letter are part of the id.
    """
    candidates = text
    found = parsing.constant(False, text.len(), pl.Boolean())
    if known:
        unknown = pl.arg_where(_unknown_value(text.name, known))
        others = text.to_frame().select_seq(unknown).to_series()
        if others.is_empty():  # every value is one of the enum's own
            return pl.DataFrame({"text": text, "found": found}).to_struct(text.name)
        written = text.gather(others)
        candidates = parsing.clean_text(written)
        if not candidates.equals(written):  # most columns: nothing to clean
            text = text.scatter(others, candidates)
    if _repeats_much(candidates):  # the few distinct values are looked at, not every row
        distinct = candidates.unique()
        distinct = distinct.filter(may_hold_personal_data(distinct, ids))  # null: filtered out
    else:
        maybe = may_hold_personal_data(candidates, ids)  # null: `any` and `filter` skip it
        distinct = candidates.filter(maybe).unique() if maybe.any() else candidates.clear()
    if distinct.len():
        hits = distinct.filter(has_personal_data(distinct, ids))
        if hits.len():
            found = text.is_in(hits.implode()).fill_null(False)
            text = text.zip_with(~found, text.replace(hits, mask_personal_data(hits, ids=ids)))
    return pl.DataFrame({"text": text, "found": found}).to_struct(text.name)


REPEATS_SAMPLE = 2048  # leading values of a column that tell whether it repeats much


def _repeats_much(values: pl.Series) -> bool:
    """Whether a long column's values repeat so much that finding its distinct values first is
    cheaper than the detector's candidate test on every row, as its first values suggest (at
    most 3 distinct in 4). For a bank day's calls: agent ids (2,401 distinct) 9.9 -> 3.4 ms, an
    inquiry topic (25 distinct, Chinese text) 16.7 -> 4.3 ms; a call id, distinct in every row,
    keeps the test on every row (finding its distinct values alone took 36 ms)."""
    if values.len() <= REPEATS_SAMPLE:
        return False
    head = values.head(REPEATS_SAMPLE)
    return 4 * head.n_unique() <= 3 * head.len()


def _unknown_value(name: str, known: tuple[str, ...]) -> pl.Expr:
    """A value not among `known` (null is none)."""
    return (~one_of(pl.col(name), known)).fill_null(False)


_CLEAN_STRUCT = pl.Struct({"text": pl.String, "found": pl.Boolean})


@dataclass
class _Plan:
    """A feed's staging as expressions: each layer reads the columns the layer before made."""

    prepared: list[pl.Expr] = field(default_factory=list)  # over the clean text columns
    outputs: list[pl.Expr] = field(default_factory=list)  # typed output columns
    masked: list[pl.Expr] = field(default_factory=list)  # text for quarantine, as `_m:<name>`
    problems: list[pl.Expr] = field(default_factory=list)  # issue reasons, as `_p:<rule>:<name>`
    # columns whose `_m:` text is masked after the plan, where `_p:unparseable:<name>` has a row
    masked_later: list[str] = field(default_factory=list)
    as_written: bool = False  # dates and date-times parsed as written (a long file)
    # columns whose `_n:<name>` says where the row's own name was masked (`_own_name_masked`)
    own_name_in: frozenset[str] = frozenset()
    own_name_reason: str = ""


def _plan_column(plan: _Plan, col: Column, ctx: StagingContext, own_name: str | None) -> None:
    kind, name = col.kind, col.name
    clean = pl.col(name)
    prepared = pl.col(f"_x:{name}")
    held: pl.Expr | None = None  # a parsed column's `personal_data` problem, if it can have one
    if kind in ("datetime", "date"):
        dtype: pl.DataType = pl.Datetime("us") if kind == "datetime" else pl.Date()
        if plan.as_written:  # `clean` is the text as written here (`_cleaned_later`)
            both = pl.Struct({"text": pl.String, "value": dtype})
            parse = partial(parsing.text_and_value, kind=kind)
            plan.prepared.append(clean.map_batches(parse, return_dtype=both).alias(f"_x:{name}"))
            text, parsed = prepared.struct.field("text"), prepared.struct.field("value")
        else:
            of_clean = parsing.naive_datetimes if kind == "datetime" else parsing.dates
            plan.prepared.append(
                clean.map_batches(of_clean, return_dtype=dtype).alias(f"_x:{name}")
            )
            text, parsed = clean, prepared
        if kind == "datetime":
            values, problem = parsing.local_datetimes(text, parsed)
        else:
            values, problem = parsed, parsing.problem(text, parsed, parsing.DATE_PROBLEM)
        plan.outputs.append(values.alias(name))
        plan.problems.append(problem.alias(f"_p:unparseable:{name}"))
        plan.masked.append(text)
        plan.masked_later.append(name)
    elif kind in EXPRESSION_PARSERS:
        values, problem = EXPRESSION_PARSERS[kind](clean)
        if kind == "decimal":
            # An amount can have 11 to 19 digits, as a phone or a card number has: one the
            # detector finds is held as personal data, as in a text column, not loaded as yuan.
            plan.prepared.append(
                clean.map_batches(_without_personal_data, return_dtype=_CLEAN_STRUCT).alias(
                    f"_x:{name}"
                )
            )
            found = prepared.struct.field("found")
            values, problem = pl.when(~found).then(values), pl.when(~found).then(problem)
            held = pl.when(found).then(pl.lit(PERSONAL_DATA))
            plan.masked.append(prepared.struct.field("text"))
        else:
            plan.masked.append(clean)
        plan.outputs.append(values.alias(name))
        plan.problems.append(problem.alias(f"_p:unparseable:{name}"))
        plan.masked_later.append(name)
    elif kind in PII:
        normalize, mask = PII[kind]
        plan.prepared.append(normalize(clean).alias(f"_x:{name}"))  # once, for three uses
        normal = prepared
        masked = mask(normal)
        plan.outputs.append(pii.token(normal, ctx.pii_key, kind).alias(pii_column(col, "token")))
        plan.outputs.append(masked.alias(pii_column(col, "masked")))
        plan.masked.append(masked)
    elif kind == "free_text":
        names = pii.person_name(pl.col(own_name)) if own_name else pl.lit(None, pl.String)
        masked = pl.struct(clean.alias("text"), names.alias("name")).map_batches(
            lambda both: pii.mask_free_text(
                both.struct.field("text"),
                both.struct.field("name") if own_name else None,
            ),
            return_dtype=pl.String,
        )
        # once, for two uses: Polars does not share a Python function's result between them
        plan.prepared.append(masked.alias(f"_x:{name}"))
        plan.outputs.append(prepared.alias(f"{name}_masked"))
        plan.masked.append(prepared)
    else:
        # Not meant to hold personal data, but a phone typed here must not load in clear: the
        # value is masked and its row held (a masked id or label would be a wrong value, not a
        # safe one).
        check = partial(_without_personal_data, known=col.values, ids=kind == "id")
        plan.prepared.append(
            clean.map_batches(check, return_dtype=_CLEAN_STRUCT).alias(f"_x:{name}")
        )
        text = prepared.struct.field("text")
        found = prepared.struct.field("found")
        held = pl.when(found).then(pl.lit(PERSONAL_DATA))
        if name in plan.own_name_in:  # or the row's own name (`_own_name_masked`)
            own = pl.when(pl.col(f"_n:{name}")).then(pl.lit(plan.own_name_reason))
            held = pl.coalesce(held, own)
        plan.problems.append(held.alias(f"_p:personal_data:{name}"))
        plan.masked.append(text)
        if kind in AXIS_OF_KIND:
            axis = AXIS_OF_KIND[kind]
            code = text.replace_strict(
                ctx.lookups.labels[axis], default=None, return_dtype=pl.String
            )
            if ctx.lookups.unknown_label == "other":  # loaded under 其他; the report lists it
                code = pl.when(text.is_not_null()).then(code.fill_null(OTHER_CODE[axis]))
            plan.problems.append(
                _unknown(text, code, UNKNOWN_LABEL).alias(f"_p:unknown_label:{name}")
            )
            plan.outputs += [text.alias(f"{name}_label"), code.alias(f"{name}_code")]
        elif kind == "branch":
            code = text.replace_strict(ctx.lookups.branches, default=None, return_dtype=pl.String)
            plan.problems.append(
                _unknown(text, code, UNKNOWN_BRANCH).alias(f"_p:unknown_branch:{name}")
            )
            plan.outputs += [text.alias("branch_label"), code.alias("branch_code")]
        else:
            plan.outputs.append(text.alias(name))
    if kind in PARSERS and name in plan.own_name_in:  # the others' `personal_data` says it too
        own = pl.when(pl.col(f"_n:{name}")).then(pl.lit(plan.own_name_reason))
        held = own if held is None else pl.coalesce(held, own)
    if kind in PARSERS and held is not None:
        plan.problems.append(held.alias(f"_p:personal_data:{name}"))
    plan.masked[-1] = plan.masked[-1].alias(f"_m:{name}")


def duplicate_keys(staged: pl.DataFrame, feed: str) -> pl.DataFrame:
    """Issues for every repeat of a record key after its first occurrence (in file, line order).

    The first occurrence loads; within one drop the same call, or the same ticket version, twice
    is an export fault, not new information.
    """
    key = list(RECORD_KEY[feed])
    # Repeats are rare: the windows below run only over the rows whose key occurs twice. Those
    # are found by a 64-bit hash of the key (0.03 s for a bank day's calls against 0.07 s
    # comparing the strings), then checked exactly among the few rows whose hashes repeat.
    values = pl.struct(key) if len(key) > 1 else pl.col(key[0])
    candidates = repeated(staged.select(values.hash()).to_series())
    indexed = (
        staged.with_row_index("row")
        .filter(pl.all_horizontal(pl.col(k).is_not_null() for k in key) & candidates)
        .filter(values.is_duplicated())
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
    problem = source[RAGGED] if RAGGED in source.columns else None
    if problem is None or problem.null_count() == problem.len():  # most files: no such record
        return pl.DataFrame(schema=ISSUE_SCHEMA)
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


def stage(
    feed: str, source: pl.DataFrame, source_file: str | pl.Series, ctx: StagingContext
) -> StagedFile:
    """One row per source record: the file's text columns (canonical names) typed and tokenized.

    `source` carries canonical column names (missing optional columns may be absent) and `_line`.
    The whole file is one lazy plan, collected once: Polars runs the trim, parse, map and token
    passes of all columns together, and no trimmed copy of the file's text outlives it.
    `source_file`: the file's name, or one per row where several files of the same columns are
    staged together (each row is staged on its own, so the same as in its file alone).
    """
    plan, query = staging_plan(feed, source, ctx)
    frame = query.collect(engine="in-memory")  # one file's columns side by side: ~20% less CPU
    issues = [_ragged(source)]
    found = _columns_with_issues(frame, feed, ctx)  # most files: none, and one pass to know it
    for col in COLUMNS[feed]:
        for name in frame.columns:
            if name in found and name.endswith(f":{col.name}"):
                issues.append(_issue(frame[name], col, name.split(":")[1]))
        if f"_t:{col.name}" in found:
            odd = parsing.implausible(frame[col.name], ctx.earliest, _latest(col, ctx))
            issues.append(_issue(odd, col, "implausible_time"))
    masked_source = frame.select(pl.col(f"_m:{c.name}").alias(c.name) for c in COLUMNS[feed])
    masked_source = masked_source.with_columns(
        _masked_at(masked_source[name], frame[f"_p:unparseable:{name}"])
        for name in plan.masked_later
        if f"_p:unparseable:{name}" in found
    )
    staged = frame.with_columns(
        pl.lit(source_file).alias(SOURCE_FILE), source[LINE].alias(SOURCE_LINE)
    ).select(STAGED_COLUMNS[feed])
    return StagedFile(_aligned(staged), pl.concat(issues), _aligned(masked_source))


def staging_plan(
    feed: str, source: pl.DataFrame, ctx: StagingContext, columns: tuple[Column, ...] | None = None
) -> tuple[_Plan, pl.LazyFrame]:
    """The lazy plan of `stage` over `source`: of the feed's columns, or of `columns` alone (for
    `bench/drop_steps.py --columns`, which times each column's part of a bank day's plan)."""
    plan = _Plan(as_written=source.height > parsing.PARSED_AS_WRITTEN)
    person = next((c for c in COLUMNS[feed] if c.kind == "person_name"), None)
    own_name = person.name if person is not None and person.name in source.columns else None
    columns = COLUMNS[feed] if columns is None else columns
    texts = [
        (
            pl.col(c.name).cast(pl.String)
            if _cleaned_later(c, plan.as_written)
            else parsing.clean(pl.col(c.name).cast(pl.String)).alias(c.name)
        )
        if c.name in source.columns
        else pl.lit(None, dtype=pl.String).alias(c.name)
        for c in columns
    ]
    if own_name and own_name not in {c.name for c in columns}:  # free text masks its own name
        texts.append(pl.col(own_name).cast(pl.String))
    if person is not None and own_name:
        texts = _own_name_masked(plan, texts, columns, source, ctx, person)
    for col in columns:
        _plan_column(plan, col, ctx, own_name)
    query = (
        source.lazy()
        .select(*texts, pl.col(LINE))  # the line numbers keep the height if no column is there
        .with_columns(plan.prepared)
        .select(*plan.outputs, *plan.masked, *plan.problems)
    )
    return plan, query


def _own_name(person: Column) -> pl.Expr:
    """The row's own name as `_own_name_masked` looks for it: at least 2 characters (one would
    match nearly everywhere) and no digit (a number typed there would match dates and amounts;
    the detector looks for those). Null where the row has no such name."""
    name = pii.person_name(pl.col(person.name).cast(pl.String))
    return pl.when((name.str.len_chars() >= 2) & ~name.str.contains(r"\d")).then(name)


def _vocabulary(col: Column, ctx: StagingContext) -> list[str]:
    """The values a column is meant to hold: an enum's own, the labels of its axis, the branch
    codes and names. Such a value is read as itself even where a name is spelt the same."""
    if col.kind in AXIS_OF_KIND:
        return list(ctx.lookups.labels.get(AXIS_OF_KIND[col.kind], {}))
    if col.kind == "branch":
        return list(ctx.lookups.branches)
    return list(col.values)


def _own_name_masked(
    plan: _Plan,
    texts: list[pl.Expr],
    columns: tuple[Column, ...],
    source: pl.DataFrame,
    ctx: StagingContext,
    person: Column,
) -> list[pl.Expr]:
    """`texts` (one per column of `columns`, then maybe the name's) with the row's own name
    (`_own_name`) replaced by its mask (张*) in every column that is neither personal data nor
    free text (which masks it itself), and `_n:<name>`, where it was, to hold the row with rule
    `personal_data`. Everything after reads the masked text: typed values, reasons, held text.

    A value holding the name anywhere counts (`张三丰投诉`), except a value of the column's own
    vocabulary (`_vocabulary`): a customer called 信函 does not hold every letter's complaint.
    The columns are looked at first, in one query over the text as written (~0.7 ms for a
    bank's file of complaints): most files hold no name out of place, and their plan stays as
    it was."""
    checked = [
        (i, c)
        for i, c in enumerate(columns)
        if c.kind not in PII_KINDS and c.kind != "free_text" and c.name in source.columns
    ]
    if not checked:
        return texts
    # The name not narrowed by `_own_name` here: a column found here may hold no name by the
    # rule below, never the other way round. First the columns side by side, one string a row:
    # one look per row, not one per column (0.7 against 1.6 ms), then, if that finds any, the
    # columns one by one.
    name = pii.person_name(pl.col(person.name).cast(pl.String))
    columns_text = [pl.col(c.name).cast(pl.String) for _, c in checked]
    row = pl.concat_str(columns_text, separator="\x00", ignore_nulls=True)
    if not source.select(row.str.contains(name, literal=True).any()).item():
        return texts
    each = source.select(t.str.contains(name, literal=True).any() for t in columns_text)
    checked = [(i, c) for (i, c), hit in zip(checked, each.row(0), strict=True) if hit]
    own = _own_name(person)
    plan.own_name_in = frozenset(c.name for _, c in checked)
    plan.own_name_reason = OWN_NAME.format(header=person.header)
    masked = list(texts)
    for i, col in checked:
        text = texts[i]
        found = text.str.contains(own, literal=True)
        if vocabulary := _vocabulary(col, ctx):
            found = found & ~one_of(text, vocabulary)
        found = found.fill_null(False)
        hidden = text.str.split(own).list.join(pii.name_masked(own))
        masked[i] = pl.when(found).then(hidden).otherwise(text).alias(col.name)
        masked.append(found.alias(f"_n:{col.name}"))
    return masked


def _aligned(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every column in the same chunks. The plan gives most columns as one chunk and
    passes a few through in the reader's chunks (~27 for a bank day's calls); each later query
    over the frame would then line them up again, where joining those few once costs ~4 ms."""
    return frame.rechunk() if len(set(frame.n_chunks("all"))) > 1 else frame


def _cleaned_later(col: Column, as_written: bool) -> bool:
    """Whether a column's text goes into the plan as written, not cleaned first. Cleaning
    (trimming) costs a copy of the column, ~0.008 CPU-s for a bank day's calls, and these
    columns do not need it: personal data is normalised by dropping every space anyway, an
    enum's values are checked as written against its own, cleaning only the others, and in a
    long file a date or date-time is parsed as written, cleaning only what does not parse so."""
    return (
        col.kind in PII_KINDS
        or (as_written and col.kind in ("datetime", "date"))
        or (col.kind == "enum" and bool(col.values))
    )


def _latest(col: Column, ctx: StagingContext) -> date | None:
    return None if col.name in FUTURE_BY_NATURE else ctx.latest


def _columns_with_issues(frame: pl.DataFrame, feed: str, ctx: StagingContext) -> set[str]:
    """The problem columns (`_p:<rule>:<name>`) that name a problem, and `_t:<name>` for each
    date or time column holding an implausible value: one pass over the staged frame, so the
    issues of the rest are not built one column at a time."""
    checks = [pl.col(c).is_not_null().any().alias(c) for c in frame.columns if c.startswith("_p:")]
    for col in COLUMNS[feed]:
        if col.kind in ("datetime", "date"):
            dtype = frame.schema[col.name]
            early, late = parsing.outside_window(
                pl.col(col.name), dtype, ctx.earliest, _latest(col, ctx)
            )
            checks.append((early | late).any().alias(f"_t:{col.name}"))
    if not checks:
        return set()
    return {name for name, hit in frame.select(checks).row(0, named=True).items() if hit}


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
