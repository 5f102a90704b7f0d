"""Personal data: keyed irreversible tokens for matching, masked forms for people to read.

Tokens are keyed BLAKE3 (without the key nobody can recompute or reverse them), with a key per
kind of datum so a phone number and an ID number never share a token.
Values are normalised first (full-width digits read as ASCII, separators dropped), so the same
phone number written two ways gets one token. Free text is masked by the one detector,
`kesu.transforms.personal_data`.

Masks are read by people, so they show only the digits their documented form shows of a
well-formed value (docs/operations.md, "the masked columns"): a phone of 11 or 12 digits (a
mobile, a landline with its area code) keeps its first 3 and last 4 (138****5678), a resident
ID its region and last 4 (1101**********002X), a name its first character (张*). Anything else
in a phone or ID column (a name after the number, a phone where an ID belongs) is masked whole,
`****`, or, if it is digits only, down to its last two: cut by position, its text showed through.
"""

from __future__ import annotations

import hashlib
import hmac

import polars as pl
import polars_hash  # noqa: F401 (registers the `chash` namespace)
from kesu.transforms.parsing import INVISIBLE, on_series
from kesu.transforms.personal_data import (
    ASCII,
    FULL_WIDTH,
    NUMBER_SEPARATORS,
    mask_personal_data,
)

TOKEN_BYTES = 16
# what a phone or an ID may hold between its characters: spaces, punctuation, invisible ones,
# brackets; the detector's own list (`personal_data.NUMBER_SEPARATORS`), so a number it masks
# in text is the number a phone or ID column reads
_SEPARATORS = NUMBER_SEPARATORS


def _not_empty(text: pl.Expr) -> pl.Expr:
    return pl.when(text != "").then(text)


# A mobile number as most exports write it: already in its normal form (`_plain_mobile`)
_PLAIN_MOBILE = r"^1[0-9]{10}$"


def _plain_mobile(raw: pl.Series) -> pl.Series:
    """Whether each value matches `_PLAIN_MOBILE` (null for null): 11 bytes, a leading 1 and an
    unsigned integer are the same test, at a third of the regular expression's cost (5 against
    15 ms for a bank day's calls)."""
    text = pl.col(raw.name)
    plain = text.str.starts_with("1") & text.cast(pl.UInt64, strict=False).is_not_null()
    return on_series(pl.when(text.is_not_null()).then((text.str.len_bytes() == 11) & plain), raw)


def phone(raw: pl.Expr) -> pl.Expr:
    """A phone number as digits only: full-width read as ASCII, separators and +86 dropped."""
    return raw.map_batches(_phone_digits, return_dtype=pl.String)


def _phone_digits(raw: pl.Series) -> pl.Series:
    """`phone` of a column. Most values are 11 ASCII digits already, which normalising leaves
    as they are, so only the others go through it: each of its passes copied the whole column
    (0.15 CPU-s for a bank day's calls, against ~0.04)."""
    rows = (~_plain_mobile(raw)).fill_null(False).arg_true()
    if rows.is_empty():
        return raw
    return raw.scatter(rows, on_series(_normal_phone(pl.col(raw.name)), raw.gather(rows)))


def _normal_phone(raw: pl.Expr) -> pl.Expr:
    """The normalisation of `phone`, on every value."""
    digits = raw.str.replace_many(FULL_WIDTH, ASCII).str.replace_all(_SEPARATORS, "")
    return _not_empty(digits.str.replace(r"^(\+?86)(1\d{10})$", "${2}"))


def id_number(raw: pl.Expr) -> pl.Expr:
    cleaned = raw.str.replace_many(FULL_WIDTH, ASCII).str.replace_all(_SEPARATORS, "")
    return _not_empty(cleaned.str.to_uppercase())


def person_name(raw: pl.Expr) -> pl.Expr:
    return _not_empty(raw.str.replace_all(rf"[\s{INVISIBLE}]", ""))


def normalize_phone(raw: pl.Series) -> pl.Series:
    return on_series(phone(pl.col(raw.name)), raw)


def normalize_id_number(raw: pl.Series) -> pl.Series:
    return on_series(id_number(pl.col(raw.name)), raw)


def normalize_name(raw: pl.Series) -> pl.Series:
    return on_series(person_name(pl.col(raw.name)), raw)


def kind_key(key: bytes, kind: str) -> str:
    """The key of one kind of datum: HMAC-SHA256(key, "kesu token:" + kind) in hex, so a phone
    number and an ID number never share a token."""
    return hmac.new(key, b"kesu token:" + kind.encode(), hashlib.sha256).hexdigest()


# The tokens' key: this many hex characters of the kind's key, 128 bits. As the first 32 bytes
# of BLAKE3's 64-byte block it leaves room for any value of up to 32 bytes (a phone, an ID
# number, a name of ten characters) in the same block: one compression a value.
TOKEN_KEY_CHARS = 32


def token(values: pl.Expr, key: bytes, kind: str) -> pl.Expr:
    """The token of every value (null stays null): the first TOKEN_BYTES of
    BLAKE3(k || UTF-8 value), in hex, where k is the first TOKEN_KEY_CHARS of `kind_key`.

    A keyed hash by a secret prefix: BLAKE3 finalises its root block apart from every other
    (no length extension), so unlike SHA-256 it needs no HMAC around it, and the fixed-length
    prefix keeps key and value apart. Computed by the polars-hash plugin in native code, over
    the whole column and without the GIL: a bank day's 249k phones in 67 CPU-ms, against 128
    for HMAC-SHA256, which needs two SHA-256 compressions a value (`bench/README.md`).
    """
    prefix = pl.lit(kind_key(key, kind)[:TOKEN_KEY_CHARS])
    hashed = pl.concat_str([prefix, values]).chash.blake3()  # type: ignore[attr-defined]
    return hashed.str.slice(0, 2 * TOKEN_BYTES)


