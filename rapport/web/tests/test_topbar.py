"""The top bar built in Python (web.templatetags.topbar) is web/_topbar.html's markup, byte for
byte, for every role, current section and search text, with values escaped as the template
escapes them; logged-out pages have none."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.middleware.csrf import get_token
from django.template import engines
from django.template.loader import render_to_string
from django.test import RequestFactory

from conftest import login
from rapport.accounts.models import Role, User

pytestmark = pytest.mark.django_db

NAVS = [None, "", "inbox", "people", "orgs", "deals", "pipeline", "forecast", "activities", "listening",
        "imports", "other"]  # fmt: skip
SEARCHES = [None, "", "acme", '<b>"Ann" & Bo\'s</b>', 0]
_TAG = engines["django"].from_string("{% load topbar %}{% topbar %}")


def _token(html: str) -> str:
    # A token is masked afresh on each render: the same secret, different characters.
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    get_token(request)
    return request


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER, Role.SALES, Role.READ_ONLY])
def test_the_bar_is_the_reference_markup(db, role):
    user = User.objects.create_user(
        username=f"u-{role}", password="x", role=role, first_name='Zoë <"Z">', last_name="&Co"
    )
    superuser = User.objects.create_user(username="root", password="x", role=Role.SALES, is_superuser=True)
    plain = User.objects.create_user(username="<plain>", password="x", role=role)
    for who in (user, superuser, plain):
        request = _request(who)
        for nav in NAVS:
            for search in SEARCHES:
                context = {"nav": nav, "search_q": search}
                expected = render_to_string("web/_topbar.html", context, request)
                built = _TAG.render(context, request)
                assert _token(built) == _token(expected), (who.username, nav, search)
                assert "CSRF" in _token(built)


def test_no_bar_for_someone_logged_out(db):
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert _TAG.render({"nav": "inbox"}, request) == ""
    assert 'class="topbar"' not in login_page()


def login_page() -> str:
    from django.test import Client

    return Client().get("/login/").content.decode()


def test_pages_show_the_bar_with_their_section(alice):
    page = login(alice).get("/inbox/").content.decode()
    assert '<header class="topbar">' in page
    assert '<a href="/inbox/" aria-current="page">Inbox</a>' in page
    assert '<a href="/people/" >People</a>' in page
    assert 'name="csrfmiddlewaretoken"' in page.split('<header class="topbar">')[1].split("</header>")[0]
    search = login(alice).get("/search/?q=%3Cx%3E").content.decode()
    assert 'value="&lt;x&gt;" data-live-search="/search/"' in search


@pytest.mark.parametrize("path", ["rapport/app.css", "conversations/inbox.js", "a b/ü&x.css"])
def test_asset_is_the_static_tag(db, path, settings):
    engine = engines["django"]
    both = engine.from_string("{% load static topbar %}{% static p %}|{% asset p %}")
    static, asset = both.render({"p": path}).split("|")
    assert asset == static
    settings.STATIC_URL = "/elsewhere/"  # a changed setting is not served from the cache
    static, asset = both.render({"p": path}).split("|")
    assert asset == static and "/elsewhere/" in asset
