"""One click corrects a customer message's sentiment and teaches the learned backend."""

import pytest

from rapport.audit.models import AuditEntry
from rapport.channels.base import Author, CanonicalMessage
from rapport.channels.testing import webhook_channel
from rapport.conversations.ingest import ingest
from rapport.intelligence.models import Correction


@pytest.fixture
def message(north):
    result = ingest(
        webhook_channel(north),
        CanonicalMessage(
            "webhook", "m1", Author("email", "jane@example.org"), text="Well, that was something."
        ),
    )
    return result.message


def test_agent_corrects_a_message_in_the_inbox(message, alice_client):
    conv = message.conversation
    r = alice_client.post(f"/inbox/{conv.pk}/messages/{message.pk}/sentiment/", {"label": "negative"})
    assert r.status_code == 302
    message.refresh_from_db()
    assert message.sentiment == "negative"
    assert Correction.objects.get().label == "negative"
    assert AuditEntry.objects.filter(model="conversations.conversation", object_id=conv.pk).exists()
    page = alice_client.get(f"/inbox/{conv.pk}/").content.decode()
    assert "Correct sentiment" in page


def test_api_correction_and_bad_label(message, alice_client):
    conv = message.conversation
    url = f"/api/v1/conversations/{conv.pk}/messages/{message.pk}/sentiment"
    assert alice_client.post(url, {"label": "furious"}, content_type="application/json").status_code == 422
    r = alice_client.post(url, {"label": "positive"}, content_type="application/json")
    assert r.status_code == 200 and r.json()["sentiment"] == "positive"


def test_outsiders_and_read_only_users_change_nothing(message, bob_client, reader):
    from conftest import login

    conv = message.conversation
    before = message.sentiment
    assert (
        bob_client.post(
            f"/inbox/{conv.pk}/messages/{message.pk}/sentiment/", {"label": "negative"}
        ).status_code
        == 404
    )
    login(reader).post(f"/inbox/{conv.pk}/messages/{message.pk}/sentiment/", {"label": "negative"})
    message.refresh_from_db()
    assert message.sentiment == before and not Correction.objects.exists()
