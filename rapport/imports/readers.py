"""Reading uploaded spreadsheets safely and in constant memory.

The format is decided by the content, never by the file name: an XLSX file is a zip archive
holding `xl/workbook.xml`; anything else must be text (CSV). Text encoding is detected from a
BOM, then by checking the whole file decodes as UTF-8 (streamed in chunks), falling back to
Windows-1252 / Latin-1 with a warning. Rows are yielded one at a time."""

import codecs
import csv
import datetime as dt
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings

DELIMITERS = [",", ";", "\t", "|"]
SNIFF_BYTES = 64 * 1024
CHUNK = 1024 * 1024
MAX_COLUMNS = 200
# A genuine XLSX compresses text roughly 5–20 times; far beyond that is a decompression bomb.
MAX_ZIP_RATIO = 200
MAX_ZIP_ENTRIES = 10000

# The csv module refuses fields over 128 KiB by default; we want to reach our own per-cell
# check (which makes a row error) rather than an abort of the whole file.
csv.field_size_limit(max(csv.field_size_limit(), 16 * 1024 * 1024))


class FileProblem(ValueError):
    """The file cannot be read at all (as opposed to a row that is invalid)."""


@dataclass
class FileInfo:
    file_format: str  # csv | xlsx
    encoding: str = ""
    delimiter: str = ""
    warnings: list[str] = field(default_factory=list)


def max_rows() -> int:
    return int(getattr(settings, "RAPPORT_IMPORT_MAX_ROWS", 2_000_000))


def max_unzipped_bytes() -> int:
    return int(getattr(settings, "RAPPORT_IMPORT_MAX_UNZIPPED_BYTES", 1024 * 1024 * 1024))


def sniff(path: Path) -> FileInfo:
    size = path.stat().st_size
    if size == 0:
        raise FileProblem("The file is empty.")
    if size > settings.RAPPORT_IMPORT_MAX_BYTES:
        raise FileProblem(
            f"The file is larger than the limit of {settings.RAPPORT_IMPORT_MAX_BYTES // (1024 * 1024)} MB."
        )
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        _check_xlsx(path)
        return FileInfo("xlsx")
    encoding, warnings = _detect_encoding(path, head)
    text = head.decode(encoding, errors="ignore")
    if "\x00" in text:
        raise FileProblem("This is not a CSV or XLSX file (it contains binary data).")
    return FileInfo("csv", encoding=encoding, delimiter=_detect_delimiter(text), warnings=warnings)


def _check_xlsx(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
    except (zipfile.BadZipFile, OSError, ValueError):
        raise FileProblem("The file looks like an XLSX (zip) file but is damaged or not a spreadsheet.")
    if "xl/workbook.xml" not in names:
        raise FileProblem(
            "This zip file is not an Excel workbook (.xlsx). Save the sheet as .xlsx or .csv and try again."
        )
    if len(infos) > MAX_ZIP_ENTRIES:
        raise FileProblem("The workbook has too many parts to be a normal spreadsheet.")
    total = sum(i.file_size for i in infos)
    if total > max_unzipped_bytes():
        raise FileProblem("The workbook is too large once unpacked.")
    for info in infos:
        if info.file_size > 1024 * 1024 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise FileProblem("The workbook is compressed suspiciously well (a decompression bomb?).")


def _detect_encoding(path: Path, head: bytes) -> tuple[str, list[str]]:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", []
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16", []
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return "utf-8", []
    except UnicodeDecodeError:
        pass
    # cp1252 leaves five bytes undefined; a file using them can only be Latin-1.
    encoding = "cp1252"
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if any(b in chunk for b in (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")):
                encoding = "latin-1"
                break
    return encoding, [
        f"The file is not UTF-8; it was read as {'Windows-1252' if encoding == 'cp1252' else 'Latin-1'}. "
        "Check accented letters in the preview; if they look wrong, save the file as UTF-8 and upload again."
    ]


def _detect_delimiter(text: str) -> str:
    """The candidate that splits the first lines into the same, largest number of cells."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", 0
    for d in DELIMITERS:
        counts = [line.count(d) for line in lines[:-1] or lines]
        if not counts or counts[0] == 0:
            continue
        consistent = sum(1 for c in counts if c == counts[0])
        score = counts[0] * 10 + consistent
        if score > best_score:
            best, best_score = d, score
    return best


def cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a person would see."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | int):
        return str(value)
    return str(value)


@contextmanager
def open_rows(path: Path, info: FileInfo) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
    """Yield (headers, rows). Raises FileProblem for an unreadable file or a missing header."""
    if info.file_format == "xlsx":
        with _xlsx_rows(path) as rows:
            yield _with_header(rows)
    else:
        with path.open("rb") as raw:
            import io

            text = io.TextIOWrapper(raw, encoding=info.encoding or "utf-8", errors="replace", newline="")
            reader = csv.reader(text, delimiter=info.delimiter or ",")
            yield _with_header(_csv_rows(reader))


def _csv_rows(reader: Any) -> Iterator[list[str]]:
    limit = max_rows() + 1
    n = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileProblem(f"The file is not valid CSV near line {reader.line_num}: {exc}.")
        n += 1
        if n > limit:
            raise FileProblem(f"The file has more than {max_rows():,} rows; split it into smaller files.")
        yield row


@contextmanager
def _xlsx_rows(path: Path) -> Iterator[Iterator[list[str]]]:
    import openpyxl  # openpyxl parses with defusedxml when it is installed (it is)

    # A file object, not the path: openpyxl would judge a path by its extension, and stored
    # uploads have none.
    handle = path.open("rb")
    try:
        wb = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception:  # openpyxl raises many types for a broken workbook
        handle.close()
        raise FileProblem("The workbook could not be opened; it may be damaged or not an .xlsx file.")
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            raise FileProblem("The workbook has no sheets.")

        def rows() -> Iterator[list[str]]:
            limit = max_rows() + 1
            try:
                for n, values in enumerate(ws.iter_rows(values_only=True), start=1):
                    if n > limit:
                        raise FileProblem(
                            f"The sheet has more than {max_rows():,} rows; split it into smaller files."
                        )
                    yield [cell_text(v) for v in values[: MAX_COLUMNS + 1]]
            except FileProblem:
                raise
            except Exception:
                raise FileProblem("The workbook could not be read to the end; it may be damaged.")

        yield rows()
    finally:
        wb.close()
        handle.close()


def _with_header(rows: Iterator[list[str]]) -> tuple[list[str], Iterator[list[str]]]:
    for row in rows:
        if any(c.strip() for c in row):
            headers = [h.strip().lstrip("\ufeff") for h in row]
            while headers and not headers[-1]:
                headers.pop()
            if len(headers) > MAX_COLUMNS:
                raise FileProblem(f"The file has more than {MAX_COLUMNS} columns.")
            return [h or f"Column {i + 1}" for i, h in enumerate(headers)], rows
    raise FileProblem("The file is empty.")
