"""Raw RFC 5322 message (as fetched from IMAP) → one canonical message.

Email is hostile input: anything may be broken, mislabelled or crafted. Every step here
degrades instead of crashing: unknown charsets decode as UTF-8 with replacement characters,
header values lose CR/LF and other control characters (header injection), a missing or
invalid date becomes the time we received the message, a missing Message-ID becomes a
deterministic hash (so fetching the same message twice stores it once). What cannot be read
at all (not a message, nesting deeper than MAX_DEPTH) raises NormaliseError and goes to the
dead-letter list with the reason. Attachments are metadata only: never decompressed, never
stored inline, never executed. HTML is passed on untouched; the pipeline sanitises it.

Pure: no database, no network. A channel in BCC-log mode is the exception: its messages are
not customer conversations, so `normalise` hands them to `bcc.log_payload` (see bcc.py).

Why the parse is done the way it is (this module is on the ingest hot path). Header values
mean what `email.policy.default` says they mean: RFC 2047 encoded words decoded, raw 8-bit
bytes read as UTF-8, unknown charsets and broken syntax tolerated, and the same MIME tree
(the feedparser reads Content-Type and the boundary through those semantics). Everything we
store depends on it, down to the content hash of a message without a Message-ID, so it must
not change. But the modern policy is slow: every `Message.get` goes through its header
factory, which builds a new header class and runs the grammar-based parser (40–130 µs for a
new sender, date or MIME boundary), and the parser and our walk read headers some 60 times
per message. So a message is parsed with `POLICY`, a compat32 policy: its messages (`_Part`)
keep the raw strings, and its `header_fetch_parse` is `decode_header`, which returns the text
of the header object policy.default would build (`str(header)`). That text is computed
directly for the shapes nearly all values have (plain unstructured text, plain address lists,
plain MIME parameters, dates), by the real header class for anything else (encoded words,
comments, quoting, 8-bit addresses, RFC 2231...), and a bounded cache keeps it for values that
repeat. Every `Message` method thus answers exactly what it answers under policy.default, and
read_message decodes each header it needs once. tests/test_parse_equivalence.py compares the
result field by field with the old policy.default parse, on the fixtures, crafted hostile mail
and generated header values."""

import codecs
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from email import headerregistry
from email import message as email_message
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from email.policy import default as _MODERN
from email.utils import decode_params, format_datetime, getaddresses, parsedate_to_datetime
from typing import Any

from rapport.channels.base import Attachment, Author, CanonicalMessage, NormaliseError, email_external_id
from rapport.channels.models import Channel, ChannelKind, RawPayload

MAX_DEPTH = 16  # real mail nests 3–6 levels; forward chains rarely more than 10
MAX_PARTS = 500
MAX_ATTACHMENTS = 100
MAX_TEXT = 100_000
MAX_HTML = 1_000_000
MAX_HEADER = 2000
MAX_REFERENCES = 50
# Set by the poller on a message too large to fetch whole: only its header was stored.
TRUNCATED_HEADER = "X-Rapport-Truncated"

# Decoded header text by (lower-case name, value). Bounded: hostile mail cannot grow it, long
# values are not kept, a failing parse is not cached (it raises again, as policy.default does).
_CACHED_HEADER_LEN = 1000
_HEADER_CACHE_SIZE = 4096
_HEADER_CACHE: dict[tuple[str, str], str] = {}
# Message._get_params_preserve's answer by decoded header text, and get_content_type's by
# the raw Content-Type value (same bounds).
_PARAMS_CACHE: dict[str, list[tuple[str, Any]]] = {}
_CONTENT_TYPES: dict[str, str] = {}
# parsedate_to_datetime of a Date header's text, recorded when _plain_date made the text.
_DATES: dict[str, dt.datetime] = {}
# The header class policy.default's factory makes for a name: the factory builds a new class
# on every call (up to half the cost of parsing a short header), the class never changes.
_HEADER_CLASSES: dict[str, tuple[type, Any]] = {}
_MAX_HEADER_CLASSES = 256

