"""Exports: the list's visibility and filters, formula escaping, safe download headers."""

import csv
import io

from openpyxl import load_workbook

from conftest import login
from rapport.activities.models import Activity
from rapport.people.actions import organisation_create, person_create
from rapport.sales.actions import deal_create


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.content[:300]
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_bobs_export_never_contains_alices_private_records(alice, bob, bob_client):
    secret_org = organisation_create(actor=alice, name="Secret Org", visibility="private")
    person_create(actor=alice, first_name="Private", last_name="Alice", visibility="private")
    person_create(
        actor=alice, first_name="Public", last_name="Person", organisation=secret_org, visibility="everyone"
    )
    person_create(actor=bob, first_name="Bobs", last_name="Own", visibility="private")
    deal_create(actor=alice, name="Hidden deal", visibility="private")
    Activity.objects.create(owner=alice, kind="note", subject="Hidden note", visibility="private")
    people = _csv(bob_client.get("/export/people.csv"))
    names = {(r[1], r[2]) for r in people[1:]}
    assert names == {("Public", "Person"), ("Bobs", "Own")}
    public = next(r for r in people if r[1] == "Public")
    assert public[6] == ""  # the organisation Bob may not see is not named
    for kind in ("organisations", "deals", "activities"):
        text = b"".join(bob_client.get(f"/export/{kind}.csv").streaming_content).decode()
        assert "Secret Org" not in text and "Hidden" not in text
    wb = load_workbook(io.BytesIO(bob_client.get("/export/people.xlsx").getvalue()), read_only=True)
    cells = [c for row in wb.active.iter_rows(values_only=True) for c in row]
    assert "Private" not in cells and "Bobs" in cells


def test_export_applies_the_lists_filters(alice, alice_client):
    person_create(actor=alice, first_name="Vip", last_name="One", is_vip=True, tags=["gold"])
    person_create(actor=alice, first_name="Plain", last_name="Two")
    rows = _csv(alice_client.get("/export/people.csv?vip=1"))
    assert [r[1] for r in rows[1:]] == ["Vip"]
    rows = _csv(alice_client.get("/export/people.csv?tag=gold"))
    assert [r[7] for r in rows[1:]] == ["gold"]
    rows = _csv(alice_client.get("/export/people.csv?q=pla"))
    assert [r[1] for r in rows[1:]] == ["Plain"]


def test_export_pages_through_everything_in_list_order(alice, alice_client, monkeypatch):
    from rapport.imports import export

    monkeypatch.setattr(export, "PAGE", 3)
    for i in range(10):
        person_create(actor=alice, first_name=f"P{i:02d}", last_name="Same")
    rows = _csv(alice_client.get("/export/people.csv"))
    assert [r[1] for r in rows[1:]] == [f"P{i:02d}" for i in range(10)]


def test_formula_cells_are_escaped_in_csv_and_xlsx(alice, alice_client):
    for value in ["=1+2", "+SUM(A1)", "-2+3", "@cmd", '=HYPERLINK("http://x")']:
        person_create(actor=alice, first_name=value, last_name="Formula", title="\tTab")
    rows = _csv(alice_client.get("/export/people.csv"))
    firsts = sorted(r[1] for r in rows[1:])
    assert all(v.startswith("'") for v in firsts), firsts
    assert {r[5] for r in rows[1:]} == {"'\tTab"}
    response = alice_client.get("/export/people.xlsx")
    assert response["Content-Disposition"].startswith("attachment")
    wb = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    ws = wb.active
    values = [ws.cell(row=r, column=2).value for r in range(2, ws.max_row + 1)]
    assert all(v.startswith("'") for v in values), values
    assert all(ws.cell(row=r, column=2).data_type == "s" for r in range(2, ws.max_row + 1))


def test_download_headers_are_safe(alice_client):
    for url in ("/export/people.csv", "/export/deals.xlsx"):
        response = alice_client.get(url)
        assert response["Content-Disposition"].startswith("attachment; filename=")
        assert response["X-Content-Type-Options"] == "nosniff"


def test_xlsx_export_is_capped_with_a_clear_message(alice, alice_client, settings):
    settings.RAPPORT_EXPORT_XLSX_MAX_ROWS = 3
    for i in range(5):
        organisation_create(actor=alice, name=f"Org {i}")
    wb = load_workbook(io.BytesIO(b"".join(alice_client.get("/export/organisations.xlsx").streaming_content)))
    rows = list(wb.active.iter_rows(values_only=True))
    assert len(rows) == 1 + 3 + 1 and "Only the first 3 rows" in rows[-1][0]


def test_bad_filters_and_unknown_exports_are_clear_errors(alice_client):
    assert alice_client.get("/export/people.csv?sort=password").status_code == 400
    assert alice_client.get("/export/users.csv").status_code == 404
    assert alice_client.get("/export/people.pdf").status_code == 404


def test_export_needs_login(client):
    assert client.get("/export/people.csv").status_code == 302


def test_read_only_user_can_export(reader, alice):
    person_create(actor=alice, first_name="Shared", visibility="team")
    rows = _csv(login(reader).get("/export/people.csv"))
    assert [r[1] for r in rows[1:]] == ["Shared"]
