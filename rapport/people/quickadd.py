"""Quick add: turn one pasted line, an email signature or vCards into people.

Two layers, kept apart so the rules are easy to test:
- parsing (`parse_text`, `parse_line`, `parse_signature`) is pure: text in, `ParseResult` out,
  no database. Every fragment ends up somewhere visible: a field, an identity, an error
  ("not a valid email") or `not_understood`; nothing is dropped silently.
- planning and saving (`plan_capture`, `capture_save`) look the result up against what the
  user may see (existing person by identity, organisation by name or email domain) and write
  through the people actions. Saving re-parses the submitted text instead of trusting a
  preview the browser sends back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from rapport.accounts.models import User
from rapport.core.access import can_edit
from rapport.core.errors import ActionError
from rapport.core.text import fold
from rapport.people import actions
from rapport.people.identities import FREE_MAIL_DOMAINS, IdentityError, email_domain, normalise
from rapport.people.models import (
    Address,
    IdentityKind,
    Organisation,
    OrganisationDomain,
    Person,
    Source,
)

MAX_TEXT_CHARS = 5000  # one line, a signature or a few pasted cards; files go to the vCard import
MAX_FRAGMENTS = 60

# --- parsed data ---------------------------------------------------------------------------


@dataclass
class ParsedIdentity:
    kind: str
    value: str  # normalised
    raw: str
    label: str = ""

    @property
    def kind_label(self) -> str:
        return IdentityKind(self.kind).label if self.kind in IdentityKind.values else self.kind


@dataclass
class ParsedAddress:
    label: str = "work"
    street: str = ""
    city: str = ""
    region: str = ""
    postcode: str = ""
    country: str = ""

    def __str__(self) -> str:
        return ", ".join(p for p in [self.street, self.postcode, self.city, self.region, self.country] if p)


@dataclass
class ParsedContact:
    first_name: str = ""
    last_name: str = ""
    title: str = ""
    organisation: str = ""
    identities: list[ParsedIdentity] = field(default_factory=list)
    addresses: list[ParsedAddress] = field(default_factory=list)
    note: str = ""
    tags: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # deliberately ignored (sign-offs, photos)
    label: str = ""  # where it came from, e.g. "card 3"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_empty(self) -> bool:
        return not (self.full_name or self.identities or self.organisation or self.title)

    def add_identity(self, kind: str, raw: str, label: str = "") -> None:
        raw = raw.strip()
        if not raw:
            return
        try:
            value = normalise(kind, raw)
        except IdentityError as exc:
            self.errors.append(str(exc))
            return
        if not any(i.kind == kind and i.value == value for i in self.identities):
            self.identities.append(ParsedIdentity(kind=kind, value=value, raw=raw, label=label[:30]))


@dataclass
class ParseResult:
    kind: str  # "line" | "signature" | "vcard" | "empty"
    contacts: list[ParsedContact] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # about the whole input

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.contacts) and not any(c.errors for c in self.contacts)


# --- recognising fragments -----------------------------------------------------------------

_EMAIL = re.compile(r"^<?([^\s<>@,;]+@[^\s<>@,;]+\.[^\s<>@,;]+)>?[.;]?$")
_MASTODON_ADDR = re.compile(r"^@?[A-Za-z0-9_]{1,30}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_AT_HANDLE = re.compile(r"^@[A-Za-z0-9_]{1,15}$")
_BSKY = re.compile(r"^@?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.bsky\.social$", re.I)
_PHONE = re.compile(r"^\+?[\d\s().\-/]{6,30}\d(\s*(ext\.?|x)\s*\d{1,6})?$", re.I)
_PHONE_ATTEMPT = re.compile(r"^\+[\d\s().\-/]+$|^\d[\d\s().\-/]{4,}$")
_URLISH = re.compile(r"^(https?://\S+|www\.\S+|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(/\S*)?)$")
_BARE_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[a-z]{2,12}(/\S*)?$")
_COMPANY_SUFFIX = re.compile(
    r"^(inc\.?|ltd\.?|llc|l\.l\.c\.|plc|gmbh|ag|sa|s\.a\.|sas|sarl|bv|b\.v\.|nv|oy|ab|as|srl|spa|"
    r"pty\.? ltd\.?|co\.?|corp\.?|corporation|limited|kg)$",
    re.I,
)
_SIGN_OFF = re.compile(
    r"^(--\s*|—|best( regards| wishes)?|kind regards|regards|warm regards|many thanks|thanks|thank you|"
    r"cheers|all the best|sincerely|yours( sincerely| truly)?|sent from my \w+.*|br|mfg|"
    r"mit freundlichen grüßen|cordialement)[,.!]?$",
    re.I,
)
_TITLE_WORDS = {
    "ceo", "cto", "cfo", "coo", "cmo", "cio", "ciso", "cpo", "vp", "svp", "evp", "head", "director",
    "manager", "engineer", "founder", "co-founder", "cofounder", "president", "officer", "lead",
    "partner", "consultant", "developer", "designer", "analyst", "architect", "owner", "chair",
    "chairman", "chairwoman", "principal", "associate", "assistant", "specialist", "executive",
    "advisor", "adviser", "coordinator", "administrator", "representative", "sales", "marketing",
    "product", "intern", "professor", "researcher", "scientist", "editor", "writer", "recruiter",
    "account", "accountant", "attorney", "lawyer", "counsel", "secretary", "treasurer", "md",
    "gm", "chief", "senior", "junior", "staff", "team", "technical", "commercial", "operations",
}  # fmt: skip

# label → identity kind. Word labels may be followed by a space, one-letter ones need a colon.
_LABELS: dict[str, str] = {
    "email": IdentityKind.EMAIL, "e-mail": IdentityKind.EMAIL, "mail": IdentityKind.EMAIL,
    "e": IdentityKind.EMAIL,
    "tel": IdentityKind.PHONE, "tel.": IdentityKind.PHONE, "phone": IdentityKind.PHONE,
    "telephone": IdentityKind.PHONE, "mobile": IdentityKind.PHONE, "mob": IdentityKind.PHONE,
    "mob.": IdentityKind.PHONE, "cell": IdentityKind.PHONE, "office": IdentityKind.PHONE,
    "direct": IdentityKind.PHONE, "work": IdentityKind.PHONE, "home": IdentityKind.PHONE,
    "m": IdentityKind.PHONE, "t": IdentityKind.PHONE, "p": IdentityKind.PHONE, "d": IdentityKind.PHONE,
    "o": IdentityKind.PHONE, "whatsapp": IdentityKind.WHATSAPP, "wa": IdentityKind.WHATSAPP,
    "mastodon": IdentityKind.MASTODON, "fediverse": IdentityKind.MASTODON, "fedi": IdentityKind.MASTODON,
    "bsky": IdentityKind.BLUESKY, "bluesky": IdentityKind.BLUESKY,
    "twitter": IdentityKind.X, "x": IdentityKind.X,
    "linkedin": IdentityKind.LINKEDIN, "li": IdentityKind.LINKEDIN,
    "facebook": IdentityKind.FACEBOOK, "fb": IdentityKind.FACEBOOK,
    "instagram": IdentityKind.INSTAGRAM, "insta": IdentityKind.INSTAGRAM, "ig": IdentityKind.INSTAGRAM,
    "web": IdentityKind.WEBSITE, "website": IdentityKind.WEBSITE, "site": IdentityKind.WEBSITE,
    "url": IdentityKind.WEBSITE, "w": IdentityKind.WEBSITE, "homepage": IdentityKind.WEBSITE,
}  # fmt: skip
_PHONE_LABEL_NAMES = {"m": "mobile", "mob": "mobile", "mob.": "mobile", "mobile": "mobile", "cell": "mobile"}
_LABEL_RE = re.compile(r"^([A-Za-z][A-Za-z.-]{0,9})\s*(:)?\s+(.+)$|^([A-Za-z][A-Za-z.-]{0,9}):(\S.*)$")

_HOST_KINDS = {
    "linkedin.com": IdentityKind.LINKEDIN,
    "x.com": IdentityKind.X,
    "twitter.com": IdentityKind.X,
    "facebook.com": IdentityKind.FACEBOOK,
    "fb.com": IdentityKind.FACEBOOK,
    "instagram.com": IdentityKind.INSTAGRAM,
    "bsky.app": IdentityKind.BLUESKY,
    "wa.me": IdentityKind.WHATSAPP,
}


def url_identity_kind(raw: str) -> str:
    """Which identity a URL is: a known social profile, a Mastodon profile (host/@user) or a
    plain website."""
    value = raw if "://" in raw else "https://" + raw
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("mobile.")
    except ValueError:
        return IdentityKind.WEBSITE
    if host in _HOST_KINDS:
        return _HOST_KINDS[host]
    if parts.path.startswith("/@") and len(parts.path.strip("/").split("/")) == 1:
        return IdentityKind.MASTODON
    return IdentityKind.WEBSITE


def _add_url(contact: ParsedContact, raw: str, label: str = "") -> None:
    kind = url_identity_kind(raw)
    if kind == IdentityKind.WHATSAPP:
        digits = urlsplit(raw if "://" in raw else "https://" + raw).path.strip("/")
        contact.add_identity(kind, "+" + digits.lstrip("+"), label)
    else:
        contact.add_identity(kind, raw, label)


def _token_identity(contact: ParsedContact, token: str) -> bool:
    """Record `token` as an identity if it clearly is one; False if it is just a word."""
    bare = token.strip(",;()")
    if _MASTODON_ADDR.match(bare) and bare.startswith("@"):
        contact.add_identity(IdentityKind.MASTODON, bare)
        return True
    m = _EMAIL.match(bare)
    if m and "/" not in bare:
        contact.add_identity(IdentityKind.EMAIL, m.group(1))
        return True
    if _AT_HANDLE.match(bare):
        contact.add_identity(IdentityKind.X, bare)
        return True
    if "@" in bare and len(bare) > 1:
        # meant as an email ("jane@", "<jane@acme>"): let normalisation say what is wrong
        contact.add_identity(IdentityKind.EMAIL, bare.strip("<>"))
        return True
    if _BSKY.match(bare):
        contact.add_identity(IdentityKind.BLUESKY, bare)
        return True
    if _URLISH.match(bare) and ("://" in bare or bare.lower().startswith("www.") or "/" in bare):
        _add_url(contact, bare)
        return True
    return False


def _labelled(contact: ParsedContact, fragment: str) -> bool:
    """`Tel +44 …`, `M: …`, `mastodon @jane@…`, `bsky jane.bsky.social`, `email: …`."""
    m = _LABEL_RE.match(fragment)
    if not m:
        return False
    if m.group(1):
        word, colon, rest = m.group(1), m.group(2), m.group(3).strip()
    else:
        word, colon, rest = m.group(4), ":", m.group(5).strip()
    kind = _LABELS.get(word.lower())
    if kind is None:
        return False
    looks_like_value = (
        _PHONE.match(rest) is not None
        if kind in (IdentityKind.PHONE, IdentityKind.WHATSAPP)
        else (" " not in rest and any(ch in rest for ch in "@./") or _AT_HANDLE.match(rest) is not None)
    )
    if not colon and (len(word) == 1 or not looks_like_value):
        return False
    # "Tel: call me" is a mistyped phone, worth an error; "Web: design" is not a website.
    phone_or_email = (IdentityKind.PHONE, IdentityKind.EMAIL, IdentityKind.WHATSAPP)
    if colon and not looks_like_value and kind not in phone_or_email and not any(ch in rest for ch in "@./"):
        return False
    label = _PHONE_LABEL_NAMES.get(word.lower(), "work" if kind == IdentityKind.PHONE else "")
    if kind == IdentityKind.WEBSITE or (kind == IdentityKind.WHATSAPP and "wa.me" in rest):
        _add_url(contact, rest)
    else:
        contact.add_identity(kind, rest, label)
    return True


def _classify(contact: ParsedContact, fragment: str) -> str:
    """Take identities out of one fragment and return the plain text left over."""
    fragment = fragment.strip()
    if not fragment:
        return ""
    if _labelled(contact, fragment):
        return ""
    digits = sum(ch.isdigit() for ch in fragment)
    if (_PHONE.match(fragment) and digits >= 7) or (_PHONE_ATTEMPT.match(fragment) and digits >= 2):
        # "+12" or "020 79" were meant as phone numbers: normalisation explains the problem
        contact.add_identity(IdentityKind.PHONE, fragment)
        return ""
    words = []
    for token in fragment.split():
        if not _token_identity(contact, token):
            words.append(token)
    text = " ".join(words)
    if text and " " not in text and _URLISH.match(text) and _BARE_DOMAIN.match(text):
        # a bare domain on its own ("acme.com") is a website; "J.Doe" or "Acme Corp." is not
        _add_url(contact, text)
        return ""
    return text


def _looks_like_title(text: str) -> bool:
    return any(w.strip(".,&()").lower() in _TITLE_WORDS for w in text.split())


def split_name(full: str) -> tuple[str, str]:
    parts = full.split()
    if not parts:
        return "", ""
    if len(parts) == 1:
        return parts[0], ""
    return parts[0], " ".join(parts[1:])


def _assign_texts(contact: ParsedContact, texts: list[str]) -> None:
    """Plain text pieces in order are name, then title, then organisation."""
    name = ""
    rest: list[str] = []
    for text in texts:
        if not name and not contact.full_name:
            at = re.split(r"\s+(?:at|@)\s+", text, maxsplit=1)
            if len(at) == 2 and at[0] and at[1] and not _looks_like_title(at[0]):
                name, contact.organisation = at[0], at[1]
            else:
                name = text
        else:
            rest.append(text)
    if name:
        contact.first_name, contact.last_name = split_name(name)
    for i, text in enumerate(rest):
        at = re.split(r"\s+(?:at|@)\s+", text, maxsplit=1)
        if len(at) == 2 and at[0] and at[1] and not contact.title and not contact.organisation:
            contact.title, contact.organisation = at[0], at[1]
        elif not contact.title and not contact.organisation:
            remaining = len(rest) - i
            if remaining >= 2 or _looks_like_title(text):
                contact.title = text
            else:
                contact.organisation = text
        elif not contact.organisation:
            contact.organisation = text
        elif not contact.title and _looks_like_title(text):
            contact.title = text
        else:
            contact.not_understood.append(text)


def _merge_company_suffixes(fragments: list[str]) -> list[str]:
    """`Acme, Inc.` was split on its comma; glue the suffix back."""
    out: list[str] = []
    for frag in fragments:
        if out and _COMPANY_SUFFIX.match(frag.strip()):
            out[-1] = f"{out[-1]}, {frag.strip()}"
        else:
            out.append(frag)
    return out


def check_size(text: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    if len(text) > limit:
        return (
            f"That is {len(text):,} characters; quick add takes at most {limit:,}. "
            "Paste one person at a time, or use the vCard or CSV import for many."
        )
    return None


def parse_line(text: str) -> ParsedContact:
    """`Jane Doe <jane@acme.com> @janedoe, CTO at Acme` → one contact."""
    contact = ParsedContact()
    fragments = [f for f in re.split(r"[,;|]|\s[•·–]\s", text) if f.strip()]
    fragments = _merge_company_suffixes(fragments)
    if len(fragments) > MAX_FRAGMENTS:
        contact.errors.append(f"Too many parts ({len(fragments)}); at most {MAX_FRAGMENTS}.")
        return contact
    texts = [t for t in (_classify(contact, f) for f in fragments) if t]
    _assign_texts(contact, texts)
    return contact


def parse_signature(text: str) -> ParsedContact:
    """An email signature: name, title, company on their own lines, then contact lines."""
    contact = ParsedContact()
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > MAX_FRAGMENTS:
        contact.errors.append(f"Too many lines ({len(lines)}); at most {MAX_FRAGMENTS}.")
        return contact
    texts: list[str] = []
    for line in lines:
        if _SIGN_OFF.match(line):
            contact.skipped.append(line)
            continue
        pieces = [p for p in re.split(r"\s*[|•·]\s*|\t+|\s{3,}", line) if p.strip()]
        line_texts = [t for t in (_classify(contact, p) for p in pieces) if t]
        if len(line_texts) == 1 and "," in line_texts[0] and texts and not contact.title:
            # "CTO, Acme Corp" on one line after the name
            parts = _merge_company_suffixes([p for p in line_texts[0].split(",") if p.strip()])
            texts.extend(p.strip() for p in parts)
        else:
            texts.extend(line_texts)
    _assign_texts(contact, texts)
    return contact


def parse_text(text: str) -> ParseResult:
    """Entry point: decide whether `text` is vCards, a signature or one line, and parse it."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if error := check_size(text):
        return ParseResult(kind="line", errors=[error])
    if not text.strip():
        return ParseResult(kind="empty", errors=["Type or paste something first."])
    if re.search(r"^\s*BEGIN:VCARD\s*$", text, re.I | re.M):
        from rapport.people.vcard import parse_vcards

        return parse_vcards(text)
    if len([line for line in text.splitlines() if line.strip()]) > 1:
        contact, kind = parse_signature(text), "signature"
    else:
        contact, kind = parse_line(text.strip()), "line"
    result = ParseResult(kind=kind, contacts=[contact])
    if contact.is_empty and not contact.errors:
        result.errors.append("No name, email, phone or handle found.")
    return result