# Shapes whose policy.default text is computed here. Conservative on purpose: no "=" or "?"
# (so no encoded word), no quoting backslash, no comment, no non-ASCII, no RFC 2231 "*'%";
# anything else goes to the real header class.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QTEXT = r"[!#-\[\]-~]"  # printable ASCII but '"' and '\'
_MAILBOX = re.compile(
    rf'[ \t]*(?:(?:({_ATEXT}+(?: {_ATEXT}+)*) ?|"({_QTEXT}+(?: {_QTEXT}+)*)" ?)?'
    rf"<({_DOT_ATOM}@{_DOT_ATOM})>|({_DOT_ATOM}@{_DOT_ATOM}))[ \t]*"
)
_SPECIALS = frozenset('()<>@,:;."[]')  # RFC 5322 specials: a display name with one is quoted
# A decoded address list in the shape _plain_addresses writes, which getaddresses reads back
# as [(name, address)] without surprises.
_PLAIN_MAILBOX = re.compile(
    rf'(?:({_ATEXT}+(?: {_ATEXT}+)*) <|"({_QTEXT}+(?: {_QTEXT}+)*)" <)?({_DOT_ATOM}@{_DOT_ATOM})(>?)'
)
_TTEXT = r"[A-Za-z0-9!#$&^_`{|}~.+-]"
_MIME_VALUE = re.compile(rf"({_TTEXT}+)(/{_TTEXT}+)?(;|$)")
_MIME_PARAM = re.compile(rf'[ \t]*({_TTEXT}+)=(?:({_TTEXT}+)|"([ !#-\[\]-~]+)")[ \t]*(;|$)')
_CTE = re.compile(rf"{_TTEXT}+")


def _sanitized(text: str) -> str:
    """What BaseHeader.__new__ does to its text: surrogate-escaped 8-bit bytes are read as
    UTF-8, with replacement characters where they are not UTF-8."""
    try:
        text.encode()
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _plain_unstructured(value: str) -> str | None:
    # Without "=?" the unstructured parser keeps every character; the header then turns
    # surrogate-escaped 8-bit bytes into text (BaseHeader.__new__).
    if "=?" in value:
        return None
    return _sanitized(value)


def _plain_date(value: str) -> str | None:
    # DateHeader.parse: the value reformatted, or kept as written when it is no date.
    if not value:
        return ""
    try:
        when = parsedate_to_datetime(value)
    except ValueError:
        return _sanitized(value)
    except Exception:  # the real class raises it: let it
        return None
    try:
        text = format_datetime(when)
    except Exception:
        return None
    # Reading that text again gives `when` back (RFC 5322 form, four-digit year, +hhmm or
    # -0000 for a naive time): remembered so that _date need not parse it a second time.
    if len(_DATES) >= _HEADER_CACHE_SIZE:
        _DATES.clear()
    _DATES[text] = when
    return text


def _plain_addresses(value: str) -> str | None:
    # AddressHeader.parse re-serialises each mailbox: 'name <addr>' (name quoted if it has a
    # special) or the bare address, joined by ', '.
    out = []
    pos, end = 0, len(value)
    while True:
        m = _MAILBOX.match(value, pos)
        if m is None:
            return None
        phrase, quoted, angle, bare = m.groups()
        name = phrase or quoted
        if quoted is not None and "=?" in quoted:
            return None
        if name:
            if not _SPECIALS.isdisjoint(name):
                name = f'"{name}"'
            out.append(f"{name} <{angle}>")
        else:
            out.append(angle or bare)
        pos = m.end()
        if pos == end:
            return ", ".join(out)
        if value[pos] != ",":
            return None
        pos += 1


def _plain_pairs(text: str) -> list[tuple[str, str]] | None:
    """getaddresses([text]) for a plain address list ('name <a@b>', '"x, y" <a@b>', 'a@b'
    joined by ', '), None for anything else."""
    out = []
    pos, end = 0, len(text)
    while True:
        m = _PLAIN_MAILBOX.match(text, pos)
        if m is None:
            return None
        phrase, quoted, addr, close = m.groups()
        name = phrase or quoted
        if bool(name) != bool(close):
            return None
        out.append((name or "", addr))
        pos = m.end()
        if pos == end:
            return out
        if not text.startswith(", ", pos):
            return None
        pos += 2


