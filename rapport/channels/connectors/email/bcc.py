"""The BCC/forward log: a rep's own emails land on their customers' timelines.

A mailbox polled by an email channel with `settings.mode = "bcc_log"` is not an inbox: what
arrives there is a rep's copy of their own correspondence. Each message is logged as an
`email` Activity, owned by the rep, on the timeline of every external participant (From, To
and Cc minus Rapport users and internal domains); unknown participants become new people
with `needs_review`. No conversation is created and nothing is ever sent.

Who is the rep? Never the `From:` header alone (it is whatever the sender typed):

1. **Per-user address** (default): `log+<user id>-<token>@<domain>`, where the token is an
   HMAC of the channel and user under the channel's `bcc_secret` (or SECRET_KEY). It is found
   in Delivered-To / X-Original-To / Envelope-To (what the mail server stamps on delivery, for
   BCC) or in To/Cc (for a forward). Knowing the address is the credential; rotating
   `bcc_secret` revokes every address.
2. **Shared address** (opt-in): `settings.bcc_trusted_authserv_id` names your mail server's
   authserv-id; a message whose `Authentication-Results` from that server says `dmarc=pass`
   (or `dkim=pass` for the From domain) is attributed to the active user with that From email.
   Your server must strip incoming Authentication-Results with its own id (Postfix with
   OpenDMARC/Rspamd do).

A forward (the rep forwards a customer's email as an attachment or inline) logs the
forwarded message: its participants, subject, date and Message-ID."""

import datetime as dt
import re

from django.conf import settings as dj_settings
from django.db import transaction
from django.db.models.functions import Lower
from django.utils.crypto import constant_time_compare, salted_hmac

from rapport.accounts.models import User
from rapport.channels.base import NormaliseError
from rapport.channels.connectors.email.inbound import Parsed, read_message
from rapport.channels.models import Channel, RawPayload

MAX_PARTICIPANTS = 20
TOKEN_LEN = 20
_LOG_LOCAL = re.compile(rf"^(?P<base>[^+@]+)\+(?P<uid>\d{{1,12}})-(?P<token>[0-9a-f]{{{TOKEN_LEN}}})$")
_INLINE_FORWARD = re.compile(
    r"^-{2,}\s*(Forwarded message|Original Message|Message transféré|Weitergeleitete Nachricht)",
    re.IGNORECASE | re.MULTILINE,
)
_INLINE_HEADER = re.compile(
    r"^\s*(From|To|Cc|De|À|Von|An|Subject|Objet|Betreff|Date)\s*:\s*(.+)$", re.IGNORECASE
)


def _base_address(channel: Channel) -> tuple[str, str]:
    address = str((channel.settings or {}).get("bcc_address") or "")
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise NormaliseError("This BCC-log channel has no `bcc_address` setting (like log@crm.example.com).")
    return local.split("+", 1)[0].lower(), domain.lower()


def _token(channel: Channel, user_id: int) -> str:
    secret = str(channel.credentials.get("bcc_secret") or dj_settings.SECRET_KEY)
    return salted_hmac("rapport.email.bcc", f"{channel.pk}:{user_id}", secret=secret).hexdigest()[:TOKEN_LEN]


def address_for(channel: Channel, user: User) -> str:
    """The address `user` BCCs or forwards to; shown to them on their settings page."""
    local, domain = _base_address(channel)
    return f"{local}+{user.pk}-{_token(channel, user.pk)}@{domain}"


def _user_from_token(channel: Channel, candidates: list[str]) -> User | None:
    local, domain = _base_address(channel)
    for addr in candidates:
        at_local, _, at_domain = addr.lower().rpartition("@")
        m = _LOG_LOCAL.match(at_local)
        if at_domain != domain or m is None or m["base"] != local:
            continue
        uid = int(m["uid"])
        if constant_time_compare(m["token"], _token(channel, uid)):
            return User.objects.filter(pk=uid, is_active=True).first()
    return None


def _user_from_authenticated_sender(channel: Channel, parsed: Parsed) -> User | None:
    authserv = str((channel.settings or {}).get("bcc_trusted_authserv_id") or "").strip().lower()
    sender = parsed.sender[1].lower()
    if not authserv or not sender:
        return None
    sender_domain = sender.rpartition("@")[2]
    for result in parsed.auth_results:
        head, _, rest = result.partition(";")
        if head.strip().split(" ")[0].lower() != authserv:
            continue
        rest = rest.lower()
        dkim_ok = re.search(r"dkim=pass\b[^;]*header\.d=" + re.escape(sender_domain) + r"\b", rest)
        if re.search(r"dmarc=pass\b", rest) or dkim_ok:
            return User.objects.filter(email__iexact=sender, is_active=True).order_by("id").first()
    return None


def identify_rep(channel: Channel, parsed: Parsed) -> User:
    candidates = [*parsed.envelope_to, *(a for _, a in parsed.to), *(a for _, a in parsed.cc)]
    user = _user_from_token(channel, candidates) or _user_from_authenticated_sender(channel, parsed)
    if user is None:
        raise NormaliseError(
            "Cannot tell which Rapport user logged this email: it was not sent to a valid "
            "log+<user>-<token> address and the sender is not authenticated by a trusted server."
        )
    if not user.can_write:
        raise NormaliseError(f"User {user.username} has a read-only role and cannot log emails.")
    return user


