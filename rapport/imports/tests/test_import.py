"""Importing through the web flow: upload → mapping → dry run → import, with duplicates,
bad rows, hostile values, access rules and all-or-nothing writes."""

import csv
import io

import pytest

from conftest import login
from rapport.audit.models import AuditEntry
from rapport.imports import actions
from rapport.imports.models import ImportJob, ImportStatus
from rapport.people.actions import organisation_create, person_create
from rapport.people.models import Identity, Organisation, Person
from rapport.sales.models import Deal

from .conftest import job_id_from, upload, xlsx_bytes

PEOPLE = (
    "First name,Last name,E-mail,Phone,Company,Tags\n"
    "Jane,Doe,jane@acme.example,+44 20 7946 0958,Acme,vip;partner\n"
    "Jon,Smith,,,Acme,\n"
    "Bad,Email,not-an-email,,,\n"
    "Jane,D.,JANE@acme.example,,,newsletter\n"
    "Jonn,Smith,,,Acme,\n"
)


def _configure(client, job_id, on_duplicate="skip", visibility="everyone", **extra):
    job = ImportJob.objects.get(pk=job_id)
    data = {f"col_{i}": t for i, t in enumerate(job.mapping)}
    data.update(on_duplicate=on_duplicate, visibility=visibility, **extra)
    response = client.post(f"/imports/{job_id}/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportJob.objects.get(pk=job_id)


def _import(
    client, content: bytes, kind="people", on_duplicate="skip", name="contacts.csv", **extra
) -> ImportJob:
    job_id = job_id_from(upload(client, content, kind, name))
    job = _configure(client, job_id, on_duplicate, **extra)
    assert job.status == ImportStatus.ANALYSED, job.error
    response = client.post(f"/imports/{job_id}/start/")
    assert response.status_code == 302
    return ImportJob.objects.get(pk=job_id)


def test_upload_guesses_the_mapping_and_shows_samples(alice_client):
    job_id = job_id_from(upload(alice_client, PEOPLE.encode()))
    job = ImportJob.objects.get(pk=job_id)
    assert job.mapping == ["first_name", "last_name", "email", "phone", "organisation", "tags"]
    page = alice_client.get(f"/imports/{job_id}/").content.decode()
    assert "jane@acme.example" in page and 'name="col_2"' in page


def test_stored_upload_name_is_random_not_the_users(alice_client, settings):
    job_id = job_id_from(upload(alice_client, PEOPLE.encode(), name="../../etc/passwd.csv"))
    job = ImportJob.objects.get(pk=job_id)
    assert "/" not in job.stored_name and "passwd" not in job.stored_name
    assert (settings.MEDIA_ROOT / "imports" / job.stored_name).exists()


def test_dry_run_counts_and_previews_without_writing(alice_client):
    job_id = job_id_from(upload(alice_client, PEOPLE.encode()))
    job = _configure(alice_client, job_id, on_duplicate="merge")
    assert (job.dry_new, job.dry_duplicate, job.dry_invalid) == (2, 2, 1)
    assert [p["action"] for p in job.preview] == ["create", "create", "invalid", "merge", "merge"]
    assert job.preview[3]["duplicate_row"] == 2
    assert not Person.objects.exists() and not Organisation.objects.exists()


def test_import_merges_exact_and_fuzzy_duplicates_and_reports_bad_rows(alice_client, alice):
    job = _import(alice_client, PEOPLE.encode(), on_duplicate="merge", visibility="team")
    assert job.status == ImportStatus.DONE, job.error
    assert (job.created, job.merged, job.skipped, job.failed) == (2, 2, 0, 1)
    jane = Person.objects.get(first_name="Jane")
    assert jane.last_name == "Doe" and jane.organisation.name == "Acme"
    assert sorted(jane.tags.values_list("name", flat=True)) == ["newsletter", "partner", "vip"]
    assert set(jane.identities.values_list("kind", "value")) == {
        ("email", "jane@acme.example"),
        ("phone", "+442079460958"),
    }
    assert jane.sort_key == "doe jane" and jane.visibility == "team" and jane.team.name == "North"
    assert jane.owner == alice and jane.source == "import"
    assert (
        Person.objects.filter(last_name="Smith").count() == 1
    )  # "Jonn Smith" at Acme merged into "Jon Smith"
    assert Organisation.objects.filter(name="Acme").count() == 1
    assert AuditEntry.objects.filter(action="import").count() == 1
    assert not AuditEntry.objects.filter(action="create").exists()  # one entry per job, not per row
    report = alice_client.get(f"/imports/{job.pk}/errors.csv")
    assert report.status_code == 200 and report["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:4] == ["row", "column", "value", "message"]
    assert rows[1][:3] == ["4", "E-mail", "not-an-email"] and rows[1][4:] == [
        "Bad",
        "Email",
        "not-an-email",
        "",
        "",
        "",
    ]


def test_skip_mode_leaves_existing_records_untouched(alice_client, alice):
    existing = person_create(
        actor=alice, first_name="Jane", last_name="", identities=[("email", "jane@acme.example")]
    )
    job = _import(alice_client, PEOPLE.encode(), on_duplicate="skip")
    assert (job.created, job.merged, job.skipped, job.failed) == (1, 0, 3, 1)
    existing.refresh_from_db()
    assert existing.last_name == "" and existing.version == 1


def test_merge_fills_empty_fields_of_an_existing_record_only(alice_client, alice):
    existing = person_create(
        actor=alice, first_name="Jane", title="CEO", identities=[("email", "jane@acme.example")]
    )
    _import(
        alice_client,
        b"Email,Last name,Title,Twitter\njane@acme.example,Doe,Intern,janedoe\n",
        on_duplicate="merge",
    )
    existing.refresh_from_db()
    assert existing.last_name == "Doe" and existing.title == "CEO" and existing.version == 2
    assert existing.identities.filter(kind="x", value="janedoe").exists()
    assert Person.objects.count() == 1


def test_create_anyway_marks_duplicates_for_review(alice_client, alice):
    person_create(actor=alice, first_name="Jane", identities=[("email", "jane@acme.example")])
    _import(alice_client, b"Email,First name\njane@acme.example,Jane\n", on_duplicate="create")
    assert Person.objects.count() == 2
    assert Person.objects.filter(needs_review=True).count() == 1


def test_duplicate_of_someone_elses_private_record_is_not_revealed_or_touched(alice_client, bob):
    private = person_create(
        actor=bob, first_name="Secret", visibility="private", identities=[("email", "jane@acme.example")]
    )
    job = _import(alice_client, b"Email,First name\njane@acme.example,Jane\n", on_duplicate="merge")
    assert job.created == 1 and job.merged == 0  # Alice cannot see Bob's record: not a duplicate for her
    private.refresh_from_db()
    assert private.first_name == "Secret" and private.version == 1


def test_duplicate_of_a_visible_but_not_editable_record_is_skipped(alice_client, bob):
    shared = person_create(
        actor=bob, first_name="", visibility="everyone", identities=[("email", "jane@acme.example")]
    )
    job = _import(alice_client, b"Email,First name\njane@acme.example,Jane\n", on_duplicate="merge")
    assert (job.created, job.merged, job.skipped) == (0, 0, 1)
    shared.refresh_from_db()
    assert shared.first_name == ""


def test_formula_and_html_values_are_stored_as_text_and_shown_escaped(alice_client):
    content = (
        b"First name,Last name,Company\n"
        b'"=HYPERLINK(""http://evil.example"",""x"")",=cmd|\' /C calc\'!A0,<script>alert(1)</script>\n'
    )
    job = _import(alice_client, content)
    assert job.created == 1, job.error
    p = Person.objects.get()
    assert p.first_name == '=HYPERLINK("http://evil.example","x")'
    assert p.last_name == "=cmd|' /C calc'!A0"
    assert p.organisation.name == "<script>alert(1)</script>"
    page = alice_client.get(f"/people/{p.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    exported = b"".join(alice_client.get("/export/people.csv").streaming_content).decode("utf-8-sig")
    assert "'=HYPERLINK" in exported and "'=cmd|" in exported


def test_bad_cells_are_row_errors_not_aborts(alice_client):
    content = (
        "First name,Email,Phone\n"
        f"{'x' * 10000},a@b.example,\n"
        "Ok,ok@b.example,\n"
        "Phone,,not a phone\n"
        "Too,many@b.example,,extra cell\n"
        "Few\n"
    ).encode()
    job = _import(alice_client, content)
    assert job.status == ImportStatus.DONE
    assert (job.created, job.failed) == (2, 3)
    assert set(Person.objects.values_list("first_name", flat=True)) == {"Ok", "Few"}
    report = b"".join(alice_client.get(f"/imports/{job.pk}/errors.csv").streaming_content).decode("utf-8-sig")
    assert "10,000 characters" in report and "not a phone number" in report and "extra cells" in report


def test_latin1_and_utf16_files_import_with_correct_letters(alice_client):
    _import(alice_client, "Vorname;Nachname\nJürgen;Groß\n".encode("latin-1"))
    _import(alice_client, "Prénom\tNom\nZoë\tÅngström\n".encode("utf-16"))
    assert set(Person.objects.values_list("first_name", "last_name")) == {
        ("Jürgen", "Groß"),
        ("Zoë", "Ångström"),
    }
    job = ImportJob.objects.filter(encoding="cp1252").get()
    assert job.warnings


def test_xlsx_import(alice_client):
    data = xlsx_bytes(
        [["Name", "Email"], ["Ada Lovelace", "ada@example.org"], [None, None], ["Alan Turing", None]]
    )
    job = _import(alice_client, data, name="people.xlsx")
    assert job.created == 2
    assert Person.objects.filter(first_name="Ada", last_name="Lovelace").exists()


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"First name,Email\n", "no data rows"),
        (b"\x00\x01\x02binary\x00" * 50, "binary"),
        (b"PK\x03\x04not really a zip" * 10, "damaged"),
    ],
)
def test_unreadable_files_give_a_clear_error_and_keep_nothing(alice_client, settings, content, message):
    response = upload(alice_client, content)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ImportJob.objects.exists()
    folder = settings.MEDIA_ROOT / "imports"
    assert not folder.exists() or not any(folder.iterdir())


