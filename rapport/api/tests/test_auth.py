from django.utils import timezone

from rapport.accounts.models import ApiToken
from rapport.api.tests.conftest import Api


def test_valid_token_answers_me_with_role_and_teams(alice_api, alice):
    r = alice_api.get("/me")
    assert r.status_code == 200
    body = r.json()
    assert body["user"]["username"] == "alice"
    assert body["role"] == "sales"
    assert [t["name"] for t in body["teams"]] == ["North"]
    assert body["can_write"] is True


def test_missing_token_is_401_json(db):
    r = Api(None).get("/people")
    assert r.status_code == 401
    assert r["Content-Type"].startswith("application/json")
    assert "detail" in r.json()


def test_unknown_token_is_401(db):
    assert Api(None, raw_token="rp_not-a-real-token").get("/people").status_code == 401


def test_revoked_token_is_401(alice):
    token, raw = ApiToken.issue(user=alice)
    api = Api(alice, raw_token=raw)
    assert api.get("/me").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert api.get("/me").status_code == 401


def test_token_of_deactivated_user_is_401(alice):
    api = Api(alice)
    alice.is_active = False
    alice.save()
    assert api.get("/me").status_code == 401


def test_session_login_works_for_the_web_ui(alice_client):
    r = alice_client.get("/api/v1/me")
    assert r.status_code == 200
    assert r.json()["user"]["username"] == "alice"


def test_session_write_without_csrf_token_is_refused(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    r = client.post("/api/v1/people", '{"first_name": "X"}', content_type="application/json")
    assert r.status_code in (401, 403)
    from rapport.people.models import Person

    assert not Person.objects.exists()


def test_openapi_schema_loads_and_lists_the_paths(db):
    from django.test import Client

    r = Client().get("/api/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in [
        "/api/v1/people",
        "/api/v1/people/{person_id}",
        "/api/v1/people/{person_id}/identities",
        "/api/v1/people/{person_id}/relationships",
        "/api/v1/organisations",
        "/api/v1/organisations/{org_id}/orders",
        "/api/v1/deals",
        "/api/v1/deals/{deal_id}/move",
        "/api/v1/deals/{deal_id}/participants",
        "/api/v1/pipelines",
        "/api/v1/products",
        "/api/v1/activities",
        "/api/v1/activities/{activity_id}/complete",
        "/api/v1/search",
        "/api/v1/me",
    ]:
        assert path in paths, path
    assert "patch" in paths["/api/v1/deals/{deal_id}"]


def test_docs_page_is_served(alice_client):
    assert alice_client.get("/api/v1/docs").status_code == 200