# --- planning: what saving would do ---------------------------------------------------------


@dataclass
class ContactPlan:
    contact: ParsedContact
    action: str = "create"  # "create" | "update" | "blocked" | "invalid"
    person: Person | None = None  # existing person found by identity
    matched_by: str = ""
    organisation: Organisation | None = None
    organisation_action: str = ""  # "" | "link" | "create"
    organisation_matched_by: str = ""
    new_identities: list[ParsedIdentity] = field(default_factory=list)
    known_identities: list[ParsedIdentity] = field(default_factory=list)
    fill: dict[str, Any] = field(default_factory=dict)  # fields of an existing person to fill
    kept: dict[str, tuple[str, str]] = field(default_factory=dict)  # field → (existing, typed)
    messages: list[str] = field(default_factory=list)

    @property
    def savable(self) -> bool:
        return self.action in ("create", "update")


_SUFFIX_WORDS = re.compile(
    r"\b(inc|ltd|llc|plc|gmbh|ag|sa|sas|bv|nv|corp|corporation|limited|co|group|holdings?)\b\.?", re.I
)


def _org_base(name: str) -> str:
    return " ".join(_SUFFIX_WORDS.sub(" ", fold(name)).replace(",", " ").split())


def find_organisation(user: User, name: str, emails: list[str]) -> tuple[Organisation | None, str]:
    """An existing organisation the user can see, by folded name (ignoring Inc/Ltd/Corp) or
    by the domain of one of the emails."""
    from rapport.people.selectors import organisations_visible

    visible_orgs = organisations_visible(user)
    if name:
        key = fold(name)[:200]
        org = visible_orgs.filter(name_key=key).order_by("id").first()
        if org:
            return org, "name"
        base = _org_base(name)
        if base:
            first_word = base.split()[0]
            for org in visible_orgs.filter(name_key__startswith=first_word).order_by("id")[:50]:
                if _org_base(org.name) == base:
                    return org, "name"
    for email in emails:
        domain = email_domain(email)
        if not domain or domain in FREE_MAIL_DOMAINS:
            continue
        ids = OrganisationDomain.objects.filter(domain=domain).values_list("organisation_id", flat=True)[:20]
        org = visible_orgs.filter(pk__in=list(ids)).order_by("id").first()
        if org:
            return org, f"email domain {domain}"
    return None, ""