def test_read_only_user_cannot_import(reader):
    client = login(reader)
    assert upload(client, PEOPLE.encode()).status_code == 403
    assert not ImportJob.objects.exists()
    with pytest.raises(actions.ActionError):
        actions.job_create(actor=reader, kind="people", chunks=[PEOPLE.encode()])


def test_someone_elses_job_is_not_found(alice_client, bob_client):
    job_id = job_id_from(upload(alice_client, PEOPLE.encode()))
    assert bob_client.get(f"/imports/{job_id}/").status_code == 404
    assert bob_client.get(f"/imports/{job_id}/status.json").status_code == 404
    assert bob_client.post(f"/imports/{job_id}/start/").status_code == 404


def test_sales_rep_cannot_share_an_import_with_another_team(alice_client, south):
    job_id = job_id_from(upload(alice_client, PEOPLE.encode()))
    job = ImportJob.objects.get(pk=job_id)
    data = {f"col_{i}": t for i, t in enumerate(job.mapping)}
    response = alice_client.post(f"/imports/{job_id}/", {**data, "team": south.pk, "visibility": "team"})
    assert response.status_code == 400
    assert ImportJob.objects.get(pk=job_id).status == ImportStatus.UPLOADED


def test_a_failure_mid_import_saves_nothing_and_shows_the_error(alice_client, monkeypatch):
    from rapport.imports import engine, kinds

    monkeypatch.setattr(engine, "BATCH", 2)
    real_flush = kinds.PeopleImporter.flush
    calls = {"n": 0}

    def failing_flush(self):
        calls["n"] += 1
        real_flush(self)
        if calls["n"] == 2 and not self.dry:
            raise RuntimeError("disk full")

    monkeypatch.setattr(kinds.PeopleImporter, "flush", failing_flush)
    rows = "Email,First name\n" + "".join(f"p{i}@x.example,P{i}\n" for i in range(10))
    job_id = job_id_from(upload(alice_client, rows.encode()))
    _configure(alice_client, job_id)
    calls["n"] = 0
    alice_client.post(f"/imports/{job_id}/start/")
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == ImportStatus.FAILED and "nothing was saved" in job.error
    assert not Person.objects.exists() and not Identity.objects.exists()
    assert not AuditEntry.objects.filter(action="import").exists()
    assert "nothing was saved" in alice_client.get(f"/imports/{job_id}/").content.decode()


