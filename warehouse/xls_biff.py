"""What an .xls (Excel 97-2003: BIFF records in an OLE2 compound file) says that the Excel reader
(calamine, through fastexcel) neither checks nor tells, read before the reader runs:

- whether the file is safe to hand to it. The reader follows the compound file's sector chains
  without looking for loops, reserves each sheet's claimed size and allocates the rectangle its
  cells span: a 5 KB file could make it grow without end, or ask for 200 GB and abort the process.
  So every chain it will follow must end, and no sheet may claim or span more than `MAX_CELLS`;
  nor may a record it reads a few bytes of unchecked be cut short (it panics, `_LEAST`);
- on which row of the first sheet the header stands (the reader starts at the first row and the
  first column holding a cell: rows and columns before them are skipped);
- which number cells of the first sheet hold 16 or more digits (Excel keeps 15).

The file is walked as the reader walks it ([MS-CFB], [MS-XLS] as calamine 0.36 reads them), in
Python: an .xls holds at most 65,536 rows, and a day's regulator transfers a few thousand cells.

Over 250 lines: the compound file's chains and the BIFF records are one walk of one file, as the
reader makes it; each rule it refuses on is stated next to the reader's behaviour it guards.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np
from kesu.warehouse.landing import SourceReadError
from kesu.warehouse.xlsx_xml import MAX_CELLS

OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_RESERVED = 0xFFFFFFFA  # sector ids from here on are markers, not sectors
_DIFSECT = 0xFFFFFFFC
_END_OF_CHAIN = 0xFFFFFFFE
_MINI_STREAM_CUTOFF = 4096  # smaller streams live in the mini stream, in 64-byte sectors
_STREAM_NAMES = ("Workbook", "Book", "WORKBOOK", "BOOK")  # the reader's order
# the reader reserves room for this many sector ids, from two header fields that a file may
# set to anything; every real file stays far below it
_MAX_DIFAT_CAPACITY = 1 << 26

# BIFF record types
_EOF, _BOF, _BOUNDSHEET, _SST, _DIMENSIONS = 0x000A, 0x0809, 0x0085, 0x00FC, 0x0200
_NUMBER, _LABEL, _RSTRING, _BOOLERR, _STRING = 0x0203, 0x0204, 0x00D6, 0x0205, 0x0207
_RK, _LABELSST, _MULRK, _FORMULA = 0x027E, 0x00FD, 0x00BD, 0x0006
_MERGECELLS = 0x00E5
_HEADER = struct.Struct("<HH")
_MARKERS = frozenset((_BOF, _EOF))
_COLUMNS = 256  # an .xls holds columns A to IV
# 16 or more digits before the point: more than the 15 significant digits Excel keeps
_LONG = 1e15
# The workbook's records whose first bytes the reader reads without checking that the record
# holds them (calamine 0.36: `r.data[4]`, `read_u16(r.data)`): one cut short makes it panic, and
# Rust prints the panic on stderr before kesu can say anything. The fewest bytes each must hold,
# and what it is, for the message.
_LEAST = {
    _BOF: (2, "beginning-of-stream"),
    0x002F: (2, "password"),  # FILEPASS
    0x0042: (2, "code page"),  # CODEPAGE
    0x0022: (2, "date system"),  # DATEMODE
    _BOUNDSHEET: (6, "sheet list"),  # its offset, state and type before the name
    0x0017: (2, "sheet reference"),  # EXTERNSHEET
}
_LBL = 0x0018  # a defined name: 14 bytes, then the name, then its formula (sized in the record)


@dataclass
class XlsSheet:
    """What the first sheet says that the reader does not: its header's sheet row (from 1), and
    its number cells of 16 or more digits as {record index: column indexes}, counted as the
    reader counts them (from the row after the header, from the first column with a cell)."""

    header_row: int = 1
    long_numbers: dict[int, list[int]] = field(default_factory=dict)


def check_xls(data: bytes, name: str) -> XlsSheet:
    """Raise `SourceReadError` if the .xls in `data` would make the reader loop, abort or
    allocate more than `MAX_CELLS` cells (or is not an Excel 97-2003 file at all); else what its
    first sheet says. `name` names the file in the message."""
    stream = _Compound(data, name).workbook_stream()
    return _Workbook(stream, name).first_sheet()


def _refuse(name: str, why: str) -> NoReturn:
    raise SourceReadError(f"{name}: cannot be read as XLS ({why})")


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little")


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def _ids(sector: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(sector) // 4}I", sector[: len(sector) // 4 * 4]))


class _Compound:
    """The OLE2 compound file: its sectors, its FAT, its directory, as the reader reads them."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name = data, name
        if len(data) < 512 or not data.startswith(OLE_SIGNATURE):
            _refuse(name, "not an Excel 97-2003 file")
        shift = _u16(data, 30)
        if shift not in (9, 12) or _u16(data, 32) != 6:
            _refuse(name, "its compound file header is damaged")
        self.size = 1 << shift  # the header takes the first sector
        self.last = len(data) // self.size  # the highest sector id the reader accepts
        fat_sectors, mini_fat_sectors = _u32(data, 44), _u32(data, 64)
        # the reader reserves room by these fields before reading anything
        if max(fat_sectors, mini_fat_sectors) > self.last or _u32(data, 62) > _MAX_DIFAT_CAPACITY:
            _refuse(name, "its header claims more sectors than the file holds")
        self.version_3 = self.size == 512
        difat = _ids(data[76:512])
        seen: set[int] = set()
        sector = _u32(data, 68)
        while sector < _RESERVED:  # the DIFAT's own chain, each sector's last id the next one
            self._once(sector, seen)
            difat.extend(_ids(self._sector(sector)))
            if not difat:
                _refuse(name, "its sector table is damaged")
            sector = difat.pop()
        listed = [s for s in difat if s < _DIFSECT]
        if len(set(listed)) < len(listed):  # the reader would read the same sectors again
            _refuse(name, "its sector table lists a sector twice")
        self.fat: list[int] = []
        for sector in listed:
            self.fat.extend(_ids(self._sector(sector)))
        entries = self._chain(_u32(data, 48), self.fat, len(data))
        self.directory = [entries[i : i + 128] for i in range(0, len(entries) - 127, 128)]
        if not self.directory:
            _refuse(name, "its directory is empty")
        self.mini_fat: list[int] = []
        self.mini_stream = b""
        if mini_fat_sectors:
            root_start, root_size = self._start_and_size(self.directory[0])
            self.mini_stream = self._chain(root_start, self.fat, root_size)
            self.mini_fat = _ids(
                self._chain(_u32(data, 60), self.fat, mini_fat_sectors * self.size)
            )

    def _once(self, sector: int, seen: set[int]) -> None:
        if sector > self.last:
            _refuse(self.name, "a sector chain points past the end of the file")
        if sector in seen:
            _refuse(self.name, "a sector chain loops")
        seen.add(sector)

    def _sector(self, sector: int) -> bytes:
        at = self.size + sector * self.size
        return self.data[at : at + self.size]

    def _chain(self, start: int, table: list[int], limit: int, mini: bool = False) -> bytes:
        """The stream from sector `start`, following `table`, up to `limit` bytes: as the reader
        reads it, except that a chain which comes back to a sector is refused (the reader would
        go round it until `limit`, or for ever)."""
        parts, got, seen, sector = [], 0, set(), start
        while sector != _END_OF_CHAIN:
            if mini:
                if sector in seen or (sector + 1) * 64 > len(self.mini_stream):
                    _refuse(self.name, "a chain in its mini stream loops or runs past it")
                seen.add(sector)
                part = self.mini_stream[sector * 64 : (sector + 1) * 64]
            else:
                self._once(sector, seen)
                part = self._sector(sector)
            parts.append(part[: limit - got])
            got += len(parts[-1])
            if got >= limit:
                break
            if sector >= len(table):
                _refuse(self.name, "a sector chain leaves its sector table")
            sector = table[sector]
        return b"".join(parts)

    def _start_and_size(self, entry: bytes) -> tuple[int, int]:
        size = _u32(entry, 120) if self.version_3 else int.from_bytes(entry[120:128], "little")
        return _u32(entry, 116), size

    def workbook_stream(self) -> bytes:
        names = [e[:64].decode("utf-16-le", "replace").split("\0", 1)[0] for e in self.directory]
        for wanted in _STREAM_NAMES:
            if wanted in names:
                start, size = self._start_and_size(self.directory[names.index(wanted)])
                if size < _MINI_STREAM_CUTOFF:
                    return self._chain(start, self.mini_fat, size, mini=True)
                return self._chain(start, self.fat, size)
        _refuse(self.name, "it holds no workbook")