def tokens(values: pl.Series, key: bytes, kind: str) -> pl.Series:
    return on_series(token(pl.col(values.name), key, kind), values)


def phone_masked(phone: pl.Expr) -> pl.Expr:
    """138****1234 for a well-formed phone (`_WELL_FORMED_PHONE`): its first 3 and last 4 digits.
    Other values of digits only keep their last two (`****34`: first 3 and last 4 of `62345678`
    are 7 of its 8 digits), and a value with anything but digits in it (a name or an extension
    after the number, a name alone) is masked whole, `****`. `phone` is normalised (`phone`)."""
    return phone.map_batches(_phone_masks, return_dtype=pl.String)


# A phone whose mask keeps its first 3 and last 4 digits, hiding 4 or more: a number of 11 or 12
# digits, as a mobile (1 + 10) or a landline with its area code (0 + 10-11) is written
_WELL_FORMED_PHONE = r"^[0-9]{11,12}$"


def _phone_masks(phone: pl.Series) -> pl.Series:
    """`phone_masked` of a column: the first 3 and last 4 of every value, then the values that
    are not well-formed phones masked again. Nearly every value is one (all of a bank day's
    calls), so this costs what a mask by position cost: 19.9 against 20.9 CPU-ms for a bank
    day's calls (paired medians, `phone_masked` before this rule)."""
    text = pl.col(phone.name)
    both = phone.to_frame().select(masked=_first_and_last(text), well=_well_formed_phone(text))
    masked, well = both["masked"].alias(phone.name), both["well"]
    if well.sum() == phone.len() - phone.null_count():  # every value is well-formed
        return masked
    rows = (~well & phone.is_not_null()).arg_true()
    others = (
        pl.when(text.str.contains(r"^[0-9]+$"))
        .then(pl.lit("****") + text.str.tail(2))
        .otherwise(pl.lit("****"))
    )
    return masked.scatter(rows, on_series(others, phone.gather(rows)))


def _well_formed_phone(phone: pl.Expr) -> pl.Expr:
    """Whether each value matches `_WELL_FORMED_PHONE` (false for null), tested as
    `_plain_mobile` is: 11 or 12 bytes that read as an unsigned integer, not signed (3.5
    against 10 ms for the regular expression on a bank day's calls)."""
    unsigned = ~phone.str.starts_with("+") & phone.cast(pl.UInt64, strict=False).is_not_null()
    return phone.str.len_bytes().is_between(11, 12) & unsigned


def _first_and_last(phone: pl.Expr) -> pl.Expr:
    return pl.concat_str([phone.str.head(3), pl.lit("****"), phone.str.tail(4)])


def name_masked(name: pl.Expr) -> pl.Expr:
    """张* — the surname's first character only; the length of the name is not shown either."""
    return name.str.slice(0, 1) + "*"


def id_number_masked(id_number: pl.Expr) -> pl.Expr:
    """1101**********123X: a resident ID number's region prefix and last four, never the birth
    date. Any other value is masked whole, `****`: a phone, a passport number, an ID with a name
    after it (`id_number` is the normalised value: separators gone, x as X)."""
    return (
        pl.when(id_number.str.contains(r"^[0-9]{17}[0-9X]$"))
        .then(id_number.str.slice(0, 4) + "**********" + id_number.str.slice(-4))
        .when(id_number.is_not_null())
        .then(pl.lit("****"))
    )


def mask_phone(phone: pl.Series) -> pl.Series:
    return on_series(phone_masked(pl.col(phone.name)), phone)


def mask_name(name: pl.Series) -> pl.Series:
    return on_series(name_masked(pl.col(name.name)), name)


def mask_id_number(id_number: pl.Series) -> pl.Series:
    return on_series(id_number_masked(pl.col(id_number.name)), id_number)


def mask_free_text(text: pl.Series, names: pl.Series | None = None) -> pl.Series:
    """Free text with personal data and long digit runs masked and the row's own person name
    replaced by its mask."""
    masked = mask_personal_data(text, free_text=True)
    if names is None:
        return masked
    has_name = pl.select(
        pl.lit(masked).str.contains(pl.lit(names), literal=True).fill_null(False)
    ).to_series()
    if not has_name.any():
        return masked
    rows = has_name.arg_true()
    replaced = [
        t.replace(n, n[0] + "*")
        for t, n in zip(masked.gather(rows).to_list(), names.gather(rows).to_list(), strict=True)
    ]
    return masked.scatter(rows, pl.Series(replaced, dtype=pl.String))


def id_number_is_valid(id_number: pl.Series) -> pl.Series:
    """GB 11643 check digit: a wrong one marks a typo or a made-up number (not quarantined)."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    digits = [
        pl.lit(id_number).str.slice(i, 1).cast(pl.Int32, strict=False) * w
        for i, w in enumerate(weights)
    ]
    check = pl.lit("10X98765432").str.slice(pl.sum_horizontal(digits) % 11, 1)
    return pl.select(
        pl.lit(id_number).str.contains(r"^\d{17}[\dX]$")
        & (pl.lit(id_number).str.slice(17, 1) == check)
    ).to_series()
