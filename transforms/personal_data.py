"""The one detector of personal data in text: phones, resident IDs and bank cards, however written.

Every text value that leaves staging goes through `mask_personal_data` (staged and quarantine
columns, reasons, messages, file names), so a number is recognised the same way everywhere.
Vectorised: regex replacements over whole columns; only card candidates are checked (Luhn) one
expression per digit position, never a Python loop per row.

What is detected (digits may be full-width, `１３８…`: they are read as ASCII):
Each number starts after a character that is not a digit (or at the start). In an id column
(`ids`) it must also not follow a Latin letter: there `C2025030300001` and `KF13812345678` are
ids. Elsewhere (free text, labels, codes, file and folder names, messages) a letter is like any
other character: `TEL13812345678`, `hotline_tel13812345678.csv` hold a phone.
- mobiles: `1[3-9]` + 9 digits, optionally after `+86`/`86`/`0086` (glued or separated), with
  a separator between any two digits: spaces (no-break and zero-width ones, line breaks too)
  around up to two marks — `-`, `.`, `/`, `_`, `·`, `・`, `、`, `，`, `~`, `*`, brackets, the
  dashes and hyphens of word processors and input methods (`——`), full-width ones; not the ASCII
  comma, the thousands separator of amounts: `138.3333.4444`, `138 - 6666 - 7777`,
  `139——1234——5678`, `139、1234、5678`, `139(1234)5678`, `139\\n1234\\n5678`, `(138)1019 0019`,
  `1385555-6666`, `008613855556666` -> `138****4444`;
- resident IDs: 17 digits + a digit or X with a plausible birth date (year 19xx/20xx, month 0-1x,
  day 0-3x), separators anywhere: `110105 19491231 002X`, `110105--19880808--0111` ->
  `1101**********002X`;
- bank cards: 13-19 digits that pass the Luhn check, contiguous or in groups of 4 to 6 then the
  rest, separated by spaces, dashes, dots or underscores (`6222 0212 3456 7890 128`,
  `622202-1234567890128`, `4111.1111.1111.1111`, `6222——0212——…`), not glued to a Latin letter
  in any column -> `6222****0123`;
- landlines: an area code `0xx`/`0xxx` (optionally in brackets) then a 7-8 digit local number
  -> `0592-****3456`.
The rule for other long digit runs: in free text, any run of 7 or more contiguous digits not
glued to a Latin letter is masked too (11+ keep their first 3 and last 4, 7-10 only their last
4: a local number, a QQ or account number), except an 8-digit date `yyyymmdd`. In structured
columns (ids, codes, labels) such runs are left alone: call and ticket ids are not personal data,
and only the shapes above are. Amounts (`1,234.56`), dates (`2025-03-03`, `2025/03/03 12:30`),
times, and cards or long runs glued to letters (`C2025030300001`, `TS20250303…`: ids, whose
digits pass the Luhn check one time in ten) stay as written.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import polars as pl
from kesu.transforms.parsing import INVISIBLE

FULL_WIDTH = [chr(0xFF10 + i) for i in range(10)] + ["Ｘ", "ｘ"]
ASCII = [str(i) for i in range(10)] + ["X", "x"]

# What may stand between the digits of one number as a space: the space, tab and ideographic
# space, the no-break and typographic spaces of text copied from a web page or a document, the
# characters that show as nothing (zero-width space and joiners, soft hyphen, BOM), and a line
# break (LF, CR, the line and paragraph separators): a phone written `138\u00a00013\u00a08000`,
# `138\u200b0013\u200b8000` or `139\r\n1234\r\n5678` is one phone.
_SPACE = " \t\n\r\u3000\u00a0\u2000-\u200a\u2028\u2029\u202f\u205f" + INVISIBLE
# a dash, dot, slash, underscore, comma, tilde, star or bracket between two digits of one number
# (`139/1234/5621`, `138_1001_0001`, `(138)1019 0019`, `139(1234)5678`, `139、1234、5678`), as
# keyboards, word processors and input methods write them: the hyphen of autocorrect (U+2010),
# the non-breaking one, the figure, en and em dashes and the horizontal bar (U+2012-U+2015: the
# input method's `——` is two em dashes), the minus sign, the one-dot leader (U+2024), the middle
# dots (`138・1018・0018`), the enumeration comma 、, full-width forms. Not the ASCII comma: it is
# the thousands separator of amounts, and `13,800,000,000` is no phone. A date written with any
# of them (`2025/07/03`, `2025——07——03`) has too few digits in a run for any shape (`_DATE_TIME`).
_PUNCTUATION = "-./_·—–－．／＿\u2010-\u2012\u2015\u2024\u2212・･、，~～〜*＊()（）"
# a separator between two digits of one number: spaces, up to two of the marks above with spaces
# around and between them (`139--1234--5678`, `139- -1234`), or nothing
_SEP = rf"[{_SPACE}]*(?:[{_PUNCTUATION}][{_SPACE}]*){{0,2}}"
# every character that may stand between the digits of one number, and brackets: what a phone's
# or an ID's normalised form drops (`kesu.transforms.pii`)
NUMBER_SEPARATORS = rf"[{_PUNCTUATION}\s{_SPACE}(（]"
# A number starts after a character that is not a digit. In an id column, it starts after one
# that is neither a digit nor a Latin letter: `C2025030300001` and `KF13812345678` are ids there
# (and a check per id would cost seconds on a bank's day of calls). Elsewhere a letter is like
# any other character: `TEL13812345678` in free text, a label or a file name is a phone.
_NOT_AFTER = "0-9"
_NOT_AFTER_IN_IDS = "0-9A-Za-z"
_RIGHT = r"([^0-9]|$)"


def _spaced(classes: list[str], keep_first: int, keep_last: int) -> str:
    """A number of `classes` digits with optional separators between any two of them; the first
    `keep_first` and last `keep_last` digits are captured (groups 2.., after the left boundary)."""
    parts = []
    for i, cls in enumerate(classes):
        kept = i < keep_first or i >= len(classes) - keep_last
        parts.append(f"({cls})" if kept else cls)
    return _SEP.join(parts) + _RIGHT


def _replacement(keep_first: int, keep_last: int, stars: str) -> str:
    groups = [f"${{{g}}}" for g in range(2, 2 + keep_first + keep_last)]
    last = 2 + keep_first + keep_last
    return (
        "${1}"
        + "".join(groups[:keep_first])
        + stars
        + "".join(groups[keep_first:])
        + f"${{{last}}}"
    )


_ID_CLASSES = [r"\d"] * 6 + ["[12]", "[09]", r"\d", r"\d", "[01]", r"\d", "[0-3]", r"\d"]
_ID_CLASSES += [r"\d"] * 3 + [r"[\dXx]"]
_ID_NUMBER = _spaced(_ID_CLASSES, 4, 4)
# a mobile may follow a country code: `+86`, `86` or `0086`, glued or separated
_MOBILE = r"(?:(?:\+|00)?86" + _SEP + ")?" + _spaced(["1", "[3-9]"] + [r"\d"] * 9, 3, 4)
_LANDLINE = r"([(（]?0\d{2,3}[)）]?" + _SEP + r")[2-9]\d{2,3}" + _SEP + r"(\d{4})" + _RIGHT


@dataclass(frozen=True)
class _Shapes:
    """The shapes' (pattern, replacement) pairs and pre-filters, for one left boundary."""

    id_number: tuple[str, str]
    others: tuple[tuple[str, str], ...]  # mobiles, landlines
    # a value that could hold any of the shapes or long runs: 7 digits or more, separators
    # allowed between them
    candidate: str
    # a value that could hold one of the shapes: 10 digits or more (the fewest: a landline's
    # 3-digit area code and 7-digit number), separators or an area code's closing bracket
    # between them. A date `20250705` in a file name is not one: the detector's ~10 regexes do
    # not run on it.
    shape_candidate: str

    @classmethod
    def after(cls, not_after: str) -> _Shapes:
        """The shapes of numbers that start after none of the characters `not_after`."""
        left, start = rf"(^|[^{not_after}])", rf"(?:^|[^{not_after}])"
        digit = _SEP + r"\d"
        digit_or_bracket = rf"[)）]?{_SEP}\d"  # `(0592)-5123456`: the area code's bracket too
        return cls(
            (left + _ID_NUMBER, _replacement(4, 4, "**********")),
            (
                (left + _MOBILE, _replacement(3, 4, "****")),
                (left + _LANDLINE, "${1}${2}****${3}${4}"),
            ),
            rf"{start}\d(?:{digit}){{6}}",
            rf"{start}\d(?:{digit_or_bracket}){{9}}",
        )