def _plain_mime(value: str, with_subtype: bool) -> str | None:
    # ParameterizedMIMEHeader: the value as written, then the parameters re-serialised by
    # MimeParameters.__str__ (always quoted, "; "-separated, a repeated name keeps its first).
    m = _MIME_VALUE.match(value)
    if m is None or (m[2] is not None) != with_subtype:
        return None
    if not m[3]:
        return value
    params: dict[str, str] = {}
    pos = m.end()
    while value[pos:].strip(" \t"):
        p = _MIME_PARAM.match(value, pos)
        if p is None:
            return None
        quoted = p[3]
        if quoted is not None and "=?" in quoted:
            return None
        params.setdefault(p[1], p[2] if quoted is None else quoted)
        pos = p.end()
        if not p[4]:
            break
    head = value[: m.end()]
    if not params:
        return head
    return head + " " + "; ".join(f'{k}="{v}"' for k, v in params.items())


def _plain_cte(value: str) -> str | None:
    return value if _CTE.fullmatch(value) else None


_SHAPES: dict[type, Any] = {
    headerregistry.UnstructuredHeader: _plain_unstructured,
    headerregistry.UniqueUnstructuredHeader: _plain_unstructured,
    headerregistry.DateHeader: _plain_date,
    headerregistry.UniqueDateHeader: _plain_date,
    headerregistry.AddressHeader: _plain_addresses,
    headerregistry.UniqueAddressHeader: _plain_addresses,
    headerregistry.ContentTypeHeader: lambda v: _plain_mime(v, True),
    headerregistry.ContentDispositionHeader: lambda v: _plain_mime(v, False),
    headerregistry.ContentTransferEncodingHeader: _plain_cte,
}


def _header_class(key: str) -> tuple[type, Any]:
    found = _HEADER_CLASSES.get(key)
    if found is None:
        factory: Any = _MODERN.header_factory
        base = factory.registry.get(key, factory.default_class)
        found = (factory[key], _SHAPES.get(base))
        if len(_HEADER_CLASSES) < _MAX_HEADER_CLASSES and len(key) <= 100:
            _HEADER_CLASSES[key] = found
    return found


def decode_header(name: str, value: Any) -> str:
    """`str(policy.default.header_fetch_parse(name, value))`, the text policy.default gives a
    header, raising what it raises (its parsers have had crash bugs on crafted input)."""
    if type(value) is not str:
        if hasattr(value, "name"):  # a header object, set by code under policy.default
            return str(value)
        value = str(value)  # anything else set by code (a compat32 Header): its text
    if "\r" in value or "\n" in value:  # header_fetch_parse unfolds by dropping CR and LF
        value = value.replace("\r", "").replace("\n", "")
    key = name.lower()
    found = _HEADER_CACHE.get((key, value))
    if found is not None:
        return found
    cls, shape = _header_class(key)
    if shape is not None:
        found = shape(value)
    if found is None:
        found = str(cls(name, value))
    if len(value) <= _CACHED_HEADER_LEN:
        if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[(key, value)] = found
    return found


def _params(value: str) -> list[tuple[str, Any]]:
    """Message._get_params_preserve on a header's text."""
    found = _PARAMS_CACHE.get(value)
    if found is None:
        params = []
        for p in email_message._parseparam(value):  # type: ignore[attr-defined]
            try:
                name, val = p.split("=", 1)
                name = name.strip()
                val = val.strip()
            except ValueError:
                name = p.strip()
                val = ""
            params.append((name, val))
        found = decode_params(params)
        if len(value) <= _CACHED_HEADER_LEN:
            if len(_PARAMS_CACHE) >= _HEADER_CACHE_SIZE:
                _PARAMS_CACHE.clear()
            _PARAMS_CACHE[value] = found
    return list(found)


_MISSING = object()


