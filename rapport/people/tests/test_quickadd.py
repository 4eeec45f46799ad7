"""Quick add: one line, a signature or pasted vCards become a previewed, then saved, person."""

import pytest
from django.urls import reverse

from rapport.audit.models import AuditEntry
from rapport.core.errors import ActionError
from rapport.people import actions
from rapport.people.models import Identity, Organisation, Person
from rapport.people.quickadd import capture_save, parse_line, parse_signature, parse_text, plan_capture

LINE_1 = "Jane Doe <jane@acme.com> @janedoe, CTO at Acme"
LINE_2 = (
    "Jane Doe, CTO, Acme Corp, +44 20 7946 0958, jane@acme.com, mastodon @jane@mastodon.social, "
    "bsky jane.bsky.social, linkedin.com/in/janedoe"
)
SIGNATURE = """Best regards,

Jane Doe
Chief Technology Officer
Acme Corp, Inc.
M: +1 415 555 0132 | Tel +44 20 7946 0958
jane@acme.com
www.acme.com
https://x.com/janedoe
"""


def idents(contact):
    return {(i.kind, i.value) for i in contact.identities}


# --- pure parsing ------------------------------------------------------------------------------


def test_line_with_angle_email_handle_and_title_at_company():
    c = parse_line(LINE_1)
    assert (c.first_name, c.last_name, c.title, c.organisation) == ("Jane", "Doe", "CTO", "Acme")
    assert idents(c) == {("email", "jane@acme.com"), ("x", "janedoe")}
    assert c.errors == [] and c.not_understood == []


def test_comma_separated_line_with_every_kind_of_identity():
    c = parse_line(LINE_2)
    assert (c.first_name, c.last_name, c.title, c.organisation) == ("Jane", "Doe", "CTO", "Acme Corp")
    assert idents(c) == {
        ("phone", "+442079460958"),
        ("email", "jane@acme.com"),
        ("mastodon", "@jane@mastodon.social"),
        ("bluesky", "jane.bsky.social"),
        ("linkedin", "janedoe"),
    }
    assert c.errors == [] and c.not_understood == []


def test_signature_lines_with_labelled_phones_website_and_sign_off():
    result = parse_text(SIGNATURE)
    assert result.kind == "signature"
    c = result.contacts[0]
    assert (c.first_name, c.last_name) == ("Jane", "Doe")
    assert c.title == "Chief Technology Officer"
    assert c.organisation == "Acme Corp, Inc."
    assert idents(c) == {
        ("phone", "+14155550132"),
        ("phone", "+442079460958"),
        ("email", "jane@acme.com"),
        ("website", "https://www.acme.com"),
        ("x", "janedoe"),
    }
    labels = {i.value: i.label for i in c.identities}
    assert labels["+14155550132"] == "mobile"
    assert c.skipped == ["Best regards,"]


def test_signature_with_title_and_company_on_one_line():
    c = parse_signature("Omar Haddad\nHead of Sales, Globex Ltd\nomar@globex.example")
    assert (c.title, c.organisation) == ("Head of Sales", "Globex Ltd")


def test_unrecognised_fragments_are_reported_not_dropped():
    c = parse_line("Jane Doe, CTO, Acme Corp, likes sailing, jane@acme.com")
    assert c.not_understood == ["likes sailing"]


def test_invalid_email_and_phone_give_clear_errors():
    c = parse_line("Jane Doe, jane@, +12")
    assert any("jane@" in e and "not a valid email" in e for e in c.errors)
    assert any("+12" in e and "phone" in e for e in c.errors)


def test_too_long_input_is_a_clear_error():
    result = parse_text("x" * 10_000)
    assert not result.contacts
    assert "10,000 characters" in result.errors[0]


def test_names_with_emoji_rtl_and_markup_are_kept_as_text():
    for name in ["🦄 Zoë Ångström", "محمد الأحمد", "דוד כהן", "<script>alert(1)</script> Smith"]:
        c = parse_line(f"{name}, ceo@evil.example")
        assert c.full_name == name
        assert idents(c) == {("email", "ceo@evil.example")}


def test_pasted_vcard_is_parsed_like_a_line():
    result = parse_text(
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Jane Doe\r\nORG:Acme\r\nEMAIL:jane@acme.com\r\nEND:VCARD\r\n"
    )
    assert result.kind == "vcard"
    c = result.contacts[0]
    assert (c.full_name, c.organisation) == ("Jane Doe", "Acme")


# --- planning and saving -------------------------------------------------------------------------


def test_existing_person_is_found_by_email_and_not_duplicated(alice):
    jane = actions.person_create(
        actor=alice, first_name="Jane", last_name="Doe", identities=[("email", "jane@acme.com")]
    )
    plans = plan_capture(alice, parse_text(LINE_1))
    assert plans[0].action == "update" and plans[0].person == jane
    assert [i.value for i in plans[0].new_identities] == ["janedoe"]
    outcomes = capture_save(actor=alice, text=LINE_1)
    assert outcomes[0].person.pk == jane.pk and not outcomes[0].created
    assert Person.objects.count() == 1
    assert set(jane.identities.values_list("kind", "value")) == {("email", "jane@acme.com"), ("x", "janedoe")}
    jane.refresh_from_db()
    assert jane.title == "CTO"  # blank fields are filled, nothing overwritten