_SHAPES = {False: _Shapes.after(_NOT_AFTER), True: _Shapes.after(_NOT_AFTER_IN_IDS)}  # by `ids`

# free text only: the rule for other long digit runs (see the module docstring); a run glued to
# a Latin letter is an id, in free text too (`此前投诉TS202503030000012`)
_DATE = (r"(^|[^0-9])((?:19|20)\d\d)((?:0[1-9]|1[0-2])[0-3]\d)([^0-9]|$)", "${1}${2}\ue000${3}${4}")
_LONG_RUN = (r"(^|[^0-9A-Za-z])(\d{3})\d{4,}(\d{4})([^0-9]|$)", "${1}${2}****${3}${4}")
_SHORT_RUN = (r"(^|[^0-9A-Za-z*])\d{3,6}(\d{4})([^0-9]|$)", "${1}****${2}${3}")

# a value that is wholly a date or date-time as the feeds write them (`2025-07-03 25:61`: a
# date-time column's held value) holds none of the above, though it is a candidate: its longest
# run of digits and separators has 10 digits (`2025-07-03 12`; `:` and `T` separate none),
# under a mobile's 11, a card's 13 and an ID's 18, and no 3 digits in a row follow its year, as
# a landline's local number needs. ASCII digits only: any other goes through the detector.
_DATE_TIME = (
    r"^[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}(?:[ T][0-9]{1,2}:[0-9]{1,2}(?::[0-9]{1,2})?)?$"
)
_FULL_WIDTH_CHAR = "[０-９Ｘｘ]"
# A card's digits, contiguous or in groups: of 4 to 6, then a last group of any length
# (`6222 0212 3456 7890 128`, `622202-1234567890128`, `3782 822463 10005`), 13 to 19 in all
# (`_CARD_DIGITS`). A date (`2025-07-03`, `20250701-20250731`) has groups of 2 or of 8 and an
# amount (`1 234 567`) of 3: none is a card, however its digits add up.
# Not glued to a Latin letter, in any column: ids are letters and 13-16 digits
# (`C2025030300001234`, `TS202503030000012`), and the digits of one in ten pass the Luhn check.
# A card's groups are separated by spaces (line breaks too), dashes, dots or underscores
# (`4111.1111.1111.1111`), as a phone's digits are: up to two marks with spaces around them
# (`6222——0212——3456——7890——128`). Not slashes, brackets, commas or stars: in a card's place
# they are dates, amounts and masks.
_CARD_PUNCTUATION = "-._—–－．＿\u2010-\u2012\u2015\u2212"
_CARD_SEPARATOR = rf"[{_CARD_PUNCTUATION}{_SPACE}]"
_CARD_GAP = rf"(?:[{_SPACE}]+|[{_SPACE}]*(?:[{_CARD_PUNCTUATION}][{_SPACE}]*){{1,2}})"
_CARD_CANDIDATE = rf"(?:^|[^0-9A-Za-z])\d(?:\d|{_CARD_SEPARATOR}){{11,}}\d(?:[^0-9A-Za-z]|$)"
_CARD = rf"^(?:\d+|\d{{4,6}}(?:{_CARD_GAP}\d{{4,6}})*{_CARD_GAP}\d+)$"


