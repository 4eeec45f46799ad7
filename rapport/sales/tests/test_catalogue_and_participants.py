"""The product catalogue page and taking a person off a deal."""

import pytest

from conftest import login
from rapport.audit.models import AuditEntry
from rapport.people.actions import organisation_create, person_create
from rapport.sales.actions import deal_create, product_create
from rapport.sales.models import DealParticipant, Product

pytestmark = pytest.mark.django_db

HOSTILE = "<img src=x>"


def test_everyone_sees_the_catalogue_but_only_managers_get_controls(alice, carol, alice_client):
    product_create(actor=carol, name=HOSTILE, sku="P-1", price="12.50", is_subscription=True)
    html = alice_client.get("/products/").content.decode()
    assert "&lt;img src=x&gt;" in html and HOSTILE not in html
    assert "12.50 EUR" in html
    assert "Add product" not in html and "Deactivate" not in html
    manager_html = login(carol).get("/products/").content.decode()
    assert "Add product" in manager_html and "Deactivate" in manager_html


def test_manager_creates_deactivates_and_reactivates_a_product(carol):
    client = login(carol)
    response = client.post("/products/", {"name": "Seat", "sku": "S-1", "price": "10", "currency": "usd"})
    assert response.status_code == 302
    product = Product.objects.get(sku="S-1")
    assert (product.currency, product.active) == ("USD", True)
    client.post(f"/products/{product.pk}/active/", {"active": "0"})
    product.refresh_from_db()
    assert not product.active
    client.post(f"/products/{product.pk}/active/", {"active": "1"})
    product.refresh_from_db()
    assert product.active
    entries = AuditEntry.objects.filter(model="sales.product", object_id=product.pk)
    assert entries.count() == 3  # created, deactivated, reactivated


def test_product_form_errors_are_400_with_field_messages(carol):
    product_create(actor=carol, name="Seat", sku="S-1")
    client = login(carol)
    response = client.post("/products/", {"name": "Other", "sku": "S-1", "price": "-1", "currency": "E1"})
    assert response.status_code == 400
    assert Product.objects.count() == 1
    response = client.post("/products/", {"name": "Other", "sku": "S-1", "price": "1", "currency": "EUR"})
    assert response.status_code == 400
    assert "Already used" in response.content.decode()


def test_sales_and_readers_cannot_change_the_catalogue(alice, reader, carol, alice_client):
    product = product_create(actor=carol, name="Seat", sku="S-1")
    for client in (alice_client, login(reader)):
        assert (
            client.post("/products/", {"name": "X", "sku": "X", "price": "1", "currency": "EUR"}).status_code
            == 403
        )
        assert client.post(f"/products/{product.pk}/active/", {"active": "0"}).status_code == 403
    product.refresh_from_db()
    assert product.active and Product.objects.count() == 1


def test_catalogue_is_linked_from_pipeline_settings_and_order_form(alice, carol, alice_client):
    assert 'href="/products/"' in login(carol).get("/pipeline/settings/").content.decode()
    org = organisation_create(actor=alice, name="Acme")
    assert 'href="/products/"' in alice_client.get(f"/organisations/{org.pk}/").content.decode()
    product_create(actor=carol, name="Seat", sku="S-1")
    assert 'href="/products/"' in alice_client.get(f"/organisations/{org.pk}/").content.decode()


def test_participant_remove_button_removes_and_audits(alice, alice_client):
    person = person_create(actor=alice, first_name="Ann")
    deal = deal_create(actor=alice, name="Big", people=[(person, "champion")])
    html = alice_client.get(f"/deals/{deal.pk}/").content.decode()
    assert f"/deals/{deal.pk}/participants/{person.pk}/delete/" in html
    assert alice_client.post(f"/deals/{deal.pk}/participants/{person.pk}/delete/").status_code == 302
    assert not DealParticipant.objects.exists()
    assert AuditEntry.objects.filter(
        model="sales.deal", object_id=deal.pk, changes__participant=["Ann (champion)", None]
    ).exists()


def test_bob_and_reader_cannot_remove_participants(alice, reader, bob_client):
    person = person_create(actor=alice, first_name="Ann")
    private = deal_create(actor=alice, name="Mine", visibility="private", people=[(person, "")])
    shared = deal_create(actor=alice, name="Shared", people=[(person, "")])
    assert bob_client.post(f"/deals/{private.pk}/participants/{person.pk}/delete/").status_code == 404
    assert bob_client.post(f"/deals/{shared.pk}/participants/{person.pk}/delete/").status_code == 403
    assert login(reader).post(f"/deals/{shared.pk}/participants/{person.pk}/delete/").status_code == 403
    assert DealParticipant.objects.count() == 2


def test_hidden_participant_cannot_be_removed_by_id(alice, bob, bob_client):
    hidden = person_create(actor=alice, first_name="Secret", visibility="private")
    deal = deal_create(actor=bob, name="Bobs", people=[(hidden, "")])
    assert bob_client.post(f"/deals/{deal.pk}/participants/{hidden.pk}/delete/").status_code == 404
    assert DealParticipant.objects.count() == 1
