"""The people list's rows are built in Python (people/views.py:_person_row): every value is
escaped and a private organisation's name stays hidden from those who may not see it."""

import pytest

from rapport.people.actions import organisation_create, person_create

pytestmark = pytest.mark.django_db


def test_row_values_are_escaped(alice, alice_client):
    org = organisation_create(actor=alice, name='<b>Acme</b> & "Sons"')
    person_create(actor=alice, first_name="Ann", last_name="Lee", title="<i>CTO</i>", organisation=org)
    html = alice_client.get("/people/").content.decode()
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; &quot;Sons&quot;" in html
    assert "&lt;i&gt;CTO&lt;/i&gt;" in html and "<i>CTO</i>" not in html


def test_private_organisation_name_hidden_in_the_list(alice, bob_client):
    org = organisation_create(actor=alice, name="Secret Holdings", visibility="private")
    person_create(actor=alice, first_name="Pat", last_name="Open", organisation=org, visibility="everyone")
    html = bob_client.get("/people/").content.decode()
    assert "Pat Open" in html and "Secret Holdings" not in html


def test_empty_list_says_so(alice_client):
    assert "No people match." in alice_client.get("/people/?q=zzzzqqq").content.decode()


def test_tag_count_counts_only_visible_tagged_people(alice, bob, bob_client):
    from rapport.people.models import Tag

    tag = Tag.objects.create(name="customer")
    for i, vis in enumerate(["everyone", "everyone", "private"]):
        person_create(actor=alice, first_name=f"T{i}", visibility=vis).tags.add(tag)
    person_create(actor=alice, first_name="Untagged", visibility="everyone")
    page = bob_client.get("/people/?tag=customer").context["page"]
    assert (page.total, page.total_capped, len(page.items)) == (2, False, 2)


def test_text_filter_with_more_matches_than_candidates_shows_a_capped_count(alice, alice_client, monkeypatch):
    from rapport.people import selectors

    for i in range(7):
        person_create(actor=alice, first_name="Mara", last_name=f"Zed{i}")
    page = selectors.person_list(
        user=alice, filters=selectors.PersonFilters(q="mara"), limit=1
    )  # 4 candidates
    assert page.total_capped is True and page.total == 4
    page = selectors.person_list(user=alice, filters=selectors.PersonFilters(q="mara"), limit=50)
    assert page.total_capped is False and page.total == 7
