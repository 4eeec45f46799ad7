import pytest

from rapport.people.actions import person_create
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_hostile_name_renders_as_text_and_runs_no_script(page, live_server, alice):
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    person_create(
        actor=alice, first_name=hostile, last_name="Évil 😈", identities=[("email", "evil@example.com")]
    )
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/search/?q=evil%40example")
    assert hostile in page.inner_text("main")  # shown literally…
    assert page.locator("main img").count() == 0  # …and never parsed as HTML


def test_every_page_sends_a_strict_csp(page, live_server, alice):
    response = page.goto(f"{live_server.url}/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
