"""The top bar every page shows (web/_topbar.html's markup), built in Python.

Why: rendered by the template, base.html cost ~0.6 ms of CPU a page (a dozen {% if %}
nodes, two reverse() calls, the variables' lookups), a fifth of an inbox list page's CPU on
PostgreSQL. The markup is the reference template's, byte for byte (tests compare them for
every role and nav), with every value escaped as the template escaped it."""

import functools

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.template.base import render_value_in_context
from django.template.context import Context
from django.template.defaulttags import CsrfTokenNode
from django.templatetags.static import static
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_NAV = [
    ("/inbox/", "inbox", "Inbox"),
    ("/people/", "people", "People"),
    ("/organisations/", "orgs", "Organisations"),
    ("/deals/", "deals", "Deals"),
    ("/pipeline/", "pipeline", "Pipeline"),
    ("/forecast/", "forecast", "Forecast"),
    ("/activities/", "activities", "Activities"),
    ("/listening/", "listening", "Listening"),
    ("/imports/", "imports", "Import"),
]


@functools.lru_cache(maxsize=64)
def _url(name: str, prefix: str, urlconf: str | None) -> str:
    """{% url name %}: reverse() once per script prefix and URLconf (both vary per request
    only in unusual deployments, and are part of the key)."""
    return reverse(name, urlconf=urlconf)


_CURRENT = 'aria-current="page"'


def _nav(current: object) -> str:
    return "\n".join(
        f'    <a href="{path}" {_CURRENT if current == key else ""}>{label}</a>' for path, key, label in _NAV
    )


_CSRF = CsrfTokenNode()


@register.simple_tag
def asset(path: str) -> str:
    """{% static path %}, worked out once per process: the storage's URL of a file does not
    change while it runs (urljoin and the storage's checks were ~25 µs a tag, five a page).
    Escaped by the template as {% static %} is."""
    return _asset(path, settings.STATIC_URL)


@functools.lru_cache(maxsize=256)
def _asset(path: str, static_url: str | None) -> str:
    return static(path)


def _settings_changed(**kwargs: object) -> None:
    if kwargs.get("setting") in ("STATIC_URL", "STORAGES", "STATIC_ROOT", "INSTALLED_APPS"):
        _asset.cache_clear()


setting_changed.connect(_settings_changed, dispatch_uid="rapport.web.templatetags.topbar.asset")


@register.simple_tag(takes_context=True)
def topbar(context: Context) -> SafeString:
    """The top bar for a logged-in user, nothing otherwise (base.html's former
    `{% if user.is_authenticated %}…{% endif %}`)."""
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return mark_safe("")
    prefix, urlconf = get_script_prefix(), get_urlconf()
    admin = user.is_admin
    return mark_safe(  # noqa: S308 - every value is escaped by render_value_in_context
        '\n<header class="topbar">\n'
        f'  <a class="brand" href="{_url("home", prefix, urlconf)}" aria-label="Rapport home">Rapport</a>\n'
        '  <nav class="mainnav" aria-label="Main">\n'
        f"{_nav(context.get('nav'))}\n"
        "  </nav>\n"
        '  <form class="globalsearch" action="/search/" method="get" role="search">\n'
        '    <label for="global-q" class="visually-hidden">Search people, organisations, deals and activities</label>\n'
        '    <input id="global-q" name="q" type="search" placeholder="Search…  ( / )" autocomplete="off"\n'
        f'           value="{render_value_in_context(context.get("search_q") or "", context)}" '
        'data-live-search="/search/" aria-controls="global-results" aria-expanded="false">\n'
        '    <div id="global-results" class="live-results" role="listbox" hidden></div>\n'
        "  </form>\n"
        '  <a class="btn btn-primary" href="/quick-add/" accesskey="n" title="Quick add (n)">+ Quick add</a>\n'
        '  <details class="usermenu">\n'
        f"    <summary>{render_value_in_context(user, context)}</summary>\n"
        '    <div class="menu">\n'
        f'      <span class="muted">{render_value_in_context(user.get_role_display(), context)}</span>\n'
        '      <a href="/settings/tokens/">API tokens</a>\n'
        f"      {_USERS_LINK if admin else ''}\n"
        '      <a href="/duplicates/">Duplicates</a>\n'
        '      <a href="/products/">Products</a>\n'
        '      <a href="/pipeline/settings/">Pipelines</a>\n'
        f"      {_ADMIN_LINKS if admin else ''}\n"
        '      <a href="/inbox/canned/">Canned answers</a>\n'
        '      <a href="/api/v1/docs">API docs</a>\n'
        f'      <form method="post" action="{_url("logout", prefix, urlconf)}">{_CSRF.render(context)}'
        '<button type="submit" class="linklike">Log out</button></form>\n'
        "    </div>\n"
        "  </details>\n"
        "</header>\n"
    )


_USERS_LINK = '<a href="/settings/users/">Users &amp; teams</a>'
_ADMIN_LINKS = (
    '<a href="/settings/channels/">Channels</a><a href="/settings/routing/">Routing rules</a>'
    '<a href="/settings/sla/">SLA policies</a>'
)