def test_existing_organisation_is_linked_by_email_domain_otherwise_created(alice):
    acme = actions.organisation_create(actor=alice, name="Acme Industries", domains=["acme.com"])
    plan = plan_capture(alice, parse_text("Jane Doe <jane@acme.com>"))[0]
    assert plan.organisation == acme and plan.organisation_action == "link"
    plan = plan_capture(alice, parse_text("Bob Roe, CFO, Initech, bob@initech.example"))[0]
    assert plan.organisation is None and plan.organisation_action == "create"
    capture_save(actor=alice, text="Bob Roe, CFO, Initech, bob@initech.example")
    initech = Organisation.objects.get(name="Initech")
    assert list(initech.domains.values_list("domain", flat=True)) == ["initech.example"]
    assert Person.objects.get(last_name="Roe").organisation == initech


def test_organisation_matched_by_name_ignoring_legal_suffix(alice):
    acme = actions.organisation_create(actor=alice, name="Acme Corp")
    plan = plan_capture(alice, parse_text("Jane Doe, CTO, Acme, Inc."))[0]
    assert plan.organisation == acme


def test_person_bob_cannot_see_is_not_revealed_or_linked(alice, bob):
    actions.person_create(
        actor=alice, first_name="Secret", identities=[("email", "s@hidden.example")], visibility="private"
    )
    plan = plan_capture(bob, parse_text("Sam Secret <s@hidden.example>"))[0]
    assert plan.action == "create" and plan.person is None


def test_save_with_errors_writes_nothing(alice):
    with pytest.raises(ActionError):
        capture_save(actor=alice, text="Jane Doe, jane@")
    assert Person.objects.count() == 0


def test_not_understood_text_is_kept_in_notes(alice):
    person = capture_save(actor=alice, text="Jane Doe, CTO, Acme Corp, likes sailing")[0].person
    assert "likes sailing" in person.bio


# --- web screen ----------------------------------------------------------------------------------


def test_preview_shows_plan_and_saves_nothing(alice_client):
    response = alice_client.post(reverse("quick-add"), {"text": LINE_2, "step": "preview"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Will create Jane Doe" in body and "@jane@mastodon.social" in body
    assert Person.objects.count() == 0


def test_confirm_saves_through_actions_and_redirects_to_person(alice_client):
    response = alice_client.post(reverse("quick-add"), {"text": LINE_2, "step": "save"})
    person = Person.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/people/{person.pk}/"
    assert person.source == "quick_add" and person.organisation.name == "Acme Corp"
    assert Identity.objects.filter(person=person).count() == 5
    assert AuditEntry.objects.filter(model="people.person", object_id=person.pk, action="create").exists()


def test_preview_of_existing_person_says_will_add_to(alice, alice_client):
    actions.person_create(
        actor=alice, first_name="Jane", last_name="Doe", identities=[("email", "jane@acme.com")]
    )
    body = alice_client.post(reverse("quick-add"), {"text": LINE_1, "step": "preview"}).content.decode()
    assert "Will add to" in body and "Jane Doe" in body


def test_hostile_name_is_rendered_escaped(alice_client):
    text = '<script>alert("x")</script> <img src=x onerror=alert(1)>, evil@evil.example'
    body = alice_client.post(reverse("quick-add"), {"text": text, "step": "preview"}).content.decode()
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_ten_thousand_characters_is_an_error_not_a_500(alice_client):
    response = alice_client.post(reverse("quick-add"), {"text": "a, " * 3400, "step": "save"})
    assert response.status_code == 200
    assert "at most 5,000" in response.content.decode()
    assert Person.objects.count() == 0


def test_read_only_user_can_preview_but_not_save(reader):
    from conftest import login

    client = login(reader)
    assert client.post(reverse("quick-add"), {"text": LINE_1, "step": "preview"}).status_code == 200
    assert client.post(reverse("quick-add"), {"text": LINE_1, "step": "save"}).status_code == 403
    assert Person.objects.count() == 0


def test_capture_pages_render_for_a_signed_in_user(alice_client, client):
    for url in ["/quick-add/", "/quick-add/vcard/", "/duplicates/"]:
        response = alice_client.get(url)
        assert response.status_code == 200, url
        assert b"<script>" not in response.content
    assert client.get("/quick-add/").status_code == 302  # anonymous → login


def test_pasting_a_signature_in_the_box_previews_one_person(alice_client):
    body = alice_client.post(reverse("quick-add"), {"text": SIGNATURE, "step": "preview"}).content.decode()
    assert "Will create Jane Doe" in body and "Skipped" in body and "Best regards," in body