def _inline_forward(parsed: Parsed) -> tuple[list[tuple[str, str]], str]:
    """Participants and subject of a forward pasted into the body ("---- Forwarded message")."""
    from email.utils import getaddresses

    match = _INLINE_FORWARD.search(parsed.text)
    if match is None:
        return [], ""
    people: list[tuple[str, str]] = []
    subject = ""
    for line in parsed.text[match.end() :].splitlines()[1:15]:
        m = _INLINE_HEADER.match(line)
        if m is None:
            if people and not line.strip():
                break
            continue
        name = m[1].lower()
        if name in ("subject", "objet", "betreff"):
            subject = m[2].strip()[:300]
        elif name != "date":
            people.extend((n, a) for n, a in getaddresses([m[2]]) if "@" in a)
    return people, subject


def _what_to_log(parsed: Parsed, rep: User, received: dt.datetime) -> tuple[Parsed, list[tuple[str, str]]]:
    """The message to log and its participants: the forwarded one when the rep forwarded."""
    if parsed.forwarded:
        inner = read_message(parsed.forwarded[0], received=received)
        return inner, [inner.sender, *inner.to, *inner.cc]
    inline, subject = _inline_forward(parsed)
    if inline:
        if subject:
            parsed.subject = subject
        return parsed, inline
    return parsed, [parsed.sender, *parsed.to, *parsed.cc]


def _external(channel: Channel, participants: list[tuple[str, str]]) -> list[tuple[str, str]]:
    from rapport.people.identities import IdentityError, normalise_email

    local, domain = _base_address(channel)
    internal = {
        d.lower() for d in (channel.settings or {}).get("internal_domains") or [] if isinstance(d, str)
    }
    seen: dict[str, str] = {}
    for name, addr in participants:
        try:
            value = normalise_email(addr)
        except IdentityError:
            continue
        at_local, _, at_domain = value.rpartition("@")
        if at_domain == domain and at_local.split("+", 1)[0] == local:
            continue  # the log address itself
        if at_domain in internal:
            continue
        seen.setdefault(value, name)
    users = set(
        User.objects.annotate(lower_email=Lower("email"))
        .filter(lower_email__in=list(seen))
        .values_list("lower_email", flat=True)
    )
    return [(name, value) for value, name in seen.items() if value not in users][:MAX_PARTICIPANTS]


def log_payload(channel: Channel, payload: RawPayload, parsed: Parsed) -> list[int]:
    """Log one message; returns the activity ids (existing ones when logged before, so a
    replay or a re-fetch after a UIDVALIDITY change adds nothing)."""
    from rapport.activities.actions import activity_log
    from rapport.activities.models import Activity, ActivityKind
    from rapport.core.actions import default_team
    from rapport.core.errors import ActionError
    from rapport.core.models import Visibility
    from rapport.people.actions import person_create
    from rapport.people.models import IdentityKind, Source
    from rapport.people.selectors import person_by_identity

    rep = identify_rep(channel, parsed)
    logged, participants = _what_to_log(parsed, rep, payload.received_at)
    people = _external(channel, participants)
    if not people:
        raise NormaliseError(
            "No external participant in this email (everyone is a Rapport user or internal)."
        )
    team = default_team(rep)
    visibility = str((channel.settings or {}).get("bcc_visibility") or Visibility.TEAM)
    if visibility not in Visibility.values or (visibility == Visibility.TEAM and team is None):
        visibility = Visibility.EVERYONE if team is None else Visibility.TEAM
    ids: list[int] = []
    to_line = ", ".join(a for _, a in [*logged.to, *logged.cc])
    try:
        with transaction.atomic():
            for name, value in people:
                person = person_by_identity(kind=IdentityKind.EMAIL, value=value)
                if person is None:
                    first, _, last = (name or "").strip().partition(" ")
                    person = person_create(
                        actor=rep,
                        first_name=first[:100],
                        last_name=last[:100],
                        identities=[(IdentityKind.EMAIL, value)],
                        team=team,
                        visibility=visibility,
                        source=Source.INBOX,
                        needs_review=True,
                    )
                existing = (
                    Activity.objects.filter(
                        kind=ActivityKind.EMAIL, person=person, message_id=logged.external_id[:500]
                    )
                    .values_list("id", flat=True)
                    .first()
                )
                if existing is not None:
                    ids.append(existing)
                    continue
                activity = activity_log(
                    actor=rep,
                    kind=ActivityKind.EMAIL,
                    subject=logged.subject[:300],
                    body=(logged.text or "")[:100_000],
                    person=person,
                    occurred_at=logged.sent_at,
                    email_from=logged.sender[1],
                    email_to=to_line,
                    message_id=logged.external_id,
                    visibility=visibility,
                )
                ids.append(activity.pk)
    except ActionError as exc:
        raise NormaliseError(f"Could not log this email for {rep.username}: {exc}")
    return ids