class _Part(Message):
    """A message or MIME part of a `POLICY` parse: raw header strings, read with
    policy.default's semantics (see the module docstring)."""

    def get_content_type(self) -> str:
        # The feedparser asks each part about five times, walk once more. The answer is a
        # function of the first Content-Type value (or of the default type when there is none).
        if self.policy is not POLICY:
            return super().get_content_type()
        for name, value in self._headers:  # type: ignore[attr-defined]
            if name.lower() == "content-type":
                found = _CONTENT_TYPES.get(value) if type(value) is str else None
                if found is None:
                    found = super().get_content_type()
                    if type(value) is str and len(value) <= _CACHED_HEADER_LEN:
                        if len(_CONTENT_TYPES) >= _HEADER_CACHE_SIZE:
                            _CONTENT_TYPES.clear()
                        _CONTENT_TYPES[value] = found
                return found
        return self.get_default_type()

    def _get_params_preserve(self, failobj: Any, header: str) -> Any:
        # The parameters of a header are a function of its text: parse them once per text
        # (get_param, get_boundary, get_content_charset and get_filename all come here).
        value = self.get(header, _MISSING)
        if value is _MISSING:
            return failobj
        if type(value) is not str:  # a part made by code under another policy
            return Message._get_params_preserve(self, failobj, header)  # type: ignore[attr-defined]
        return _params(value)

    def get_param(
        self, param: str, failobj: Any = None, header: str = "content-type", unquote: bool = True
    ) -> Any:
        # Message.get_param, looking the header up once instead of twice ("not in", then get).
        params = self._get_params_preserve(_MISSING, header)
        if params is _MISSING:
            return failobj
        param = param.lower()
        for k, v in params:
            if k.lower() == param:
                return email_message._unquotevalue(v) if unquote else v  # type: ignore[attr-defined]
        return failobj


class _RawPolicy(Compat32):
    """compat32 parsing (raw strings kept), policy.default meaning on every read."""

    message_factory = _Part

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        return decode_header(name, value)


POLICY = _RawPolicy()

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u2028\u2029\u0085]")
_ONE_LINE = re.compile(r"[!-~]+(?: [!-~]+)*")
_MSGID = re.compile(r"<([^<>\s]{1,300})>")
_UNSAFE_NAME = re.compile(r"[^\w .,()\[\]+@=-]", re.UNICODE)


def clean_header(value: Any, limit: int = MAX_HEADER) -> str:
    """A header value fit for one line: CR/LF (raw or decoded from =?..?= words) and other
    control characters become spaces, so nothing downstream can inject a header."""
    text = str(value or "")
    if _ONE_LINE.fullmatch(text):  # already fit (most values): what the steps below leave
        return text[:limit]
    text = _CONTROL.sub(" ", text).replace("\t", " ")
    return " ".join(text.split())[:limit]


class _Headers:
    """The header fields of one message, each looked up and decoded once. Any message works:
    one of ours, or one parsed under policy.default (values are decoded here, not by it)."""

    def __init__(self, msg: Message) -> None:
        self.fields = [(name.lower(), name, value) for name, value in msg.raw_items()]
        self.first: dict[str, tuple[str, Any]] = {}
        for key, name, value in self.fields:
            self.first.setdefault(key, (name, value))

    def raw(self, name: str, limit: int = MAX_HEADER) -> str:
        """As the sender wrote it: message ids must stay the strings the other side put in
        its References (the policy's parser may rewrite an odd-looking id)."""
        found = self.first.get(name.lower())
        return clean_header(str(found[1]), limit) if found else ""

    def text(self, name: str) -> str:
        found = self.first.get(name.lower())
        if found is None:
            return ""
        try:
            value = decode_header(*found)
        except Exception:  # the policy's header parsers have had crash bugs on crafted input
            value = str(found[1])
        return clean_header(value)

    def all(self, name: str) -> list[str]:
        key = name.lower()
        raw = [(k, v) for lower, k, v in self.fields if lower == key]
        try:
            values = [decode_header(k, v) for k, v in raw]
        except Exception:
            values = [v for _, v in raw]
        return [clean_header(v) for v in values[:20]]

    def addresses(self, *names: str) -> list[tuple[str, str]]:
        """[(display name, address)] from the given headers; malformed entries are skipped."""
        values = tuple(v for v in (self.text(name) for name in names) if v)
        # A function of the texts, which repeat (our own address in To and Delivered-To,
        # regular correspondents in From).
        cacheable = sum(map(len, values)) <= _CACHED_HEADER_LEN
        found = _ADDRESSES.get(values) if cacheable else None
        if found is None:
            found = _addresses(values)
            if cacheable:
                if len(_ADDRESSES) >= _HEADER_CACHE_SIZE:
                    _ADDRESSES.clear()
                _ADDRESSES[values] = found
        return list(found)


