"""vCard in and out: RFC 6350 escaping and folding, many cards, per-card errors, round trip."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from rapport.people import actions
from rapport.people.models import Address, Identity, Person
from rapport.people.vcard import escape, fold_line, parse_vcards, person_to_vcard, unescape

CARD_40 = (
    "BEGIN:VCARD\r\n"
    "VERSION:4.0\r\n"
    "FN:Jane Doe\r\n"
    "N:Doe;Jane;;Dr.;\r\n"
    "ORG:Acme\\, Inc.;Research\r\n"
    "TITLE:Chief Technology Officer\r\n"
    "EMAIL;TYPE=work;PREF=1:jane@acme.com\r\n"
    "TEL;VALUE=uri;TYPE=cell:tel:+1-415-555-0132\r\n"
    "URL:https://acme.com/\r\n"
    "X-SOCIALPROFILE;TYPE=mastodon:https://mastodon.social/@jane\r\n"
    "IMPP;X-SERVICE-TYPE=WhatsApp:whatsapp:+442079460958\r\n"
    "ADR;TYPE=work:;;1 Main Street;London;;EC1A 1BB;United Kingdom\r\n"
    "NOTE:Met at the conference\\; wants a demo\\nSecond line with a comma\\, here and a long\r\n"
    "  tail that was folded onto the next line\r\n"
    "CATEGORIES:prospect,vip\r\n"
    "BDAY:19800101\r\n"
    "END:VCARD\r\n"
)

CARD_30_APPLE = (
    "BEGIN:VCARD\n"
    "VERSION:3.0\n"
    "N:Smith;John;;;\n"
    "FN:John Smith\n"
    "item1.EMAIL;type=INTERNET;type=pref:john@globex.example\n"
    "item1.X-ABLabel:_$!<Other>!$_\n"
    "TEL;type=CELL;type=VOICE;type=pref:+44 20 7946 0958\n"
    "X-SOCIALPROFILE;type=twitter;x-user=johnsmith:x-apple:johnsmith\n"
    "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD\n"
    "END:VCARD\n"
)


def test_escape_and_unescape_are_inverse_per_rfc6350():
    value = "a,b;c\\d\nnext"
    assert escape(value) == "a\\,b\\;c\\\\d\\nnext"
    assert unescape(escape(value)) == value


def test_folding_keeps_lines_under_75_octets_and_unfolds_back():
    line = "NOTE:" + "Zoë Ångström 🦄 " * 20
    folded = fold_line(line)
    assert all(len(part.encode("utf-8")) <= 75 for part in folded.split("\r\n"))
    card = f"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:X\r\n{folded}\r\nEND:VCARD\r\n"
    assert parse_vcards(card).contacts[0].note == line[5:].strip()


def test_v4_card_with_folded_lines_maps_every_field():
    c = parse_vcards(CARD_40).contacts[0]
    assert (c.first_name, c.last_name) == ("Jane", "Doe")
    assert c.organisation == "Acme, Inc."
    assert c.title == "Chief Technology Officer"
    assert {(i.kind, i.value) for i in c.identities} == {
        ("email", "jane@acme.com"),
        ("phone", "+14155550132"),
        ("website", "https://acme.com"),
        ("mastodon", "@jane@mastodon.social"),
        ("whatsapp", "+442079460958"),
    }
    assert c.note.startswith("Met at the conference; wants a demo\nSecond line with a comma, here")
    assert c.note.endswith("tail that was folded onto the next line")
    assert str(c.addresses[0]) == "1 Main Street, EC1A 1BB, London, United Kingdom"
    assert c.tags == ["prospect", "vip"]
    assert "department Research" in c.not_understood
    assert "BDAY: 19800101" in c.not_understood
    assert c.errors == []


def test_apple_v3_card_with_groups_and_social_profile():
    c = parse_vcards(CARD_30_APPLE).contacts[0]
    assert c.full_name == "John Smith"
    assert {(i.kind, i.value) for i in c.identities} == {
        ("email", "john@globex.example"),
        ("phone", "+442079460958"),
        ("x", "johnsmith"),
    }
    assert any("PHOTO" in s for s in c.skipped)


def test_many_cards_with_per_card_errors():
    text = CARD_40 + "BEGIN:VCARD\nVERSION:3.0\nFN:Broken\nEMAIL:not-an-email\nEND:VCARD\n" + CARD_30_APPLE
    result = parse_vcards(text)
    assert len(result.contacts) == 3
    assert result.contacts[0].errors == [] and result.contacts[2].errors == []
    assert "not-an-email" in result.contacts[1].errors[0]


def test_missing_end_and_garbage_lines_are_errors_of_that_card():
    result = parse_vcards("BEGIN:VCARD\nVERSION:4.0\nFN:Half\nthis line has no colon\n")
    c = result.contacts[0]
    assert any("no END:VCARD" in e for e in c.errors)
    assert any("expected NAME:value" in e for e in c.errors)


def test_quoted_printable_v21_is_decoded():
    card = (
        "BEGIN:VCARD\nVERSION:2.1\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen\n"
        "NOTE;ENCODING=QUOTED-PRINTABLE:first=0D=0A=\nsecond\nTEL;CELL:+49 30 901820\nEND:VCARD\n"
    )
    c = parse_vcards(card).contacts[0]
    assert (c.first_name, c.last_name) == ("Jürgen", "Müller")
    assert c.note == "first\nsecond"


def test_no_cards_is_a_clear_error():
    assert parse_vcards("hello").errors


def _person(alice):
    person = actions.person_create(
        actor=alice,
        first_name="Zoë; Ann",
        last_name="O'Brien, Jr",
        title="CTO",
        organisation=actions.organisation_create(actor=alice, name="Acme; Corp"),
        identities=[
            ("email", "zoe@acme.com"),
            ("phone", "+442079460958"),
            ("x", "zoe"),
            ("mastodon", "@zoe@mastodon.social"),
            ("bluesky", "zoe.bsky.social"),
            ("linkedin", "zoeob"),
            ("website", "https://zoe.example"),
            ("whatsapp", "+14155550132"),
        ],
        bio="Line one\nLine two, with; punctuation \\ and backslash",
        tags=["friend"],
    )
    Address.objects.create(person=person, street="1 Main St", city="London", country="UK")
    return person


def test_round_trip_export_then_import_gives_the_same_identities(alice, bob):
    person = _person(alice)
    text = person_to_vcard(person)
    assert text.startswith("BEGIN:VCARD\r\nVERSION:4.0\r\n")
    c = parse_vcards(text).contacts[0]
    assert c.errors == []
    assert {(i.kind, i.value) for i in c.identities} == set(person.identities.values_list("kind", "value"))
    assert (c.first_name, c.last_name, c.title, c.organisation) == (
        "Zoë; Ann",
        "O'Brien, Jr",
        "CTO",
        "Acme; Corp",
    )
    assert c.note == person.bio
    assert c.tags == ["friend"]
    assert str(c.addresses[0]) == "1 Main St, London, UK"


def test_export_view_is_an_attachment_and_respects_visibility(alice, alice_client, bob_client):
    person = _person(alice)
    response = alice_client.get(f"/people/{person.pk}/vcard")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/vcard")
    assert response["Content-Disposition"].startswith("attachment;")
    assert "zoe@acme.com" in response.content.decode()
    actions.person_update(actor=alice, person=person, data={"visibility": "private"})
    assert bob_client.get(f"/people/{person.pk}/vcard").status_code == 404


def test_export_many_is_capped_and_only_visible(alice, bob, alice_client):
    a = actions.person_create(actor=alice, first_name="A", identities=[("email", "a@x.example")])
    hidden = actions.person_create(actor=bob, first_name="Hidden", visibility="private")
    response = alice_client.get(f"/people/vcard?ids={a.pk},{hidden.pk}")
    body = response.content.decode()
    assert response.status_code == 200 and body.count("BEGIN:VCARD") == 1 and "Hidden" not in body
    too_many = ",".join(str(i) for i in range(1, 600))
    assert alice_client.get(f"/people/vcard?ids={too_many}").status_code == 400
    assert alice_client.get("/people/vcard?ids=abc").status_code == 400


def test_import_page_previews_then_saves_cards_and_lists_errors(alice_client):
    bad = "BEGIN:VCARD\nVERSION:3.0\nFN:Broken\nEMAIL:not-an-email\nEND:VCARD\n"
    upload = SimpleUploadedFile("contacts.vcf", (CARD_40 + bad + CARD_30_APPLE).encode(), "text/vcard")
    response = alice_client.post(reverse("vcard-import"), {"file": upload, "step": "preview"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "2 new" in body and "1 with problems" in body and "not-an-email" in body
    assert Person.objects.count() == 0
    text = response.context["text"]
    response = alice_client.post(reverse("vcard-import"), {"text": text, "step": "save"})
    assert response.status_code == 200
    assert response.context["saved"] == 2 and response.context["failed"] == 1
    assert Person.objects.count() == 2
    jane = Person.objects.get(last_name="Doe")
    assert jane.source == "import"
    assert jane.addresses.count() == 1 and set(jane.tags.values_list("name", flat=True)) == {
        "prospect",
        "vip",
    }


def test_import_twice_adds_nothing_new(alice_client):
    for _ in range(2):
        alice_client.post(reverse("vcard-import"), {"text": CARD_40, "step": "save"})
    assert Person.objects.count() == 1
    assert Identity.objects.filter(value="jane@acme.com").count() == 1


def test_import_rejects_non_vcard_content_whatever_the_name(alice_client):
    upload = SimpleUploadedFile("evil.vcf", b"<html><script>alert(1)</script></html>", "text/vcard")
    response = alice_client.post(reverse("vcard-import"), {"file": upload, "step": "preview"})
    assert response.status_code == 400 and "not a vCard" in response.content.decode()


def test_import_rejects_oversized_file(alice_client, settings):
    from rapport.people import views_capture

    big = SimpleUploadedFile(
        "big.vcf", b"BEGIN:VCARD\n" + b"x" * (views_capture.MAX_VCARD_BYTES + 1), "text/vcard"
    )
    response = alice_client.post(reverse("vcard-import"), {"file": big, "step": "preview"})
    assert response.status_code == 400 and "larger than" in response.content.decode()
