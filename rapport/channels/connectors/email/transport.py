"""Email outbound: a reply goes out over SMTP as a threaded answer to the customer's last
email (In-Reply-To, References, `Re:` subject), plain text with a sanitised HTML alternative.

The Message-ID is derived from our message's id (stable across retries, so a retry after a
lost answer is recognisable as the same email) and returned as the external id: when the
customer answers, their In-Reply-To names it and the pipeline threads the answer into this
conversation, whichever email channel it comes back on.

After "continue by email" from another channel (`conversation.reply_mode == "email"`),
replies go to `conversation.reply_to`, the address the agent chose among the person's. With
no inbound email to answer, the reply is a fresh email: the conversation's subject, no
In-Reply-To (References only to our own earlier emails, so mail clients keep them together).

Errors follow SMTP's own classes: 5xx (authentication refused, recipient or sender refused,
message refused) are permanent; 4xx, timeouts and dropped connections are transient and
retried with backoff by the pipeline."""

import contextlib
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formataddr, getaddresses
from typing import TypedDict

from django.utils.crypto import salted_hmac
from django.utils.html import escape, linebreaks

from rapport.channels.base import TransportError
from rapport.channels.connectors.email import inbound
from rapport.channels.models import Channel, ChannelKind

TIMEOUT = 30.0
MAX_REFERENCES = 20
_REPLY_PREFIX = ("re:", "aw:", "sv:", "antw:", "réf:")


def _creds(channel: Channel) -> dict[str, str]:
    creds = channel.credentials
    return {
        "host": str(creds.get("smtp_host") or ""),
        "port": str(creds.get("smtp_port") or ""),
        "security": str(creds.get("smtp_security") or "starttls").lower(),
        "username": str(creds.get("smtp_username") or creds.get("username") or ""),
        "password": str(creds.get("smtp_password") or creds.get("password") or ""),
    }


def from_address(channel: Channel) -> str:
    settings = channel.settings or {}
    address = str(settings.get("from_address") or "")
    if not address:
        user = _creds(channel)["username"]
        address = user if "@" in user else ""
    if not address:
        raise TransportError("This email channel has no `from_address` setting.", permanent=True)
    return inbound.clean_header(address, 320)


def message_id_for(channel: Channel, message) -> str:  # noqa: ANN001 - conversations.Message
    domain = (
        str((channel.settings or {}).get("message_id_domain") or "")
        or from_address(channel).rpartition("@")[2]
    )
    tag = salted_hmac("rapport.email.msgid", f"{channel.pk}:{message.pk}").hexdigest()[:12]
    return f"rapport.{message.conversation_id}.{message.pk}.{tag}@{inbound.clean_header(domain, 200)}"


def _real_id(external_id: str) -> str:
    """External ids of emails without a Message-ID are our content hashes, not ids anyone
    else knows: never put them in a threading header."""
    return "" if not external_id or external_id.startswith("sha256:") else external_id


class Threading(TypedDict):
    to: str
    subject: str
    in_reply_to: str
    references: list[str]


def threading(message) -> Threading:  # noqa: ANN001
    """Recipient, subject and threading headers from the conversation's last inbound email,
    or, after an email hop, to the chosen address (a fresh email when none came in)."""
    conversation = message.conversation
    hop_to = conversation.reply_to if conversation.reply_mode == "email" else ""
    emails = conversation.messages.filter(channel__kind=ChannelKind.EMAIL).exclude(pk=message.pk)
    parent = emails.filter(direction="inbound").select_related("raw_payload").order_by("-id").first()
    to, in_reply_to = "", ""
    references: list[str] = []
    subject = conversation.subject or ""
    if parent is not None:
        to = parent.author_value
        subject = parent.subject or subject
        in_reply_to = _real_id(parent.external_id)
        if parent.raw_payload is not None:
            try:
                p = inbound.read_payload(parent.raw_payload)
                to = (p.reply_to[0][1] if p.reply_to else "") or to
                references = list(p.references)
            except Exception:  # unreadable raw: fall back to what the message row knows
                references = []
    if not references:
        references = [_real_id(e) for e in emails.order_by("id").values_list("external_id", flat=True)]
    if in_reply_to:
        references.append(in_reply_to)
    references = list(dict.fromkeys(r for r in references if r))[-MAX_REFERENCES:]
    subject = inbound.clean_header(subject, 300)
    if hop_to:
        to = hop_to
    if parent is None and hop_to:
        # Nothing of theirs to answer: a new email, not a "Re:" of a message they never sent.
        subject = subject or "Your conversation with us"
    elif not subject.lower().startswith(_REPLY_PREFIX):
        subject = f"Re: {subject}" if subject else "Re: your message"
    return {
        "to": inbound.clean_header(to, 320),
        "subject": subject,
        "in_reply_to": in_reply_to,
        "references": references,
    }