def _addresses(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """[(display name, address)] from header texts; malformed entries are skipped."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        plain = _plain_pairs(value)
        if plain is None:  # anything unusual: the whole list as getaddresses reads it
            try:
                pairs = getaddresses(list(values))
            except Exception:
                return []
            break
        pairs.extend(plain)
    found: list[tuple[str, str]] = []
    for name, addr in pairs:
        addr = clean_header(addr, 320).strip("<>").strip()
        if "@" in addr and " " not in addr and addr.count("@") == 1:
            found.append((clean_header(name, 200), addr))
    return found


_ADDRESSES: dict[tuple[str, ...], list[tuple[str, str]]] = {}


def message_ids(value: str) -> list[str]:
    """Message-ids in a References/In-Reply-To header, without angle brackets (that is how
    the pipeline stores external ids)."""
    if not value:
        return []
    ids = _MSGID.findall(value)
    if not ids and value.strip() and " " not in value.strip():
        ids = [value.strip().strip("<>")]
    return list(dict.fromkeys(filter(None, ids)))


def _charset(part: Message) -> str:
    """The part's declared charset if Python knows it, else UTF-8 (whatever fails: an unknown
    or malformed charset, a hostile Content-Type)."""
    try:
        charset = part.get_content_charset() or "utf-8"
        codecs.lookup(charset)
        return charset
    except Exception:  # noqa: BLE001 - any failure reads the part as UTF-8
        return "utf-8"


def decode_text(part: Message, charset: str | None = None) -> str:
    try:
        decoded = part.get_payload(decode=True)
    except Exception:
        decoded = None
    # decode=True gives bytes for a leaf part and None for a multipart one.
    if isinstance(decoded, bytes):
        data = decoded
    else:
        payload = part.get_payload()
        data = payload.encode("utf-8", "replace") if isinstance(payload, str) else b""
    data = data[: MAX_HTML * 4]
    try:
        text = data.decode(charset or _charset(part), errors="replace")
    except Exception:  # a codec that exists but fails on this input in another way
        text = data.decode("utf-8", errors="replace")
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """No directories, no control or shell characters, no leading dots, at most 255 chars."""
    name = unicodedata.normalize("NFC", clean_header(name, 1000))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    return name[:255] or fallback


def _payload_size(part: Message) -> int:
    """Decoded size without keeping the bytes; a compressed archive is never opened."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return len(data)
    payload = part.get_payload()
    return len(payload) if isinstance(payload, str) else 0


@dataclass
class Body:
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    parts: int = 0
    forwarded: list[Message] = field(default_factory=list)


def _content_type(part: Message) -> str:
    try:
        return clean_header(part.get_content_type(), 100).lower() or "application/octet-stream"
    except Exception:
        return "application/octet-stream"


def _is_attachment(part: Message) -> bool:
    try:
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename()
    except Exception:
        return True
    return disposition == "attachment" or bool(filename)