def _find_person(user: User, identities: list[ParsedIdentity]) -> tuple[Person | None, str]:
    from rapport.people.selectors import people_visible

    for ident in identities:
        person = (
            people_visible(user)
            .filter(identities__kind=ident.kind, identities__value=ident.value)
            .select_related("organisation")
            .order_by("id")
            .first()
        )
        if person:
            return person, f"{ident.kind} {ident.value}"
    return None, ""


def plan_contact(user: User, contact: ParsedContact) -> ContactPlan:
    plan = ContactPlan(contact=contact)
    if contact.errors:
        plan.action = "invalid"
        return plan
    if contact.is_empty:
        plan.action = "invalid"
        plan.messages.append("No name, email, phone or handle found.")
        return plan
    person, matched_by = _find_person(user, contact.identities)
    emails = [i.value for i in contact.identities if i.kind == IdentityKind.EMAIL]
    if person is not None:
        plan.person, plan.matched_by = person, matched_by
        if not can_edit(user, person):
            plan.action = "blocked"
            plan.messages.append(
                f"{person.full_name} already exists and you cannot change it; nothing will be created."
            )
            return plan
        plan.action = "update"
        existing = set(person.identities.values_list("kind", "value"))
        for ident in contact.identities:
            target = plan.known_identities if (ident.kind, ident.value) in existing else plan.new_identities
            target.append(ident)
        for name in ("first_name", "last_name", "title"):
            typed, current = getattr(contact, name), getattr(person, name)
            if typed and not current:
                plan.fill[name] = typed
            elif typed and fold(typed) != fold(current):
                plan.kept[name] = (current, typed)
        if contact.note and not person.bio:
            plan.fill["bio"] = contact.note
        if person.organisation_id is None and (contact.organisation or emails):
            org, how = find_organisation(user, contact.organisation, emails)
            if org:
                plan.organisation, plan.organisation_action, plan.organisation_matched_by = org, "link", how
            elif contact.organisation:
                plan.organisation_action = "create"
        elif (
            contact.organisation
            and person.organisation
            and fold(contact.organisation) != fold(person.organisation.name)
        ):
            plan.kept["organisation"] = (person.organisation.name, contact.organisation)
        return plan
    plan.new_identities = list(contact.identities)
    if contact.organisation or emails:
        org, how = find_organisation(user, contact.organisation, emails)
        if org:
            plan.organisation, plan.organisation_action, plan.organisation_matched_by = org, "link", how
        elif contact.organisation:
            plan.organisation_action = "create"
    return plan


