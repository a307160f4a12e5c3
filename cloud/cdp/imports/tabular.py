"""Exports as tables, whatever the file: CSV (UTF-8 with or without BOM, GBK), .xls (BIFF8) or .xlsx.

``read_tables(data, name)`` detects the format from the bytes (an OLE compound file is .xls, a zip
is .xlsx, anything else is CSV text whose encoding is detected: UTF-8 with or without a byte-order
mark, else GB18030, the superset of GBK that Chinese Excel and JD/POS exports write). Every sheet
becomes a ``Table`` of text cells:

- header names are stripped (``订单付款时间 `` is ``订单付款时间``; BOMs, tabs and ``=`` / quotes Excel
  guards leave are dropped); a column repeated after stripping (``宝贝种类`` and ``宝贝种类 ``) keeps its
  first non-empty value per row, and the repeat is named in ``duplicates``;
- Excel date cells become ISO local times; numbers that are whole become integers written out
  (``21407300627014900.0`` -> ``21407300627014900``), and a number with more than 15 significant
  digits is remembered in ``imprecise`` (Excel kept only 15: such an id was rounded);
- ``'null`` (Taobao's null), ``NA``, ``-``, ``——`` and ``null`` read as empty; a leading TAB, ``'``
  or ``=`` Excel guard in a value is dropped (Douyin writes ids as ``"\\t6917..."``).

``ColumnMap`` maps a table's headers onto canonical fields by name with aliases and says which
columns it did not know and which fields it could not find, for the import report.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cloud.errors import Invalid

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
NULLS = frozenset({"", "'null", "null", "NULL", "Null", "NA", "N/A", "n/a", "-", "--", "——", "None", "nan", "NaN"})
_HEADER_JUNK = "\ufeff\t\r\n \u3000\"'="
_GUARDS = ("\t", "'", "=")


@dataclass
class Table:
    """One sheet of an export: stripped, deduplicated headers and text rows (row_no is the file's)."""

    name: str
    headers: list[str]
    rows: list[tuple[int, list[str]]]
    duplicates: list[str] = field(default_factory=list)
    imprecise: set[tuple[int, int]] = field(default_factory=set)  # (row_no, column) of >15-digit numbers

    def records(self) -> Iterable[tuple[int, dict[str, str]]]:
        for row_no, cells in self.rows:
            yield row_no, dict(zip(self.headers, cells))

    def column(self, header: str) -> list[str]:
        i = self.headers.index(header)
        return [cells[i] for _, cells in self.rows]


@dataclass
class FileInfo:
    format: str  # csv | xls | xlsx
    encoding: str | None  # csv only: utf-8-sig | utf-8 | gbk
    tables: list[Table]

    def describe(self) -> dict:
        return {"format": self.format, "encoding": self.encoding,
                "sheets": {t.name: len(t.rows) for t in self.tables},
                "duplicate_columns": sorted({d for t in self.tables for d in t.duplicates})}


def decode_text(data: bytes) -> tuple[str, str]:
    """CSV bytes as text and the encoding found: UTF-8 with a BOM, UTF-8, or GBK (read as GB18030)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError as exc:
        raise Invalid(f"the file is neither UTF-8 nor GBK text: {exc}", code="unknown_encoding") from None


def clean_header(raw: object) -> str:
    return str(raw if raw is not None else "").strip(_HEADER_JUNK).strip()


def clean_cell(raw: str) -> str:
    text = raw.strip("\r\n")
    while text[:1] in _GUARDS and text[:1]:
        text = text[1:]
    text = text.strip()
    return "" if text in NULLS else text


def _number(value: float) -> tuple[str, bool]:
    """A numeric cell as text, and whether it has more digits than Excel keeps (15)."""
    if value != value:  # NaN
        return "", False
    if value.is_integer():
        whole = int(value)
        return str(whole), len(str(abs(whole))) > 15
    return repr(value), False


def _table(name: str, grid: Sequence[tuple[int, list[str]]], imprecise: set[tuple[int, int]]) -> Table:
    """Headers from the first non-empty row; a repeated header keeps its first non-empty value."""
    grid = [(n, cells) for n, cells in grid if any(c.strip() for c in cells)]
    if not grid:
        return Table(name, [], [])
    header_row_no, raw_headers = grid[0]
    headers: list[str] = []
    first_of: dict[str, int] = {}
    duplicates: list[str] = []
    sources: list[list[int]] = []
    for i, raw in enumerate(raw_headers):
        h = clean_header(raw) or f"(column {i + 1})"
        if h in first_of:
            sources[first_of[h]].append(i)
            duplicates.append(h)
            continue
        first_of[h] = len(headers)
        headers.append(h)
        sources.append([i])
    rows: list[tuple[int, list[str]]] = []
    kept_imprecise: set[tuple[int, int]] = set()
    for row_no, cells in grid[1:]:
        out = []
        for j, idx in enumerate(sources):
            value = ""
            for i in idx:
                if i < len(cells) and cells[i]:
                    value = cells[i]
                    if (row_no, i) in imprecise:
                        kept_imprecise.add((row_no, j))
                    break
            out.append(value)
        rows.append((row_no, out))
    return Table(name, headers, rows, duplicates, kept_imprecise)


def _csv(data: bytes) -> FileInfo:
    text, encoding = decode_text(data)
    sample = text[:4096]
    delimiter = "\t" if sample.split("\n", 1)[0].count("\t") > sample.split("\n", 1)[0].count(",") else ","
    grid = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            grid.append((reader.line_num, [clean_cell(c) for c in cells]))
    except csv.Error as exc:
        raise Invalid(f"unreadable CSV at line {reader.line_num}: {exc}", code="bad_csv") from None
    return FileInfo("csv", encoding, [_table("csv", grid, set())])


def _xls(data: bytes) -> FileInfo:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data)
    except Exception as exc:
        raise Invalid(f"unreadable .xls workbook: {exc}", code="bad_workbook") from None
    tables = []
    for sheet in book.sheets():
        grid, imprecise = [], set()
        for r in range(sheet.nrows):
            cells = []
            for c, cell in enumerate(sheet.row(r)):
                if cell.ctype == xlrd.XL_CELL_DATE:
                    try:
                        when = xlrd.xldate_as_datetime(cell.value, book.datemode) + timedelta(microseconds=500_000)
                        cells.append(when.replace(microsecond=0).isoformat(sep=" "))
                    except (ValueError, OverflowError):
                        cells.append(repr(cell.value))
                elif cell.ctype in (xlrd.XL_CELL_NUMBER, xlrd.XL_CELL_BOOLEAN):
                    text, lossy = _number(float(cell.value))
                    cells.append(text)
                    if lossy:
                        imprecise.add((r + 1, c))
                else:
                    cells.append(clean_cell(str(cell.value)))
            grid.append((r + 1, cells))
        tables.append(_table(sheet.name, grid, imprecise))
    return FileInfo("xls", None, tables)


def _xlsx(data: bytes) -> FileInfo:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise Invalid(f"unreadable .xlsx workbook: {exc}", code="bad_workbook") from None
    tables = []
    try:
        for sheet in book.worksheets:
            grid, imprecise = [], set()
            for r, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                cells = []
                for c, value in enumerate(values):
                    if value is None:
                        cells.append("")
                    elif isinstance(value, datetime):
                        cells.append(value.isoformat(sep=" "))
                    elif isinstance(value, bool):
                        cells.append(str(int(value)))
                    elif isinstance(value, (int, float)):
                        text, lossy = _number(float(value)) if isinstance(value, float) else (str(value), False)
                        cells.append(text)
                        if lossy:
                            imprecise.add((r, c))
                    else:
                        cells.append(clean_cell(str(value)))
                grid.append((r, cells))
            tables.append(_table(sheet.title, grid, imprecise))
    finally:
        book.close()
    return FileInfo("xlsx", None, tables)


def read_tables(data: bytes) -> FileInfo:
    """Every sheet of an export file, as text tables; the format is found from the bytes."""
    if data.startswith(OLE_MAGIC):
        return _xls(data)
    if data.startswith(ZIP_MAGIC):
        return _xlsx(data)
    return _csv(data)


# --- columns by name -------------------------------------------------------------------------------


@dataclass
class ColumnMap:
    """Which header holds each canonical field; what the file has that nobody reads; what it lacks."""

    found: dict[str, str]
    unknown: list[str]
    missing: list[str]

    def get(self, record: Mapping[str, str], name: str) -> str:
        header = self.found.get(name)
        return record.get(header, "") if header else ""

    def has(self, name: str) -> bool:
        return name in self.found

    def describe(self) -> dict:
        return {"mapped": dict(self.found), "unknown_columns": self.unknown, "missing_columns": self.missing}


_NORMAL = re.compile(r"[\s_（）()]+")


def _norm(name: str) -> str:
    return _NORMAL.sub("", name).lower()


def map_columns(headers: Sequence[str], aliases: Mapping[str, Sequence[str]], *,
                required: Iterable[str] = (), ignored: Iterable[str] = ()) -> ColumnMap:
    """Map headers to fields: each field's aliases in order, compared without spaces, brackets or case.

    ``missing`` names every required field absent (with the header names that would have done);
    ``unknown`` every header no field and no ``ignored`` name claims.
    """
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(_norm(h), h)
    found: dict[str, str] = {}
    for name, names in aliases.items():
        for alias in names:
            header = by_norm.get(_norm(alias))
            if header is not None and header not in found.values():
                found[name] = header
                break
    claimed = set(found.values()) | {by_norm.get(_norm(i)) for i in ignored}
    unknown = [h for h in headers if h not in claimed and not h.startswith("(column ")]
    missing = [f"{name} ({' / '.join(aliases[name])})" for name in required if name not in found]
    return ColumnMap(found, unknown, missing)
