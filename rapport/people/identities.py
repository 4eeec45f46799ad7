"""Normalising identities so the same email, phone or handle always looks the same.

Raises IdentityError with a message a person can act on; callers turn it into a form or
API field error."""

import re
from urllib.parse import urlsplit

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from rapport.people.models import IdentityKind


class IdentityError(ValueError):
    pass


_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_MASTODON = re.compile(r"^@?([A-Za-z0-9_]{1,30})@([A-Za-z0-9.-]+\.[A-Za-z]{2,})$")
_BLUESKY = re.compile(r"^@?([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$")
_GENERIC_HANDLE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def normalise_email(raw: str) -> str:
    value = raw.strip().strip("<>").strip()
    if len(value) > 254:
        raise IdentityError("An email address is at most 254 characters.")
    try:
        validate_email(value)
    except ValidationError:
        raise IdentityError(f"“{value[:80]}” is not a valid email address.")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}".lower()


def normalise_phone(raw: str, region: str | None = None) -> str:
    region = region or getattr(settings, "RAPPORT_DEFAULT_REGION", None) or None
    value = raw.strip()
    if len(value) > 40:
        raise IdentityError("A phone number is at most 40 characters.")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise IdentityError(
            f"“{value[:40]}” is not a phone number (use the international form, e.g. +44 20 7946 0958)."
        )
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise IdentityError(f"“{value[:40]}” is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _strip_profile_url(value: str, hosts: tuple[str, ...]) -> str:
    if "://" in value or value.startswith(hosts):
        parts = urlsplit(value if "://" in value else "https://" + value)
        host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("mobile.")
        if host in hosts:
            path = [p for p in parts.path.split("/") if p]
            if path:
                return path[-1] if path[0] in {"in", "company", "profile"} and len(path) > 1 else path[0]
    return value


def normalise_handle(kind: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise IdentityError("The handle is empty.")
    if kind == IdentityKind.X:
        value = _strip_profile_url(value, ("x.com", "twitter.com")).lstrip("@")
        if not _HANDLE.match(value):
            raise IdentityError(f"“{value[:40]}” is not an X handle (letters, digits, _; at most 15).")
        return value.lower()
    if kind == IdentityKind.MASTODON:
        if "://" in value:  # https://mastodon.social/@jane → @jane@mastodon.social
            parts = urlsplit(value)
            user = parts.path.strip("/").lstrip("@")
            value = f"{user}@{parts.hostname}"
        m = _MASTODON.match(value)
        if not m:
            raise IdentityError(f"“{value[:60]}” is not a Mastodon address (like @jane@mastodon.social).")
        return f"@{m.group(1).lower()}@{m.group(2).lower()}"
    if kind == IdentityKind.BLUESKY:
        value = _strip_profile_url(value, ("bsky.app",))
        if value.startswith("did:"):
            return value
        m = _BLUESKY.match(value)
        if not m:
            raise IdentityError(f"“{value[:60]}” is not a Bluesky handle (like jane.bsky.social).")
        return m.group(1).lower()
    if kind in (IdentityKind.LINKEDIN, IdentityKind.FACEBOOK, IdentityKind.INSTAGRAM):
        # `kind` arrives as a plain str; IdentityKind members hash and compare as their values.
        by_kind: dict[str, tuple[str, ...]] = {
            IdentityKind.LINKEDIN: ("linkedin.com",),
            IdentityKind.FACEBOOK: ("facebook.com", "fb.com"),
            IdentityKind.INSTAGRAM: ("instagram.com",),
        }
        hosts = by_kind[kind]
        value = _strip_profile_url(value, hosts).lstrip("@")
        if not _GENERIC_HANDLE.match(value):
            raise IdentityError(f"“{value[:60]}” is not a valid {kind} handle or profile URL.")
        return value.lower()
    raise IdentityError(f"Unknown identity kind {kind!r}.")


def normalise_website(raw: str) -> str:
    value = raw.strip()
    if len(value) > 300:
        raise IdentityError("A website address is at most 300 characters.")
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or "." not in parts.hostname:
        raise IdentityError(f"“{raw[:80]}” is not a website address.")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.hostname.lower()}{path}"


def normalise(kind: str, raw: str) -> str:
    if kind == IdentityKind.EMAIL:
        return normalise_email(raw)
    if kind in (IdentityKind.PHONE, IdentityKind.WHATSAPP):
        return normalise_phone(raw)
    if kind == IdentityKind.WEBSITE:
        return normalise_website(raw)
    if kind in IdentityKind.values:
        return normalise_handle(kind, raw)
    raise IdentityError(f"Unknown identity kind {kind!r}.")


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


FREE_MAIL_DOMAINS = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "yandex.ru",
        "fastmail.com",
        "hey.com",
        "zoho.com",
    ]
)