def plan_capture(user: User, result: ParseResult) -> list[ContactPlan]:
    return [plan_contact(user, c) for c in result.contacts]


# --- saving ---------------------------------------------------------------------------------


def _bio_with_leftovers(contact: ParsedContact) -> str:
    """Fragments we could not place are kept in the notes so typing is never lost."""
    parts = [contact.note] if contact.note else []
    if contact.not_understood:
        parts.append("Quick add, not understood: " + "; ".join(contact.not_understood))
    return "\n\n".join(parts)[:20000]


def _create_org(actor: User, contact: ParsedContact) -> Organisation:
    domains = sorted(
        {
            email_domain(i.value)
            for i in contact.identities
            if i.kind == IdentityKind.EMAIL and email_domain(i.value) not in FREE_MAIL_DOMAINS
        }
    )
    website = next((i.value for i in contact.identities if i.kind == IdentityKind.WEBSITE), "")
    return actions.organisation_create(
        actor=actor,
        name=contact.organisation,
        domains=domains,
        website=website[:300],
        source=Source.QUICK_ADD,
    )


def _add_addresses(person: Person, contact: ParsedContact) -> None:
    # No address action exists yet; addresses are plain child rows of the person, written in
    # the same transaction as the person (whose create/update is audited).
    existing = {str(a) for a in person.addresses.all()}
    for adr in contact.addresses:
        if str(adr) and str(adr) not in existing:
            Address.objects.create(
                person=person,
                label=adr.label[:30],
                street=adr.street[:200],
                city=adr.city[:100],
                region=adr.region[:100],
                postcode=adr.postcode[:20],
                country=adr.country[:60],
            )
            existing.add(str(adr))


