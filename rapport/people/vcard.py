"""vCard 3.0/4.0 (and the common 2.1 quoted-printable case) in and out, per RFC 6350.

A small strict reader: unfolds continuation lines, splits `group.NAME;PARAM=…:value`,
unescapes `\\n \\, \\; \\\\`, and maps the properties a CRM keeps (N, FN, ORG, TITLE,
EMAIL, TEL, URL, ADR, NOTE, CATEGORIES, X-SOCIALPROFILE, IMPP) onto a `ParsedContact`.
Anything else is listed back as not understood or skipped; malformed cards carry their own
errors so one broken card does not sink a whole address book. Sizes are capped before any
work is done, since the input comes from an upload."""

from __future__ import annotations

import quopri
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapport.people.models import IdentityKind, Person
from rapport.people.quickadd import (
    ParsedAddress,
    ParsedContact,
    ParseResult,
    _add_url,
    split_name,
)

MAX_VCARD_BYTES = 4 * 1024 * 1024
MAX_CARDS = 5000
MAX_LINES_PER_CARD = 1000
MAX_LINE_CHARS = 100_000  # a base64 PHOTO can be long; anything longer is not a contact

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class VCardError(ValueError):
    pass


@dataclass
class Property:
    name: str
    params: dict[str, list[str]]
    value: str
    line_no: int
    group: str = ""

    @property
    def types(self) -> list[str]:
        return [t.lower() for t in self.params.get("TYPE", [])]


@dataclass
class Card:
    line_no: int
    props: list[Property] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# --- escaping --------------------------------------------------------------------------------