def _leaf(part: Message, is_text: bool) -> tuple[bool, str, str | None]:
    """(attachment?, file name, charset) of a leaf part, as walk reads them: a text part is
    shown unless it is an attachment, anything else is an attachment. A function of the
    part's header fields, which repeat across messages (the text parts of one mail client),
    so it is cached by them when they are a few plain strings."""
    key: tuple[Any, ...] | None = None
    if type(part) is _Part and part.policy is POLICY:
        fields = part._headers  # type: ignore[attr-defined]
        if len(fields) <= 8:
            key = (is_text, *fields)
            size = 0
            for name, value in fields:
                if type(value) is not str:
                    key = None
                    break
                size += len(name) + len(value)
            if size > _CACHED_HEADER_LEN:
                key = None
            found = _LEAVES.get(key) if key is not None else None
            if found is not None:
                return found
    if is_text and not _is_attachment(part):
        found = (False, "", _charset(part))
    else:
        try:
            filename = part.get_filename() or ""
        except Exception:
            filename = ""
        found = (True, filename, None)
    if key is not None:
        if len(_LEAVES) >= _HEADER_CACHE_SIZE:
            _LEAVES.clear()
        _LEAVES[key] = found
    return found


_LEAVES: dict[tuple[Any, ...], tuple[bool, str, str | None]] = {}


def walk(part: Message, body: Body, depth: int = 0) -> None:
    """Collect text, HTML and attachment metadata; refuse absurd nesting rather than
    recursing without bound (a 100-deep multipart is an attack, not a letter)."""
    if depth > MAX_DEPTH:
        raise NormaliseError(f"The message nests MIME parts more than {MAX_DEPTH} levels deep.")
    body.parts += 1
    if body.parts > MAX_PARTS:
        raise NormaliseError(f"The message has more than {MAX_PARTS} MIME parts.")
    ctype = _content_type(part)
    if part.is_multipart():
        children = part.get_payload()
        if ctype == "message/rfc822":
            # A forwarded message: its own parts belong to it, not to this message's body;
            # we show its text as a quote and keep the message for the BCC log.
            for child in children if isinstance(children, list) else []:
                if isinstance(child, Message):
                    body.forwarded.append(child)
                    inner = Body(parts=body.parts)
                    walk(child, inner, depth + 1)
                    body.parts = inner.parts
                    body.attachments.extend(inner.attachments)
                    if inner.text:
                        body.text.append("\n\n---------- Forwarded message ----------\n" + inner.text[0])
            return
        if ctype == "multipart/alternative" and isinstance(children, list):
            # Parts are in increasing order of preference; keep one of each kind.
            alt = Body(parts=body.parts)
            for child in children:
                if isinstance(child, Message):
                    walk(child, alt, depth + 1)
            body.parts = alt.parts
            if alt.text:
                body.text.append(alt.text[0])
            if alt.html:
                body.html.append(alt.html[-1])
            body.attachments.extend(alt.attachments)
            body.forwarded.extend(alt.forwarded)
            return
        for child in children if isinstance(children, list) else []:
            if isinstance(child, Message):
                walk(child, body, depth + 1)
        return
    is_text = ctype in ("text/plain", "", "text/html")
    attached, filename, charset = _leaf(part, is_text)
    if not attached:
        (body.html if ctype == "text/html" else body.text).append(decode_text(part, charset))
        return
    if len(body.attachments) >= MAX_ATTACHMENTS:
        return
    body.attachments.append(
        Attachment(
            filename=safe_filename(filename, fallback=f"part-{body.parts}"),
            content_type=ctype,
            size=_payload_size(part),
        )
    )


def parse(raw: bytes) -> Message:
    if not raw or raw.isspace():  # bytes.isspace: what strip() would strip, without a copy
        raise NormaliseError("The message is empty.")
    try:
        msg = BytesParser(policy=POLICY).parsebytes(raw)
    except RecursionError:
        raise NormaliseError("The message nests MIME parts too deeply to read.")
    except Exception as exc:
        raise NormaliseError(f"The message cannot be parsed as email ({type(exc).__name__}).")
    if not len(msg):  # no header fields
        raise NormaliseError("The data has no email headers.")
    return msg


def _date(value: str, received: dt.datetime) -> dt.datetime:
    if not value:
        return received
    when = _DATES.get(value)
    if when is None:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return received
    if when is None:
        return received
    if when.tzinfo is None:  # "-0000": the sender did not know its zone; RFC 5322 says UTC
        when = when.replace(tzinfo=dt.UTC)
    # A date far in the future would sort above everything forever.
    if when > received + dt.timedelta(days=1) or when.year < 1980:
        return received
    return when