def ascii_digits(text: pl.Series) -> pl.Series:
    """Full-width digits (and X) as ASCII (１３８ -> 138); full-width separators stay as written."""
    return text.str.replace_many(FULL_WIDTH, ASCII)


def _ascii(text: pl.Series) -> pl.Series:
    text = text.cast(pl.String)
    return ascii_digits(text) if text.str.contains(_FULL_WIDTH_CHAR).any() else text


# a digit's part of the Luhn sum at every second place from the right: doubled, less 9 above 9
_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)
_CARD_DIGITS = 19  # the longest card number


def luhn_valid(digits: pl.Series) -> pl.Series:
    """The Luhn check of strings of 13-19 digits: the few distinct card numbers a text holds.

    One block of their digits, a row each, right to left and padded with zeros (a character that
    is not an ASCII digit counts as 0, as a pad does). A Polars expression per digit position
    took ~4 ms a call, for its plan of 19 branches, whatever the number of cards."""
    if digits.is_empty():
        return pl.Series(digits.name, [], pl.Boolean)
    written = pl.col(digits.name).fill_null("").str.replace_all("[^0-9]", "0")
    rows = written.str.reverse().str.slice(0, _CARD_DIGITS).str.pad_end(_CARD_DIGITS, "0")
    reverse = digits.to_frame().select_seq(rows).to_series()  # one query
    block = np.frombuffer("".join(reverse.to_list()).encode("ascii"), dtype=np.uint8) - ord("0")
    block = block.reshape(-1, _CARD_DIGITS)
    block[:, 1::2] = _DOUBLED[block[:, 1::2]]
    return pl.Series(digits.name, block.sum(axis=1) % 10 == 0, pl.Boolean)