@dataclass
class SaveOutcome:
    person: Person | None
    created: bool
    label: str = ""
    errors: list[str] = field(default_factory=list)


@transaction.atomic
def save_plan(*, actor: User, plan: ContactPlan, source: str = Source.QUICK_ADD) -> Person:
    """Carry out one contact plan. Raises ActionError if it cannot be saved as shown."""
    contact = plan.contact
    if plan.action == "invalid":
        raise ActionError(
            "This entry has errors: " + " ".join(contact.errors + plan.messages),
            {"text": contact.errors + plan.messages},
        )
    if plan.action == "blocked":
        raise ActionError(plan.messages[0] if plan.messages else "Not allowed.")
    org = plan.organisation
    if plan.organisation_action == "create":
        org = _create_org(actor, contact)
    if plan.action == "update" and plan.person is not None:
        person = Person.objects.select_for_update().get(pk=plan.person.pk)
        for ident in plan.new_identities:
            actions.identity_add(
                actor=actor, person=person, kind=ident.kind, value=ident.value, label=ident.label
            )
        data: dict[str, Any] = dict(plan.fill)
        if org is not None and person.organisation_id is None:
            data["organisation"] = org
        leftovers = _bio_with_leftovers(contact) if contact.not_understood else ""
        if leftovers and "bio" not in data:
            data["bio"] = f"{person.bio}\n\n{leftovers}".strip()[:20000] if person.bio else leftovers
        if data:
            person = actions.person_update(actor=actor, person=person, data=data)
        _add_addresses(person, contact)
        if contact.tags:
            actions.tags_set(obj=person, names=[*person.tags.values_list("name", flat=True), *contact.tags])
        return person
    person = actions.person_create(
        actor=actor,
        first_name=contact.first_name[:100],
        last_name=contact.last_name[:100],
        title=contact.title[:150],
        organisation=org,
        identities=[(i.kind, i.value) for i in contact.identities],
        bio=_bio_with_leftovers(contact),
        tags=contact.tags or None,
        source=source,
    )
    labels = {(i.kind, i.value): i.label for i in contact.identities if i.label}
    if labels:
        for saved in person.identities.all():
            if (saved.kind, saved.value) in labels:
                saved.label = labels[(saved.kind, saved.value)]
                saved.save(update_fields=["label"])
    _add_addresses(person, contact)
    return person


