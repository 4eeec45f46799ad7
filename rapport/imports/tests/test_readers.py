"""Reading hostile and odd files: encodings, delimiters, empty, binary, fake and bomb XLSX."""

import io
import zipfile

import pytest

from rapport.imports.mapping import guess_mapping, split_full_name
from rapport.imports.readers import FileProblem, open_rows, sniff

from .conftest import xlsx_bytes


def _write(tmp_path, data: bytes, name="f"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read(path):
    info = sniff(path)
    with open_rows(path, info) as (headers, rows):
        return info, headers, list(rows)


def test_latin1_file_is_read_as_cp1252_with_a_warning(tmp_path):
    path = _write(tmp_path, "Vorname;Nachname\nJürgen;Müßig\n".encode("latin-1"))
    info, headers, rows = _read(path)
    assert info.encoding == "cp1252" and info.delimiter == ";"
    assert info.warnings and "not UTF-8" in info.warnings[0]
    assert rows == [["Jürgen", "Müßig"]]


def test_utf16_with_bom_and_tabs_is_read(tmp_path):
    path = _write(tmp_path, "First name\tLast name\nZoë\tÅngström\n".encode("utf-16"))
    info, headers, rows = _read(path)
    assert info.encoding == "utf-16" and info.delimiter == "\t"
    assert headers == ["First name", "Last name"] and rows == [["Zoë", "Ångström"]]


def test_utf8_bom_is_not_part_of_the_first_header(tmp_path):
    path = _write(tmp_path, "\ufeffEmail|Name\na@b.example|A\n".encode())
    info, headers, rows = _read(path)
    assert info.encoding == "utf-8-sig" and info.delimiter == "|" and headers == ["Email", "Name"]


def test_empty_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileProblem, match="empty"):
        sniff(_write(tmp_path, b""))


def test_blank_lines_only_is_a_clear_error(tmp_path):
    path = _write(tmp_path, b"\n\n  \n")
    with pytest.raises(FileProblem, match="empty"):
        _read(path)


def test_binary_file_is_refused(tmp_path):
    with pytest.raises(FileProblem, match="binary"):
        sniff(_write(tmp_path, b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 4))


def test_zip_that_is_not_a_workbook_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", "<x/>")
    with pytest.raises(FileProblem, match="not an Excel workbook"):
        sniff(_write(tmp_path, buf.getvalue()))


def test_truncated_zip_named_xlsx_is_refused(tmp_path):
    data = xlsx_bytes([["a"], ["b"]])[:300]
    with pytest.raises(FileProblem):
        sniff(_write(tmp_path, data, "x.xlsx"))


def test_decompression_bomb_is_refused_before_parsing(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"<" + b"a" * (20 * 1024 * 1024) + b"/>")
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(FileProblem, match="bomb"):
        sniff(_write(tmp_path, buf.getvalue()))


def test_xlsx_row_cap_stops_a_huge_sheet(tmp_path, settings):
    settings.RAPPORT_IMPORT_MAX_ROWS = 5
    path = _write(tmp_path, xlsx_bytes([["Email"]] + [[f"p{i}@x.example"] for i in range(10)]))
    with pytest.raises(FileProblem, match="more than 5 rows"):
        _read(path)


def test_xlsx_is_detected_by_content_not_name(tmp_path):
    path = _write(tmp_path, xlsx_bytes([["Name", "Amount"], ["Big deal", 1200.0]]), "data.csv")
    info, headers, rows = _read(path)
    assert info.file_format == "xlsx" and headers == ["Name", "Amount"] and rows == [["Big deal", "1200"]]


def test_file_over_the_size_limit_is_refused(tmp_path, settings):
    settings.RAPPORT_IMPORT_MAX_BYTES = 10
    with pytest.raises(FileProblem, match="larger than"):
        sniff(_write(tmp_path, b"Name\nAlice Example\n"))


@pytest.mark.parametrize(
    "headers,expected",
    [
        (["Vorname", "Nachname", "E-Mail", "Firma"], ["first_name", "last_name", "email", "organisation"]),
        (["prénom", "Nom", "Courriel", "Téléphone"], ["first_name", "last_name", "email", "phone"]),
        (
            ["Given name", "Surname", "Mobile", "Job Title", "Twitter"],
            ["first_name", "last_name", "phone", "title", "x"],
        ),
        (
            ["Full name", "Work e-mail", "Account", "LinkedIn URL", "Shoe size"],
            ["full_name", "email", "organisation", "linkedin", "custom"],
        ),
    ],
)
def test_headers_in_several_languages_are_guessed(headers, expected):
    assert guess_mapping("people", headers) == expected


def test_deal_headers_are_guessed():
    assert guess_mapping(
        "deals", ["Deal name", "Amount", "Currency", "Stage", "Close date", "Company", "Owner email", "X"]
    ) == [
        "name",
        "amount",
        "currency",
        "stage",
        "close_date",
        "organisation",
        "owner_email",
        "",
    ]


def test_full_names_are_split():
    assert split_full_name("Smith, Jane") == ("Jane", "Smith")
    assert split_full_name("Ludwig van Beethoven") == ("Ludwig", "van Beethoven")
    assert split_full_name("Mary Ann  Evans") == ("Mary Ann", "Evans")
    assert split_full_name("Cher") == ("Cher", "")
