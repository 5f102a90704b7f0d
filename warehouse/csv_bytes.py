"""What the bytes of a CSV body say without parsing it: the cheap checks that let Polars' fast
read of a landing file stand (`kesu.warehouse.landing`), or send the file to the careful reading
line by line (`kesu.warehouse.csv_records`). Vectorised over the bytes (numpy), a chunk at a
time, so a bank day's file costs milliseconds (a quarter of a second with every field quoted)
and faults in no second copy of itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import pyarrow as pa


def every_record_whole(body: bytes, frame: pl.DataFrame, quotes: bool) -> bool:
    """Whether each record Polars read from `body` has exactly the header's fields, told from
    byte counts alone (no field counted): the usual export passes, anything else is counted.

    `frame`: Polars' text columns `_c0`…, one per header field, as `_read_fast` reads them when
    Polars has refused any record with more fields (so none has more). Only for a body without
    quotes or CRs, so that a value is the bytes between two commas and each line is its values'
    bytes plus its commas: the body's bytes beyond the values and line breaks leave room for
    exactly `width - 1` commas per record only if no record is short (a blank line read as a
    record would be one too). A short record and one with an extra, empty field (null, like a
    missing one) would balance here: hence no record may have more. `quotes`: whether `body`
    holds a quote (`b'"' in body`, which the caller has searched for already).
    """
    width = frame.width
    if width < 2 or quotes or b"\r" in body or frame.height == 0:
        return False
    records_start = body.find(b"\n") + 1
    line_breaks = count_byte(body, ord("\n"), records_start)
    values = frame.select(
        pl.sum_horizontal(pl.col(c).str.len_bytes().sum() for c in frame.columns)
    ).item()
    commas = len(body) - records_start - line_breaks - values
    return commas == (width - 1) * frame.height


COUNT_CHUNK = 1 << 20  # bytes compared at a time: a bank day's 57 MB at once faults in 57 MB


def count_byte(body: bytes, byte: int, start: int = 0, chunk: int = COUNT_CHUNK) -> int:
    """How often `byte` occurs in `body[start:]`: compared `chunk` bytes at a time, ~9 ms for a
    bank day's calls where `bytes.count` (one byte at a time) takes ~32."""
    raw = np.frombuffer(body, dtype=np.uint8)
    return sum(
        int(np.count_nonzero(raw[i : i + chunk] == byte)) for i in range(start, len(raw), chunk)
    )


def byte_positions(body: bytes, byte: int, start: int = 0, chunk: int = COUNT_CHUNK) -> np.ndarray:
    """Where `byte` occurs in `body[start:]` (offsets into `body`, ascending), found `chunk`
    bytes at a time: one comparison of a bank day's 57 MB at once faults in 57 MB."""
    return np.concatenate(list(_positions(body, byte, start, chunk)) or [np.zeros(0, np.int64)])


def _positions(body: bytes, byte: int, start: int, chunk: int) -> Iterator[np.ndarray]:
    raw = np.frombuffer(body, dtype=np.uint8)
    for i in range(start, len(raw), chunk):
        at = np.flatnonzero(raw[i : i + chunk] == byte)
        at += i
        yield at


def text_array(body: bytes, offsets: np.ndarray) -> pa.LargeStringArray:
    """The slices of `body` between consecutive `offsets` as an Arrow text array over `body`
    itself (no copy, not validated: the caller knows, or checks, that it is UTF-8)."""
    bounds = pa.py_buffer(np.asarray(offsets, dtype=np.int64))
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, bounds, pa.py_buffer(body))


def is_utf8(body: bytes) -> bool:
    """Whether `body` is UTF-8, checked without decoding it (Arrow's validation over the bytes:
    ~19 ms for a bank day's calls, where decoding them took ~84 ms and a ~100 MB string)."""
    try:
        text_array(body, np.array([0, len(body)])).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _bytes(*allowed: str) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[[ord(c) for c in allowed]] = True
    return table


# What may come just before a value's opening quote, and just after its closing one (a CR only
# as the start of CR LF); a doubled quote inside a value is a closing and an opening one.
_BEFORE_OPENING, _AFTER_CLOSING = _bytes(",", "\n", '"'), _bytes(",", "\n", '"')


def quotes_in_place(body: bytes, start: int, chunk: int = COUNT_CHUNK) -> bool:
    """Whether every quote in `body[start:]` (the records) is where CSV puts one: each value's
    opening quote at the start of a field, its closing quote just before a comma, a line break
    or the end, a quote inside a value doubled. Read so, the quotes alternate, opening and
    closing, which is what is checked: each opening one preceded by a comma, a line break or a
    closing quote (a doubled quote is a closing and an opening one), each closing one followed
    by a comma, a line break (CR LF too), a quote or the end, and none left open.

    Polars' reader takes the rest loosely and silently: `"他说"你好""` reads as `他说你好` and
    `""C1",…` as `C1"`. A file that fails is read line by line (`resplit`), where a quote inside
    a value that is not quoted is text (`他说"你好"` loads as it is) and text after a closing
    quote holds the line. Only the quotes' positions are looked at, `chunk` bytes at a time:
    ~0.25 CPU-s for a bank day's calls with every field quoted (11.8 million quotes).
    """
    raw = np.frombuffer(body, dtype=np.uint8)
    end, seen = len(raw), 0
    for at in _positions(body, ord('"'), start, chunk):
        opening, closing = (at[0::2], at[1::2]) if seen % 2 == 0 else (at[1::2], at[0::2])
        seen += at.size
        if not _BEFORE_OPENING[raw[opening - 1]].all():  # start >= 1: the header is before
            return False
        after = closing + 1
        if after.size and after[-1] == end:  # the file ends with a closing quote
            after = after[:-1]
        fine = _AFTER_CLOSING[raw[after]]
        if not fine.all():  # then only CR LF (or a CR ending the file) may follow
            rest = after[~fine]
            if (raw[rest] != ord("\r")).any():
                return False
            rest = rest[rest + 1 < end]
            if (raw[rest + 1] != ord("\n")).any():
                return False
    return seen % 2 == 0