def _card_numbers(text: pl.Series) -> pl.Series:
    """The distinct card numbers (as written) found anywhere in `text`."""
    written = pl.col(text.name).str.extract_all(_CARD_CANDIDATE).explode().drop_nulls()
    bare = written.str.replace_all(r"^[^0-9]+|[^0-9]+$", "").unique()
    found = text.to_frame().select_seq(bare).to_series()  # one query: ~0.1 ms a call
    digits = found.str.replace_all(_CARD_SEPARATOR, "").str.len_chars()
    found = found.filter(found.str.contains(_CARD) & digits.is_between(13, _CARD_DIGITS))
    if found.is_empty():
        return found
    return found.filter(luhn_valid(found.str.replace_all(_CARD_SEPARATOR, "")))


def _mask_cards(text: pl.Series) -> pl.Series:
    cards = _card_numbers(text)
    if cards.is_empty():
        return text
    digits = cards.str.replace_all(_CARD_SEPARATOR, "")
    masked = digits.str.slice(0, 4) + "****" + digits.str.slice(-4)
    # longest first: a card written inside another candidate is replaced as the longer one
    order = cards.str.len_chars().arg_sort(descending=True)
    return text.str.replace_many(cards.gather(order).to_list(), masked.gather(order).to_list())


def _replaced(text: pl.Series, rules: list[tuple[str, str]]) -> pl.Series:
    """`text` with each (pattern, replacement) of `rules` applied in turn, each twice (the right
    boundary character is consumed: two numbers one character apart need a 2nd pass), in one
    query: an eager call costs ~0.1 ms whatever its size, and a file's few candidates paid for
    a dozen of them."""
    out = pl.col(text.name)
    for pattern, replacement in rules:
        out = out.str.replace_all(pattern, replacement).str.replace_all(pattern, replacement)
    return text.to_frame().select_seq(out).to_series()


