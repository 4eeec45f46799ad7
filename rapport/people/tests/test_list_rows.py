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
