"""Settings screens: a mangled id in a token-revoke or user-toggle form is a 404 that changes
nothing, never a 500 from the database layer."""

import pytest

from conftest import login
from rapport.accounts import actions
from rapport.accounts.models import ApiToken, User

MANGLED = ["abc", "", " ", "1.5", "-1", "0", "99999999999999999999999", "1\x00"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", MANGLED)
def test_revoking_a_token_with_a_mangled_id_is_404_and_keeps_the_token(alice, alice_client, value):
    token, _ = actions.token_create(user=alice, name="ci")

    response = alice_client.post("/settings/tokens/", {"revoke": value})

    assert response.status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


@pytest.mark.django_db
def test_revoking_someone_elses_token_is_404_and_keeps_it(alice_client, bob):
    token, _ = actions.token_create(user=bob, name="bob's")

    response = alice_client.post("/settings/tokens/", {"revoke": str(token.pk)})

    assert response.status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


@pytest.mark.django_db
def test_revoking_your_own_token_by_id_works(alice, alice_client):
    token, _ = actions.token_create(user=alice, name="ci")

    response = alice_client.post("/settings/tokens/", {"revoke": str(token.pk)})

    assert response.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("value", MANGLED)
def test_toggling_a_user_with_a_mangled_id_is_404_and_changes_nobody(admin, alice, value):
    active_before = dict(User.objects.values_list("pk", "is_active"))

    response = login(admin).post("/settings/users/", {"action": "toggle", "user": value})

    assert response.status_code == 404
    assert dict(User.objects.values_list("pk", "is_active")) == active_before


@pytest.mark.django_db
def test_toggling_an_unknown_user_is_404(admin):
    response = login(admin).post("/settings/users/", {"action": "toggle", "user": "987654"})

    assert response.status_code == 404


@pytest.mark.django_db
def test_admin_toggles_a_user_by_id(admin, alice):
    response = login(admin).post("/settings/users/", {"action": "toggle", "user": str(alice.pk)})

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.is_active is False


@pytest.mark.django_db
def test_users_screen_is_404_for_a_non_admin_and_toggles_nobody(alice_client, bob):
    response = alice_client.post("/settings/users/", {"action": "toggle", "user": str(bob.pk)})

    assert response.status_code == 404
    bob.refresh_from_db()
    assert bob.is_active is True


@pytest.mark.django_db
def test_creating_a_user_with_a_mangled_team_id_is_a_clear_error_not_a_500(admin):
    response = login(admin).post(
        "/settings/users/",
        {"username": "zed", "password": "a-long-password-123", "role": "sales", "teams": "abc"},
    )

    assert response.status_code in (200, 400, 404)
    assert not User.objects.filter(username="zed").exists()