def mask_personal_data(text: pl.Series, free_text: bool = False, ids: bool = False) -> pl.Series:
    """`text` with every phone, resident ID and card number masked (null stays null).

    Values without personal data come back as written, except that full-width digits read as
    ASCII. `free_text`: also mask other long digit runs (module docstring). `ids`: the text of an
    id column, where digits glued to a Latin letter are part of an id. Only values holding a run
    of digits that long (7+, or 10+ for the shapes alone; separators allowed) go through the
    replacements: most text has none.
    """
    out = _ascii(text)
    shapes = _SHAPES[ids]
    candidate = shapes.candidate if free_text else shapes.shape_candidate
    rows = out.str.contains(candidate).arg_true()  # null is not true
    if rows.is_empty():
        return out
    found = out.gather(rows)
    # a held date-time (`_DATE_TIME`) is a candidate, but the replacements, ~3 ms a call
    # whatever the number of values, would leave it as written
    kept = found.str.contains(_DATE_TIME)
    if kept.all():
        return out
    if kept.any():
        rows, found = rows.filter(~kept), found.filter(~kept)
    return out.scatter(rows, _masked(found, free_text, ids))


def _masked(out: pl.Series, free_text: bool, ids: bool = False) -> pl.Series:
    shapes = _SHAPES[ids]
    out = _mask_cards(_replaced(out, [shapes.id_number]))
    if not free_text:
        return _replaced(out, list(shapes.others))
    out = _replaced(out, [*shapes.others, _DATE, _LONG_RUN, _SHORT_RUN])
    return out.str.replace_all("\ue000", "", literal=True)


def may_hold_personal_data(text: pl.Series, ids: bool = False) -> pl.Series:
    """Whether each value could hold a phone, ID or card number (null for null): the detector's
    own cheap test, for a caller that picks out the values to look at."""
    return text.str.contains(_SHAPES[ids].shape_candidate)


def has_personal_data(text: pl.Series, ids: bool = False) -> pl.Series:
    """Whether the detector would change a value (beyond reading full-width digits as ASCII)."""
    ascii_text = _ascii(text)
    return (mask_personal_data(ascii_text, ids=ids) != ascii_text).fill_null(False)


def mask_message(message: str) -> str:
    """One message or note (a file name, an exception's text) with personal data masked.

    Shapes only (phones, IDs, cards, landlines), not every long digit run: kesu's own messages
    carry counts and sizes (a sheet claiming 1048576 rows), and never quote a record. Not an id
    column's rule: a folder `rec13812345678` holds a phone."""
    return mask_personal_data(pl.Series([_utf8(message)]))[0]


# Control characters: a line break or an escape in a file name would print as a line of its own
# (a fake `kesu:` line in a run's output) or act on the terminal
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable_name(name: str) -> str:
    """A file or folder name as one line of text: a name whose bytes are not UTF-8 (in GBK from
    a Windows share or a zip, which Python keeps as surrogates) read as GB18030, else with
    U+FFFD for the bytes it cannot read; control characters (a line break, an escape) written
    as `\\n`, `\\x1b`. Other names are as written."""
    name = _utf8(name)
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], name) if _CONTROL.search(name) else name


def _utf8(text: str) -> str:
    """`text` as it prints: surrogates (bytes of a file name that are not UTF-8) read as
    GB18030, else replaced. Polars, JSON and the terminal all refuse surrogates."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


@functools.lru_cache(maxsize=4096)  # a drop asks up to 3 times per file, ~4 ms each
def masked_file_name(name: str, sha256: str) -> str:
    """A landed file's name as stored past the raw zone: as written if it holds no personal
    data, else masked and told apart from other files by the first 8 hex of its content hash
    (`calls_138****5678~1a2b3c4d.csv`). Written so it prints on one line (`printable_name`)."""
    name = printable_name(name)
    masked = mask_personal_data(pl.Series([name]))[0]  # shapes only: 00000123.csv is no phone
    if masked == name:
        return name
    stem, dot, suffix = masked.rpartition(".")
    if not dot or not stem:
        return f"{masked}~{sha256[:8]}"
    return f"{stem}~{sha256[:8]}.{suffix}"