def parse_for(text: str, mode: str = "auto") -> ParseResult:
    """`auto` for the quick-add box (any format, small); `vcard` for an address-book file."""
    if mode == "vcard":
        from rapport.people.vcard import parse_vcards

        return parse_vcards(text)
    return parse_text(text)


def capture_save(
    *, actor: User, text: str, source: str = Source.QUICK_ADD, mode: str = "auto"
) -> list[SaveOutcome]:
    """Parse `text` again and save every contact in it.

    One line or signature is all-or-nothing: any error raises ActionError and nothing is
    written. Several vCards are saved card by card; a card that fails is reported in its
    outcome and the others are still saved."""
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    result = parse_for(text, mode)
    if result.errors:
        raise ActionError(result.errors[0], {"text": result.errors})
    plans = plan_capture(actor, result)
    if result.kind != "vcard" or len(plans) == 1:
        problems = [e for p in plans for e in p.contact.errors + (p.messages if not p.savable else [])]
        if problems:
            raise ActionError("Nothing was saved: " + " ".join(problems), {"text": problems})
    outcomes = []
    for plan in plans:
        label = plan.contact.label or plan.contact.full_name
        if not plan.savable:
            outcomes.append(
                SaveOutcome(
                    person=None, created=False, label=label, errors=plan.contact.errors + plan.messages
                )
            )
            continue
        try:
            # Later cards can match people created by earlier cards in the same file.
            plan = plan_contact(actor, plan.contact) if result.kind == "vcard" else plan
            person = save_plan(actor=actor, plan=plan, source=source)
        except ActionError as exc:
            errors = [exc.message] + [m for msgs in exc.field_errors.values() for m in msgs]
            outcomes.append(SaveOutcome(person=None, created=False, label=label, errors=errors))
            continue
        outcomes.append(SaveOutcome(person=person, created=plan.action == "create", label=label))
    return outcomes