def build(channel: Channel, message) -> EmailMessage:  # noqa: ANN001
    from rapport.conversations.routing import BOT_USERNAME
    from rapport.conversations.sanitise import clean_html

    t = threading(message)
    to = t["to"]
    parsed = getaddresses([to])
    if not parsed or "@" not in parsed[0][1]:
        raise TransportError("The conversation has no email address to reply to.", permanent=True)
    email = EmailMessage()
    name = inbound.clean_header((channel.settings or {}).get("from_name") or "", 100)
    email["From"] = formataddr((name, from_address(channel))) if name else from_address(channel)
    email["To"] = parsed[0][1]
    email["Subject"] = t["subject"]
    email["Message-ID"] = f"<{message_id_for(channel, message)}>"
    if t["in_reply_to"]:
        email["In-Reply-To"] = f"<{t['in_reply_to']}>"
    refs = t["references"]
    if refs:
        email["References"] = " ".join(f"<{r}>" for r in refs)
    author = getattr(message, "author_user", None)
    if author is not None and author.username == BOT_USERNAME:
        # RFC 3834: tells the customer's autoresponder not to answer our auto-reply.
        email["Auto-Submitted"] = "auto-replied"
    text = message.text or ""
    email.set_content(text)
    html = clean_html(message.html) if message.html else clean_html(linebreaks(escape(text)))
    email.add_alternative(html, subtype="html")
    return email


def _connect(creds: dict[str, str]) -> smtplib.SMTP:
    host, security = creds["host"], creds["security"]
    if not host:
        raise TransportError("This email channel has no SMTP host.", permanent=True)
    if security not in ("ssl", "starttls", "none"):
        raise TransportError("smtp_security must be ssl, starttls or none.", permanent=True)
    port = (
        int(creds["port"]) if creds["port"].isdigit() else {"ssl": 465, "starttls": 587, "none": 25}[security]
    )
    context = ssl.create_default_context()
    if security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=TIMEOUT)
        if security == "starttls":
            smtp.ehlo()
            smtp.starttls(context=context)
            smtp.ehlo()
    if creds["username"]:
        smtp.login(creds["username"], creds["password"])
    return smtp


def _classify(exc: Exception) -> TransportError:
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{addr}: {code} {msg.decode(errors='replace')[:100]}"
            for addr, (code, msg) in exc.recipients.items()
        )
        return TransportError(f"Recipient refused ({detail}).", permanent=bool(codes) and min(codes) >= 500)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return TransportError(f"The SMTP server does not support this: {exc}", permanent=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        kind = "Authentication refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else "SMTP error"
        return TransportError(f"{kind}: {exc.smtp_code} {msg[:200]}", permanent=exc.smtp_code >= 500)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TransportError(f"The SMTP server's certificate is not valid: {exc}", permanent=True)
    if isinstance(exc, smtplib.SMTPException | OSError | socket.timeout):
        return TransportError(f"Could not reach the SMTP server: {type(exc).__name__}: {exc}")
    return TransportError(f"{type(exc).__name__}: {exc}")


def send(channel: Channel, message) -> str:  # noqa: ANN001
    email = build(channel, message)
    creds = _creds(channel)
    try:
        smtp = _connect(creds)
        try:
            smtp.send_message(email, from_addr=from_address(channel), to_addrs=[str(email["To"])])
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
    except Exception as exc:
        raise _classify(exc) from exc
    return str(email["Message-ID"]).strip("<>")