class _Workbook:
    """The workbook stream's BIFF records: the globals, then each sheet from its offset."""

    def __init__(self, stream: bytes, name: str) -> None:
        self.stream, self.name = stream, name
        self.bytes = np.frombuffer(stream, dtype=np.uint8)
        self.sheets: list[int] = []
        self.strings = 0
        self.walked = 0  # bytes of the sheets' records walked so far
        for at in self._records(0, nested=False).tolist():
            kind, size = _HEADER.unpack_from(stream, at)
            self._check_size(kind, size, at + 4)
            if kind == _BOUNDSHEET:
                self.sheets.append(_u32(stream, at + 4))
            elif kind == _SST and size >= 8:
                self.strings = _u32(stream, at + 8)  # the distinct strings' count

    def _check_size(self, kind: int, size: int, at: int) -> None:
        """Refuse a workbook record the reader would read past the end of (`_LEAST`)."""
        if kind in _LEAST and size < _LEAST[kind][0]:
            self._cut_short(kind)
        # a defined name: its name's length at 3, its formula's at 4; the name from 14 on
        if kind == _LBL and (
            size < 6 or size < 15 + self.stream[at + 3] or size < _u16(self.stream, at + 4)
        ):
            _refuse(self.name, "its defined-name record is cut short")

    def _cut_short(self, kind: int) -> NoReturn:
        _refuse(self.name, f"its {_LEAST[kind][1]} record is cut short")

    def _records(self, at: int, nested: bool) -> np.ndarray:
        """The offsets of the records from offset `at` to the first EOF (of a sheet: its own,
        the records of an embedded chart's substream left out, as the reader leaves them). A
        CONTINUE record, whose data the reader adds to the record before, is no cell and is
        passed on as it is. One Python step a record: a sheet's cells are counted in numpy."""
        stream, end, header = self.stream, len(self.stream), _HEADER.unpack_from
        begun, starts = at, array("q")
        keep = starts.append
        depth, seen_bof = 0, False
        try:
            while at < end:
                kind, size = header(stream, at)
                if kind in _MARKERS:
                    if kind == _BOF and size < 2 and not nested:  # the globals' (`_LEAST`)
                        self._cut_short(kind)
                    if kind == _EOF:
                        if not depth:
                            break
                        depth -= 1
                    elif nested and seen_bof:
                        depth += 1
                    seen_bof = True
                elif not depth:
                    keep(at)
                at += 4 + size
        except struct.error:  # fewer than 4 bytes left
            _refuse(self.name, "a record runs past the end of the workbook")
        if at > end:
            _refuse(self.name, "a record runs past the end of the workbook")
        if nested:
            # a real workbook's sheets follow one another: sheets made to overlap would have
            # each walked over the same records again
            self.walked += at - begun
            if self.walked > end:
                _refuse(self.name, "its sheets overlap")
        return np.frombuffer(starts, dtype=np.int64)

    def first_sheet(self) -> XlsSheet:
        """Check every sheet (the reader reads them all) and tell what the first one says."""
        total = 0
        found = XlsSheet()
        for number, start in enumerate(self.sheets, 1):
            if start > len(self.stream):
                _refuse(self.name, f"sheet {number} starts past the end of the workbook")
            values, formulas, long = self._sheet(start, number)
            if max(_widest(values), _widest(formulas)) > _COLUMNS:
                # Excel 97-2003 holds 256 columns; the reader takes up to 65,536, and tens of
                # thousands of columns cost it seconds even in a few rows
                raise SourceReadError(
                    f"{self.name}: sheet {number} has a cell past column {_COLUMNS}, more than "
                    "an .xls holds; not read"
                )
            total += _span(values) + _span(formulas)
            if total > MAX_CELLS:  # the reader allocates every sheet's span, each cell's room
                raise SourceReadError(
                    f"{self.name}: its sheets' cells span {total} cells, more than the "
                    f"{MAX_CELLS} kesu reads; not read (re-export only the used range)"
                )
            if number == 1 and len(values[0]):
                top, left = int(values[0].min()), int(values[1].min())
                found.header_row = top + 1
                for row, column in sorted(long):
                    if row > top:
                        found.long_numbers.setdefault(row - top - 1, []).append(column - left)
        return found

    def _sheet(self, start: int, number: int) -> tuple[_Cells, _Cells, set[tuple[int, int]]]:
        """Where a sheet's cells and its formulas are, as the reader makes them (rows and
        columns from 0), and which cells hold a number of 16 or more digits; `SourceReadError`
        if it claims more than `MAX_CELLS` cells."""
        records = self._records(start, nested=True)
        kinds, sizes, data = self._u16s(records), self._u16s(records + 2), records + 4
        claims = kinds == _DIMENSIONS
        for at, size in zip(data[claims].tolist(), sizes[claims].tolist(), strict=True):
            self._check_claim(self.stream[at : at + size], number)
        # MERGECELLS: a count, then 8 bytes a merged range, read as many as the count says
        merged = kinds == _MERGECELLS
        for at, size in zip(data[merged].tolist(), sizes[merged].tolist(), strict=True):
            if size < 2 or size < 2 + 8 * _u16(self.stream, at):
                _refuse(self.name, f"sheet {number}'s merged-cells record is cut short")

        def of(kind: int, least: int) -> np.ndarray:
            """The data offsets of the records of `kind`, those long enough for the reader."""
            return data[(kinds == kind) & (sizes >= least)]

        found: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []  # rows, columns, values

        def cells(at: np.ndarray, numbers: np.ndarray | None = None) -> None:
            found.append((self._u16s(at), self._u16s(at + 2), numbers))

        for kind in (_LABEL, _RSTRING, _BOOLERR):
            cells(of(kind, 6))
        text = of(_LABELSST, 10)
        cells(text[self._u32s(text + 6) < self.strings])  # no cell of a string it does not have
        numeric = of(_NUMBER, 14)
        cells(numeric, self._f64s(numeric + 6))
        rk = of(_RK, 10)
        cells(rk, _rk(self._u32s(rk + 6)))
        # MULRK: a row's run of RK numbers in one record, from its first column on
        multi = of(_MULRK, 6)
        count = (self._u16s(multi - 2) - 6) // 6
        each, nth = (
            np.repeat(multi, count),
            np.arange(count.sum()) - np.repeat(count.cumsum() - count, count),
        )
        found.append(
            (self._u16s(each), self._u16s(each + 2) + nth, _rk(self._u32s(each + 6 + 6 * nth)))
        )
        # FORMULA: a cell of its cached value, unless that is text: a STRING record after it
        formula = of(_FORMULA, 20)
        f_rows, f_columns = self._u16s(formula), self._u16s(formula + 2)
        is_number = self._u16s(formula + 12) != 0xFFFF
        valued = is_number | (self.bytes[formula + 6] != 0)
        numbers = np.where(is_number, self._f64s(formula + 6), 0.0)
        found.append((f_rows[valued], f_columns[valued], numbers[valued]))
        # STRING: the value of the formula before it; at (0, 0) if none is
        before = np.searchsorted(formula, data[kinds == _STRING]) - 1
        found.append((np.append(f_rows, 0)[before], np.append(f_columns, 0)[before], None))

        long: set[tuple[int, int]] = set()
        for rows, columns, values in found:
            if values is not None:
                big = np.abs(values) >= _LONG
                long.update(zip(rows[big].tolist(), columns[big].tolist(), strict=True))
        where = (np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]))
        return where, (f_rows, f_columns), long

    def _u16s(self, at: np.ndarray) -> np.ndarray:
        return self.bytes[at].astype(np.int64) | (self.bytes[at + 1].astype(np.int64) << 8)

    def _u32s(self, at: np.ndarray) -> np.ndarray:
        return self._u16s(at) | (self._u16s(at + 2) << 16)

    def _f64s(self, at: np.ndarray) -> np.ndarray:
        return self.bytes[at[:, None] + np.arange(8)].copy().view("<f8").reshape(-1)

    def _check_claim(self, record: bytes, number: int) -> None:
        """A DIMENSIONS record: the reader reserves room for the rows × columns it claims (as
        unsigned 32-bit arithmetic: a first row past the last wraps round to billions)."""
        if len(record) == 14:
            first, last, left, right = struct.unpack_from("<IIHH", record)
        elif len(record) == 10:
            first, last, left, right = struct.unpack_from("<HHHH", record)
        else:
            return  # the reader refuses it
        if left > 0xFF or right < left:
            left = 0
        rows = cols = 1
        if last >= 1 and right >= 1:
            rows = (last - 1 - first + 1) % (1 << 32)
            cols = (right - 1 - left + 1) % (1 << 32)
        if rows * cols > MAX_CELLS:
            raise SourceReadError(
                f"{self.name}: sheet {number} claims {rows} rows × {cols} columns, more than the "
                f"{MAX_CELLS} cells kesu reads; not read (re-export only the used range)"
            )


_Cells = tuple[np.ndarray, np.ndarray]  # rows, columns


def _widest(cells: _Cells) -> int:
    """The furthest column (from 1) of these cells; 0 if there are none."""
    return int(cells[1].max()) + 1 if len(cells[1]) else 0


def _span(cells: _Cells) -> int:
    """How many cells the reader allocates for these: the rectangle they span."""
    rows, columns = cells
    if not len(rows):
        return 0
    return int(rows.max() - rows.min() + 1) * int(columns.max() - columns.min() + 1)


def _rk(raw: np.ndarray) -> np.ndarray:
    """RK numbers: a 30-bit integer, or the top 30 bits of a double; either maybe ÷100."""
    integer = ((raw & 0xFFFFFFFC).astype(np.uint32).view(np.int32) >> 2).astype(np.float64)
    double = ((raw & 0xFFFFFFFC).astype(np.uint64) << np.uint64(32)).view(np.float64)
    value = np.where(raw & 2, integer, double)
    return np.where(raw & 1, value / 100, value)