def test_status_endpoint_reports_progress(alice_client):
    job = _import(alice_client, PEOPLE.encode())
    data = alice_client.get(f"/imports/{job.pk}/status.json").json()
    assert data["status"] == "done" and data["rows_done"] == 5 and data["percent"] == 100
    assert data["created"] == job.created


def test_job_cannot_be_started_twice(alice_client):
    job = _import(alice_client, PEOPLE.encode())
    alice_client.post(f"/imports/{job.pk}/start/")
    assert Person.objects.count() == job.created


def test_organisations_import_dedupes_by_name_and_domain(alice_client, alice):
    organisation_create(actor=alice, name="Globex", domains=["globex.example"])
    content = b"Company,Website,Industry,Employees\nGlobex Corp,https://www.globex.example,Energy,1200\nInitech,initech.example,Software,50\nInitech,,,\n"
    job = _import(alice_client, content, kind="organisations", on_duplicate="merge")
    assert (job.created, job.merged, job.failed) == (1, 2, 0), job.preview
    globex = Organisation.objects.get(name="Globex")
    assert globex.industry == "Energy" and globex.employees == 1200
    initech = Organisation.objects.get(name="Initech")
    assert list(initech.domains.values_list("domain", flat=True)) == ["initech.example"]


def test_deals_import_resolves_stage_owner_and_organisation(alice_client, alice, carol):
    content = (
        b"Deal name,Amount,Currency,Stage,Close date,Organisation,Owner email\n"
        b'Big one,"12.500,50",eur,Proposal,31.03.2026,Acme,alice@rapport.test\n'
        b"Stolen,100,EUR,Lead,2026-01-01,,carol@rapport.test\n"
        b"Odd stage,100,EUR,Nope,2026-01-01,,\n"
        b"Won it,5,USD,won,,,\n"
    )
    job = _import(alice_client, content, kind="deals")
    assert (job.created, job.failed) == (2, 2), job.preview
    big = Deal.objects.get(name="Big one")
    assert str(big.amount) == "12500.50" and big.currency == "EUR" and big.stage.name == "Proposal"
    assert (
        big.expected_close.isoformat() == "2026-03-31"
        and big.organisation.name == "Acme"
        and big.owner == alice
    )
    assert Deal.objects.get(name="Won it").status == "won"


def test_dry_run_page_shows_counts_preview_and_escapes_values(alice_client):
    content = b"First name,Email\n<b>Bold</b>,x@y.example\nBad,nope\n"
    job_id = job_id_from(upload(alice_client, content))
    _configure(alice_client, job_id)
    page = alice_client.get(f"/imports/{job_id}/").content.decode()
    assert "Dry run" in page and "&lt;b&gt;Bold&lt;/b&gt;" in page and "<b>Bold</b>" not in page
    assert f"/imports/{job_id}/start/" in page and f"/imports/{job_id}/errors.csv" in page
    assert "<progress" in page and "imports/progress.js" in page and " style=" not in page