@dataclass
class Parsed:
    """Everything the connector reads from one message (also used by bcc.py and transport.py)."""

    message_id: str
    external_id: str
    in_reply_to: str
    references: tuple[str, ...]
    subject: str
    sender: tuple[str, str]
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    reply_to: list[tuple[str, str]]
    envelope_to: list[str]
    sent_at: dt.datetime
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    forwarded: list[Message]
    truncated: bool
    auto_submitted: str
    auth_results: list[str]


def read(raw: bytes, *, received: dt.datetime, truncated_size: int | None = None) -> Parsed:
    return read_message(parse(raw), received=received, truncated_size=truncated_size)


def read_message(msg: Message, *, received: dt.datetime, truncated_size: int | None = None) -> Parsed:
    body = Body()
    if truncated_size is None:
        walk(msg, body)
    text = "\n\n".join(t for t in body.text if t.strip())[:MAX_TEXT]
    html = "\n".join(body.html)[:MAX_HTML]
    if truncated_size is not None:
        text = (
            f"[This message is {truncated_size / 1_000_000:.1f} MB, more than this channel fetches; "
            "only its header was stored. It is still in the mailbox.]"
        )
    heads = _Headers(msg)
    senders = heads.addresses("From")
    sender = senders[0] if senders else ("", "")
    subject = heads.text("Subject")[:300]
    date_raw = heads.text("Date")
    message_id = next(iter(message_ids(heads.raw("Message-ID"))), "")
    external_id = email_external_id(
        message_id=message_id, from_=sender[1], date=date_raw, subject=subject, body=text or html
    )
    envelope = [a for _, a in heads.addresses("Delivered-To", "X-Original-To", "Envelope-To")]
    return Parsed(
        message_id=message_id,
        external_id=external_id,
        in_reply_to=next(iter(message_ids(heads.raw("In-Reply-To"))), ""),
        references=tuple(message_ids(heads.raw("References", 20_000))[-MAX_REFERENCES:]),
        subject=subject,
        sender=sender,
        to=heads.addresses("To"),
        cc=heads.addresses("Cc"),
        reply_to=heads.addresses("Reply-To"),
        envelope_to=envelope,
        sent_at=_date(date_raw, received),
        text=text,
        html=html,
        attachments=tuple(body.attachments),
        forwarded=body.forwarded,
        truncated=truncated_size is not None,
        auto_submitted=heads.text("Auto-Submitted").lower()[:50],
        auth_results=heads.all("Authentication-Results"),
    )


def to_canonical(p: Parsed, *, raw_ref: int | None = None) -> CanonicalMessage:
    profile: dict[str, Any] = {}
    if p.reply_to and p.reply_to[0][1].lower() != p.sender[1].lower():
        profile["reply_to"] = p.reply_to[0][1]
    return CanonicalMessage(
        channel_kind=ChannelKind.EMAIL,
        external_id=p.external_id,
        author=Author(kind="email", value=p.sender[1], display_name=p.sender[0], profile=profile),
        text=p.text,
        html=p.html,
        subject=p.subject,
        sent_at=p.sent_at,
        in_reply_to=p.in_reply_to,
        references=p.references,
        attachments=p.attachments,
        raw_ref=raw_ref,
    )


def is_bcc_log(channel: Channel) -> bool:
    return (channel.settings or {}).get("mode") == "bcc_log"


def read_payload(payload: RawPayload) -> Parsed:
    size = str((payload.headers or {}).get(TRUNCATED_HEADER) or "")
    # isdecimal, not isdigit: int() rejects digits such as "²" that isdigit accepts.
    truncated = int(size) if size.isdecimal() else None
    return read(payload.body_bytes, received=payload.received_at, truncated_size=truncated)


def normalise(channel: Channel, payload: RawPayload) -> list[CanonicalMessage]:
    parsed = read_payload(payload)
    if is_bcc_log(channel):
        from rapport.channels.connectors.email import bcc

        bcc.log_payload(channel, payload, parsed)
        return []
    return [to_canonical(parsed, raw_ref=payload.pk)]