def escape(value: str) -> str:
    """Escape a text value (RFC 6350 §3.4)."""
    return (
        value.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace(";", "\\;")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def split_unescaped(value: str, sep: str) -> list[str]:
    """Split on `sep` where it is not escaped with a backslash; parts stay escaped."""
    parts, current, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _clean(value: str) -> str:
    return _CONTROL.sub("", value).strip()


# --- reading ---------------------------------------------------------------------------------


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Unfold: a line starting with a space or tab continues the previous one. A
    quoted-printable value ending in `=` (vCard 2.1 soft break) continues too."""
    current: str | None = None
    start = 0
    soft_break = False
    for no, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if current is not None and (line[:1] in (" ", "\t")):
            current += line[1:]
            continue
        if current is not None and soft_break:
            current = current[:-1] + line
            soft_break = current.endswith("=")
            continue
        if current is not None:
            yield start, current
        current, start = line, no
        head = line.split(":", 1)[0].upper()
        soft_break = "QUOTED-PRINTABLE" in head and line.endswith("=")
    if current is not None:
        yield start, current


def _split_params(head: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in head:
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def parse_property(line: str, line_no: int) -> Property:
    quoted, colon = False, -1
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            colon = i
            break
    if colon <= 0:
        raise VCardError(f"line {line_no}: expected NAME:value")
    head, value = line[:colon], line[colon + 1 :]
    pieces = _split_params(head)
    name = pieces[0].strip()
    group = ""
    if "." in name:
        group, name = name.rsplit(".", 1)
    if not re.match(r"^[A-Za-z0-9-]{1,64}$", name):
        raise VCardError(f"line {line_no}: “{name[:40]}” is not a property name")
    params: dict[str, list[str]] = {}
    for piece in pieces[1:]:
        if not piece:
            continue
        key, eq, val = piece.partition("=")
        if not eq:  # vCard 2.1: TEL;CELL;WORK:…
            key, val = "TYPE", key
        values = [v.strip().strip('"') for v in split_unescaped(val, ",")]
        params.setdefault(key.strip().upper(), []).extend(v for v in values if v)
    encoding = [e.upper() for e in params.get("ENCODING", [])]
    if "QUOTED-PRINTABLE" in encoding:
        charset = (params.get("CHARSET") or ["utf-8"])[0]
        try:
            value = quopri.decodestring(value.encode("latin-1", "replace")).decode(charset, "replace")
        except LookupError:
            value = quopri.decodestring(value.encode("latin-1", "replace")).decode("utf-8", "replace")
    return Property(name=name.upper(), params=params, value=value, line_no=line_no, group=group)


def read_cards(text: str) -> tuple[list[Card], list[str]]:
    """Split `text` into cards of properties. Returns (cards, errors about the whole file)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_VCARD_BYTES:
        return [], [
            f"The file is larger than {MAX_VCARD_BYTES // (1024 * 1024)} MB; split it into smaller files."
        ]
    cards: list[Card] = []
    errors: list[str] = []
    card: Card | None = None
    for line_no, line in _logical_lines(text):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            if card is not None:
                card.errors.append(f"line {line_no}: too long ({len(line):,} characters), skipped")
            continue
        upper = line.strip().upper()
        if upper == "BEGIN:VCARD":
            if card is not None:
                card.errors.append(f"line {line_no}: BEGIN:VCARD inside a card (missing END:VCARD)")
                cards.append(card)
            if len(cards) >= MAX_CARDS:
                errors.append(f"More than {MAX_CARDS:,} cards; only the first {MAX_CARDS:,} were read.")
                card = None
                break
            card = Card(line_no=line_no)
            continue
        if upper == "END:VCARD":
            if card is None:
                errors.append(f"line {line_no}: END:VCARD without BEGIN:VCARD")
            else:
                cards.append(card)
                card = None
            continue
        if card is None:
            errors.append(f"line {line_no}: text outside a card: “{line[:60]}”")
            if len(errors) > 50:
                errors.append("Too many lines outside cards; is this a vCard file?")
                break
            continue
        if len(card.props) >= MAX_LINES_PER_CARD:
            if len(card.props) == MAX_LINES_PER_CARD:
                card.errors.append(f"More than {MAX_LINES_PER_CARD} lines in one card; the rest was skipped.")
                card.props.append(Property("X-RAPPORT-OVERFLOW", {}, "", line_no))
            continue
        try:
            card.props.append(parse_property(line, line_no))
        except VCardError as exc:
            card.errors.append(str(exc))
    if card is not None:
        card.errors.append("the card has no END:VCARD")
        cards.append(card)
    return cards, errors


_SILENT = {
    "VERSION", "PRODID", "REV", "UID", "KIND", "CLIENTPIDMAP", "SOURCE", "NAME", "PROFILE",
    "SORT-STRING", "X-ABLABEL", "X-ABUID", "X-ABSHOWAS", "X-RAPPORT-OVERFLOW", "LABEL", "MAILER",
    "X-ABADR", "TZ", "GEO", "LANG", "X-PHONETIC-FIRST-NAME", "X-PHONETIC-LAST-NAME",
}  # fmt: skip
_BINARY = {"PHOTO", "LOGO", "SOUND", "KEY"}
_SOCIAL_TYPES = {
    "twitter": IdentityKind.X,
    "x": IdentityKind.X,
    "mastodon": IdentityKind.MASTODON,
    "bluesky": IdentityKind.BLUESKY,
    "bsky": IdentityKind.BLUESKY,
    "linkedin": IdentityKind.LINKEDIN,
    "facebook": IdentityKind.FACEBOOK,
    "instagram": IdentityKind.INSTAGRAM,
    "whatsapp": IdentityKind.WHATSAPP,
}
_TYPE_LABELS = ("work", "home", "cell", "mobile", "fax", "main", "other", "pager")


def _label(prop: Property) -> str:
    for t in prop.types:
        if t in _TYPE_LABELS:
            return "mobile" if t == "cell" else t
    return ""


def _social(contact: ParsedContact, prop: Property, value: str) -> None:
    kind = next((_SOCIAL_TYPES[t] for t in prop.types if t in _SOCIAL_TYPES), None)
    user = (prop.params.get("X-USER") or [""])[0]
    if value.lower().startswith("x-apple:"):
        value = value[len("x-apple:") :]
    if kind is None:
        if "://" in value or "/" in value:
            _add_url(contact, value)
        else:
            contact.not_understood.append(f"social profile {', '.join(prop.types) or '?'}: {value}")
        return
    if kind == IdentityKind.WHATSAPP and ("wa.me" in value or "://" in value):
        _add_url(contact, value)
        return
    if kind == IdentityKind.X and "://" in value and user:
        value = user
    contact.add_identity(kind, value)


def _impp(contact: ParsedContact, prop: Property, value: str) -> None:
    service = " ".join(prop.params.get("X-SERVICE-TYPE", [])).lower()
    scheme, _, rest = value.partition(":")
    scheme = scheme.lower()
    if scheme == "whatsapp" or "whatsapp" in service:
        contact.add_identity(IdentityKind.WHATSAPP, rest if scheme else value)
    elif scheme in ("tel", "sms"):
        contact.add_identity(IdentityKind.PHONE, rest)
    elif scheme == "mailto":
        contact.add_identity(IdentityKind.EMAIL, rest)
    elif scheme in ("http", "https"):
        _add_url(contact, value)
    else:
        contact.not_understood.append(f"IMPP {value}")


def card_to_contact(card: Card, label: str) -> ParsedContact:
    contact = ParsedContact(label=label)
    contact.errors.extend(card.errors)
    fn = ""
    notes: list[str] = []
    for prop in card.props:
        name, raw = prop.name, prop.value
        if name in _SILENT or name.startswith("X-ABRELATEDNAMES"):
            continue
        if name in _BINARY:
            contact.skipped.append(f"{name} (images and keys are not imported)")
            continue
        if name == "N":
            # components are ;-separated, and each may hold several ,-separated values
            parts = [
                " ".join(v for v in (_clean(unescape(x)) for x in split_unescaped(p, ",")) if v)
                for p in split_unescaped(raw, ";")
            ] + [""] * 5
            family, given, additional = parts[0], parts[1], parts[2]
            if given or family:
                contact.first_name = " ".join(p for p in [given, additional] if p)
                contact.last_name = family
            continue
        if name == "ORG":
            units = [_clean(unescape(p)) for p in split_unescaped(raw, ";")]
            units = [u for u in units if u]
            if units:
                contact.organisation = units[0]
                for unit in units[1:]:
                    contact.not_understood.append(f"department {unit}")
            continue
        value = _clean(unescape(raw))
        if not value:
            continue
        if name == "FN":
            fn = value
        elif name == "TITLE":
            contact.title = contact.title or value
        elif name == "ROLE":
            if not contact.title:
                contact.title = value
            else:
                contact.not_understood.append(f"role {value}")
        elif name == "EMAIL":
            contact.add_identity(IdentityKind.EMAIL, value.removeprefix("mailto:"), _label(prop))
        elif name == "TEL":
            number = value[4:] if value.lower().startswith("tel:") else value
            kind = IdentityKind.WHATSAPP if "x-whatsapp" in prop.types else IdentityKind.PHONE
            contact.add_identity(kind, number, _label(prop))
        elif name == "URL":
            _add_url(contact, value)
        elif name in ("X-SOCIALPROFILE", "X-SOCIAL-PROFILE"):
            _social(contact, prop, value)
        elif name in ("X-TWITTER", "X-MASTODON", "X-BLUESKY", "X-LINKEDIN", "X-FACEBOOK", "X-INSTAGRAM"):
            _social(contact, Property(name, {"TYPE": [name[2:].lower()]}, "", prop.line_no), value)
        elif name == "IMPP":
            _impp(contact, prop, value)
        elif name == "ADR":
            parts = [_clean(unescape(p)).replace("\n", ", ") for p in split_unescaped(raw, ";")] + [""] * 7
            pobox, ext, street, city, region, postcode, country = parts[:7]
            street = ", ".join(p for p in [pobox, ext, street] if p)
            adr = ParsedAddress(
                label=_label(prop) or "work",
                street=street,
                city=city,
                region=region,
                postcode=postcode,
                country=country,
            )
            if str(adr):
                contact.addresses.append(adr)
        elif name == "NOTE":
            notes.append(value)
        elif name == "CATEGORIES":
            contact.tags.extend(_clean(unescape(c)) for c in split_unescaped(raw, ",") if c.strip())
        else:
            contact.not_understood.append(f"{name}: {value[:200]}")
    if fn and not contact.full_name:
        contact.first_name, contact.last_name = split_name(fn)
    contact.note = "\n\n".join(notes)[:20000]
    if contact.is_empty and not contact.errors:
        contact.errors.append("The card has no name, email, phone or handle.")
    for name in ("first_name", "last_name"):
        if len(getattr(contact, name)) > 100:
            contact.errors.append(f"The name is longer than 100 characters: “{getattr(contact, name)[:40]}…”")
    return contact


def parse_vcards(text: str) -> ParseResult:
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    cards, errors = read_cards(text)
    result = ParseResult(kind="vcard", errors=errors if not cards else [])
    if cards and errors:
        # problems outside the cards do not stop the cards from being read; show them on the first
        cards[0].errors.extend(e for e in errors if "outside" not in e or len(errors) < 5)
    if not cards and not result.errors:
        result.errors.append("No BEGIN:VCARD … END:VCARD card found.")
    for i, card in enumerate(cards, start=1):
        result.contacts.append(card_to_contact(card, label=f"card {i} (line {card.line_no})"))
    return result


# --- writing ---------------------------------------------------------------------------------


def fold_line(line: str, limit: int = 75) -> str:
    """Fold to at most `limit` octets per line without splitting a UTF-8 character."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            out.append("".join(current))
            current, size = [" "], 1
        current.append(ch)
        size += n
    out.append("".join(current))
    return "\r\n".join(out)


def _profile_url(kind: str, value: str) -> str:
    if kind == IdentityKind.X:
        return f"https://x.com/{value}"
    if kind == IdentityKind.MASTODON:
        user, _, host = value.lstrip("@").partition("@")
        return f"https://{host}/@{user}"
    if kind == IdentityKind.BLUESKY:
        return f"https://bsky.app/profile/{value}"
    if kind == IdentityKind.LINKEDIN:
        return f"https://www.linkedin.com/in/{value}"
    if kind == IdentityKind.FACEBOOK:
        return f"https://www.facebook.com/{value}"
    if kind == IdentityKind.INSTAGRAM:
        return f"https://www.instagram.com/{value}"
    if kind == IdentityKind.WHATSAPP:
        return f"https://wa.me/{value.lstrip('+')}"
    return value


_SOCIAL_TYPE_OUT: dict[str, str] = {
    IdentityKind.X: "twitter",
    IdentityKind.MASTODON: "mastodon",
    IdentityKind.BLUESKY: "bluesky",
    IdentityKind.LINKEDIN: "linkedin",
    IdentityKind.FACEBOOK: "facebook",
    IdentityKind.INSTAGRAM: "instagram",
    IdentityKind.WHATSAPP: "whatsapp",
}


def _param_value(value: str) -> str:
    clean = re.sub(r'[";:,\r\n]', "", value)
    return clean


def person_to_vcard(person: Person) -> str:
    """One vCard 4.0 for `person`. Expects identities, addresses and tags prefetched when
    exporting many."""
    lines = [
        "BEGIN:VCARD",
        "VERSION:4.0",
        "PRODID:-//Rapport//Rapport CRM//EN",
        f"UID:urn:rapport:person:{person.pk}",
        f"FN:{escape(person.full_name if person.first_name or person.last_name else '')}",
        f"N:{escape(person.last_name)};{escape(person.first_name)};;;",
    ]
    if person.organisation_id and person.organisation:
        lines.append(f"ORG:{escape(person.organisation.name)}")
    if person.title:
        lines.append(f"TITLE:{escape(person.title)}")
    for ident in person.identities.all():
        label = _param_value(ident.label.lower())
        pref = ";PREF=1" if ident.is_primary else ""
        if ident.kind == IdentityKind.EMAIL:
            type_ = f";TYPE={label}" if label else ""
            lines.append(f"EMAIL{type_}{pref}:{ident.value}")
        elif ident.kind == IdentityKind.PHONE:
            kinds = {"mobile": "cell", "": "voice"}.get(label, label)
            lines.append(f"TEL;VALUE=uri;TYPE={kinds}{pref}:tel:{ident.value}")
        elif ident.kind == IdentityKind.WEBSITE:
            lines.append(f"URL:{ident.value}")
        else:
            social = _SOCIAL_TYPE_OUT.get(ident.kind, ident.kind)
            lines.append(f"X-SOCIALPROFILE;TYPE={social}:{_profile_url(ident.kind, ident.value)}")
    for adr in person.addresses.all():
        parts = ["", "", adr.street, adr.city, adr.region, adr.postcode, adr.country]
        label = _param_value(adr.label.lower()) or "work"
        lines.append(f"ADR;TYPE={label}:" + ";".join(escape(p) for p in parts))
    tags = [t.name for t in person.tags.all()]
    if tags:
        lines.append("CATEGORIES:" + ",".join(escape(t) for t in tags))
    if person.bio:
        lines.append(f"NOTE:{escape(person.bio)}")
    lines.append(f"REV:{person.updated_at:%Y%m%dT%H%M%SZ}")
    lines.append("END:VCARD")
    return "".join(fold_line(line) + "\r\n" for line in lines)


def people_to_vcards(people: Iterable[Person]) -> str:
    return "".join(person_to_vcard(p) for p in people)


def vcard_filename(person: Person) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", person.full_name).strip("-.")[:60] or f"person-{person.pk}"
    return f"{base}.vcf"
