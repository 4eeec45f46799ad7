"""Attachments an agent can open: fetch the bytes behind `Message.attachments`, check them,
keep them, and decide how they may be shown.

    message stored ─► enqueue_for_message(ids): one pending StoredMedia row per attachment,
                      in the caller's transaction; the fetch task is queued after commit
    task ─► the connector's media.source() says where the bytes are (URL + credentials, or
            the bytes themselves for email) ─► streamed download over a pinned connection,
            aborted past the size cap ─► sniffed ─► stored / quarantined (with a reason) /
            retried with backoff / failed (with the error)

Connectors that need credentials or an extra API call carry a `media.py` with
`source(channel, message, index, attachment) -> Source`; the others' attachment URLs are
fetched as they are, without credentials. The recovery sweep (`rapport fetch_media`) picks
up rows whose task was lost.

Nothing the sender says about a file is trusted: the name is sanitised, the type is sniffed
from the bytes, and only PNG/JPEG/GIF/WebP recognised by their magic bytes are ever shown
inline. Everything else is served as an `application/octet-stream` download with `nosniff`
and a sandboxing CSP (see media_views.py)."""

import datetime as dt
import hashlib
import http.client
import io
import json
import logging
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import import_module
from typing import IO, Any, Protocol
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from rapport.accounts.models import User
from rapport.channels import net
from rapport.channels.base import TransportError
from rapport.channels.connectors.email.inbound import safe_filename
from rapport.channels.models import MediaState, StoredMedia
from rapport.channels.registry import CONNECTORS
from rapport.core.errors import ActionError
from rapport.core.rows import insert_rows

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
# An archive is a bomb when it declares more than this unpacked, more entries than
# MAX_ENTRIES, or more than the download cap at a ratio above MAX_RATIO: nothing legitimate
# sent to a support inbox unpacks to a gigabyte.
DEFAULT_MAX_UNPACKED = 1024 * 1024 * 1024
MAX_ENTRIES = 10_000
MAX_RATIO = 100
MAX_ATTEMPTS = 5
BACKOFF_SECONDS = (60, 300, 1800, 7200)
# A claimed row is not due again until this has passed: a worker killed mid-download leaves
# it pending, and the sweep takes it up after the lease.
LEASE = dt.timedelta(minutes=15)
MAX_REDIRECTS = 3
TIMEOUT = 30.0
CHUNK = 64 * 1024
MAX_PER_MESSAGE = 100

INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Types a browser (or an office suite) may execute or script when opened in place.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/x-shockwave-flash",
        "application/hta",
    }
)
ACTIVE_EXTENSIONS = frozenset(
    {"html", "htm", "xhtml", "xht", "shtml", "svg", "svgz", "xml", "xsl", "xslt", "js", "mjs", "hta", "swf"}
)
# Programs: harmless to us, but the classic way to get an agent to run something.
EXECUTABLE_TYPES = frozenset({"application/x-msdownload", "application/x-executable", "application/x-msi"})
EXECUTABLE_EXTENSIONS = frozenset(
    {"exe", "com", "scr", "bat", "cmd", "pif", "msi", "dll", "ps1", "vbs", "vbe", "wsf", "jar", "lnk", "cpl"}
)
# OOXML, OpenDocument, EPUB and Java archives are zip files: their declared type is kept.
ZIP_BASED = ("application/vnd.openxmlformats", "application/vnd.oasis.opendocument", "application/epub")


def max_bytes() -> int:
    return int(getattr(settings, "RAPPORT_MEDIA_MAX_BYTES", DEFAULT_MAX_BYTES))


def max_unpacked() -> int:
    return int(getattr(settings, "RAPPORT_MEDIA_MAX_UNPACKED", DEFAULT_MAX_UNPACKED))


# --- what a connector tells us ------------------------------------------------------------


@dataclass
class Source:
    """Where an attachment's bytes are: a URL with the headers that authorise the request,
    or the bytes themselves (email carries its attachments)."""

    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None


class MediaError(TransportError):
    """The attachment cannot be fetched. `permanent`: retrying cannot help (no media id, the
    platform says 404, credentials refused); otherwise it is retried with backoff."""


def _connector_media(kind: str) -> Any:
    package = CONNECTORS.get(kind)
    if package is None:
        return None
    try:
        return import_module(f"{package}.media")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(package):
            return None
        raise


def plain_source(attachment: dict[str, Any]) -> Source:
    """The attachment's URL as it is (Messenger/Instagram payload URLs, Mastodon and X media
    URLs are public CDN addresses)."""
    url = str(attachment.get("url") or "")
    if not url.startswith(("https://", "http://")):
        raise MediaError("The attachment has no address to fetch it from.", permanent=True)
    return Source(url=url)


# --- the network seam ---------------------------------------------------------------------


class Stream(Protocol):
    status: int
    headers: dict[str, str]  # lower-case names

    def read(self, size: int) -> bytes: ...

    def close(self) -> None: ...


class _HTTPStream:
    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._conn, self._response = conn, response
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}

    def read(self, size: int) -> bytes:
        try:
            return self._response.read(size)
        except (OSError, http.client.HTTPException) as exc:
            raise MediaError(f"The download from {self._conn.host} broke off: {exc}")

    def close(self) -> None:
        self._conn.close()


def _network(url: str, headers: dict[str, str], timeout: float) -> Stream:
    """GET over rapport.channels.net's pinned connection (resolved once, address checked, no
    redirects followed), answered as a stream: safe_get would buffer 25 MB in memory."""
    allow_private = getattr(settings, "RAPPORT_WEBHOOK_ALLOW_PRIVATE", False)
    conn, path = net.pinned_connection(url, timeout, allow_private=allow_private)
    try:
        conn.request("GET", path, headers=headers)
        return _HTTPStream(conn, conn.getresponse())
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise MediaError(f"Could not reach {conn.host}: {exc}")


Transport = Callable[[str, dict[str, str], float], Stream]
_transport: net.Seam[Transport] = net.Seam(_network)
use_transport = _transport.replaced  # tests: `with use_transport(fake): …`


def _status_error(status: int, host: str) -> MediaError:
    if status == 429 or status >= 500:
        return MediaError(f"{host} answered HTTP {status}; will retry.")
    # 401/403: the token is missing, expired or revoked; 404/410: the platform no longer has
    # it (WhatsApp media URLs expire after minutes, Twilio media can be deleted).
    return MediaError(f"{host} answered HTTP {status}.", permanent=True)


def download(url: str, headers: dict[str, str], sink: IO[bytes], *, limit: int) -> dict[str, str]:
    """Stream `url` into `sink`, at most `limit` bytes (net.ResponseTooLarge past it, whether
    declared or read). Redirects are followed by hand, each target resolved, checked and
    pinned in its turn; credentials are dropped when a redirect leaves the host (Twilio
    and WhatsApp hand media over to a CDN that must not see our token)."""
    for _ in range(MAX_REDIRECTS + 1):
        stream = _transport(url, {"User-Agent": "Rapport/1", **headers}, TIMEOUT)
        try:
            if stream.status in (301, 302, 303, 307, 308):
                target = urljoin(url, stream.headers.get("location", ""))
                if target == url or not stream.headers.get("location"):
                    raise MediaError(
                        "The platform answered a redirect without a usable target.", permanent=True
                    )
                old, new = urlsplit(url), urlsplit(target)
                if (old.scheme, old.netloc) != (new.scheme, new.netloc):
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                url = target
                continue
            if not 200 <= stream.status < 300:
                raise _status_error(stream.status, urlsplit(url).hostname or "the platform")
            declared = stream.headers.get("content-length", "")
            if declared.isdecimal() and int(declared) > limit:
                raise net.ResponseTooLarge(limit)
            total = 0
            while chunk := stream.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise net.ResponseTooLarge(limit)
                sink.write(chunk)
            return stream.headers
        finally:
            stream.close()
    raise MediaError(f"More than {MAX_REDIRECTS} redirects.", permanent=True)


def get_json(url: str, headers: dict[str, str]) -> Any:
    """A small JSON answer through the same seam (WhatsApp's GET /{media-id})."""
    buffer = io.BytesIO()
    download(url, headers, buffer, limit=net.MAX_RESPONSE)
    try:
        return json.loads(buffer.getvalue().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise MediaError("The platform's media answer is not JSON.", permanent=True)


# --- what the bytes are -------------------------------------------------------------------

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"#!AMR", "audio/amr"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
    (b"%!PS", "application/postscript"),
    (b"{\\rtf", "application/rtf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # .doc/.xls/.msg
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
)
_MARKUP = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<script",
    b"<iframe",
    b"<svg",
    b"<?xml",
    b"<!--",
)


def sniff(head: bytes) -> str:
    """The type the first bytes prove, or "" when they prove none (text, unknown binary)."""
    for magic, ctype in _MAGIC:
        if head.startswith(magic):
            return ctype
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}[head[8:12]]
    if head[4:8] == b"ftyp":
        return "audio/mp4" if head[8:11] == b"M4A" else "video/mp4"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(_MARKUP) or b"<svg" in text[:1024] or b"<script" in text[:1024]:
        # Browsers sniff markup anywhere near the start; so do we.
        if b"<svg" in text:
            return "image/svg+xml"
        return "text/xml" if text.startswith(b"<?xml") else "text/html"
    try:
        head.decode("utf-8")
        return "text/plain" if b"\x00" not in head else ""
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the sample is still text.
        return "text/plain" if exc.start >= len(head) - 3 and b"\x00" not in head else ""


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def active_reason(sniffed: str, declared: str, filename: str) -> str:
    """Why the file could run script when opened, or "" — any one of bytes, declared type or
    name is enough: a browser or desktop may go by any of them."""
    declared = declared.split(";", 1)[0].strip().lower()
    for label, value in (("content", sniffed), ("declared type", declared)):
        if value in ACTIVE_TYPES:
            return f"Active content ({value}, by its {label}): kept, served only as a download."
    ext = _extension(filename)
    if ext in ACTIVE_EXTENSIONS:
        return f"Active content (a .{ext} file): kept, served only as a download."
    if sniffed in EXECUTABLE_TYPES or declared in EXECUTABLE_TYPES or ext in EXECUTABLE_EXTENSIONS:
        return "A program: kept, served only as a download; do not run it unless you expected it."
    return ""


def _gigabytes(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"


def _bomb(unpacked: int, packed: int) -> bool:
    """More than the unpacked limit, or a ratio no real document reaches (text and logs
    compress 5-20 times; a run of zeros 1000 times) past the download cap."""
    return unpacked > max_unpacked() or (unpacked > max_bytes() and unpacked > MAX_RATIO * max(packed, 1))


def archive_reason(sniffed: str, fileobj: IO[bytes], size: int) -> str:
    """Why an archive is a bomb, from what it declares (never by unpacking it)."""
    if sniffed == "application/zip":
        try:
            with zipfile.ZipFile(fileobj) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            return ""  # not readable as a zip: stored as the opaque file it is
        if len(infos) > MAX_ENTRIES:
            return f"Archive bomb: {len(infos)} entries (more than {MAX_ENTRIES})."
        unpacked = sum(max(0, i.file_size) for i in infos)
        if _bomb(unpacked, size):
            return f"Archive bomb: declares {_gigabytes(unpacked)} uncompressed from {_gigabytes(size)}."
        nested = [i.filename for i in infos if i.filename.lower().endswith((".zip", ".gz", ".7z", ".rar"))]
        if len(nested) > 16:
            return f"Archive bomb: {len(nested)} nested archives."
    elif sniffed == "application/gzip" and size >= 4:
        # ISIZE, the last four bytes, is the unpacked size modulo 4 GiB; the ratio guards the
        # wrap-around (deflate cannot compress better than about 1:1032).
        fileobj.seek(size - 4)
        (unpacked,) = struct.unpack("<I", fileobj.read(4))
        if _bomb(unpacked, size) or (unpacked == 0 and size > 1024 * 1024):
            return f"Archive bomb: declares {_gigabytes(unpacked)} uncompressed from {_gigabytes(size)}."
    return ""


# --- enqueue, fetch, retry ----------------------------------------------------------------


def _with_attachments(messages: Iterable[Any]) -> dict[int, Any]:
    """id → attachments of the inbound messages given (as ids or as Message objects) that
    have attachments, as stored. bulk_create does not set ids on every database, so objects
    without one are found by their (channel, external id), the key ingest makes unique, in
    the same read; objects without attachments are skipped without a query."""
    from rapport.conversations.models import Direction, Message

    ids: list[int] = []
    keys: dict[int, list[str]] = {}
    for m in messages:
        if isinstance(m, int):
            ids.append(m)
        elif m.attachments and m.pk:
            ids.append(m.pk)
        elif m.attachments and m.channel_id and m.external_id:
            keys.setdefault(m.channel_id, []).append(m.external_id)
    inbound = Message.objects.filter(direction=Direction.INBOUND).exclude(attachments=[])
    found: dict[int, Any] = {}
    if ids:
        found.update(inbound.filter(pk__in=ids).values_list("pk", "attachments"))
    # One IN list per channel (the ingest batch's rows, under its write lock): an OR of
    # (channel, external id) pairs cost more to compile than to run. The `NOT external_id
    # = ''` term is the unique index's own condition, so the database uses that index.
    for channel_id, external_ids in keys.items():
        for start in range(0, len(external_ids), 500):
            chunk = external_ids[start : start + 500]
            found.update(
                inbound.filter(channel_id=channel_id, external_id__in=chunk)
                .exclude(external_id="")
                .values_list("pk", "attachments")
            )
    return found


def enqueue_for_message(messages: int | Iterable[Any]) -> int:
    """One pending row per attachment of these inbound messages (ids or Message objects;
    idempotent: a message seen twice adds nothing), then the fetch task after the caller's
    transaction commits. Call it in the transaction that stores the messages: the rows commit
    with them, so a lost task is only a delay (the sweep finds the rows). Returns the number
    of rows created."""
    rows = []
    for pk, attachments in _with_attachments([messages] if isinstance(messages, int) else messages).items():
        for index, att in enumerate(attachments[:MAX_PER_MESSAGE] if isinstance(attachments, list) else []):
            if not isinstance(att, dict):
                continue
            declared = str(att.get("content_type") or "")[:100]
            size = att.get("size")
            rows.append(
                StoredMedia(
                    message_id=pk,
                    index=index,
                    filename=safe_filename(
                        str(att.get("filename") or ""), fallback=f"attachment-{index + 1}"
                    ),
                    declared_type=declared,
                    size=size if isinstance(size, int) and size > 0 else 0,
                )
            )
    if not rows:
        return 0
    # One prepared INSERT … ON CONFLICT DO NOTHING: a batch's rows, without compiling each.
    insert_rows(StoredMedia, rows, ignore_conflicts=True)
    messages = sorted({r.message_id for r in rows})
    transaction.on_commit(lambda: _queue(messages))
    return len(rows)


QUEUE_CHUNK = 25  # messages per fetch job: a slow download holds up at most this many


def _queue(message_ids: list[int], *, after: dt.datetime | None = None) -> None:
    """One fetch job per QUEUE_CHUNK messages (each queued job is a write in the database
    queue; an ingest batch queues its messages together), deferred to `after` for a retry."""
    from rapport.channels.tasks import fetch_messages_media

    task = fetch_messages_media
    if after is not None:
        if not task.get_backend().supports_defer:
            return  # backends that cannot defer leave the retry to the sweep (`rapport fetch_media`)
        task = task.using(run_after=after)
    for start in range(0, len(message_ids), QUEUE_CHUNK):
        chunk = message_ids[start : start + QUEUE_CHUNK]
        try:
            task.enqueue(chunk)
        except Exception:
            log.exception("could not queue the media fetch of messages %s; the sweep will", chunk)


def _claim(row: StoredMedia) -> bool:
    """Compare-and-set on the attempt count: of two workers, one fetches."""
    won = StoredMedia.objects.filter(pk=row.pk, state=MediaState.PENDING, attempts=row.attempts).update(
        attempts=F("attempts") + 1, next_attempt_at=timezone.now() + LEASE
    )
    if won:
        row.attempts += 1
    return bool(won)


def fetch_message(message_id: int) -> int:
    """Fetch the due attachments of one message; returns how many are now stored or
    quarantined. Rows still pending (a transient error) are retried by a deferred task."""
    rows = list(
        StoredMedia.objects.filter(
            message_id=message_id, state=MediaState.PENDING, next_attempt_at__lte=timezone.now()
        ).select_related("message", "message__channel", "message__raw_payload")
    )
    done = sum(fetch_one(row) for row in rows)
    later = (
        StoredMedia.objects.filter(message_id=message_id, state=MediaState.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if later is not None and rows:
        _queue([message_id], after=later)
    return done


def fetch_due(limit: int = 200) -> int:
    """The recovery sweep: every due pending row, whatever happened to its task."""
    due = (
        StoredMedia.objects.filter(state=MediaState.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("message_id", flat=True)[:limit]
    )
    return sum(fetch_message(pk) for pk in dict.fromkeys(due))


def fetch_one(row: StoredMedia) -> bool:
    """Fetch one claimed attachment; True when it ends stored or quarantined."""
    if not _claim(row):
        return False
    with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as spool:
        return _fetch_into(row, spool)


def _fetch_into(row: StoredMedia, spool: IO[bytes]) -> bool:
    message = row.message
    atts = message.attachments if isinstance(message.attachments, list) else []
    att = atts[row.index] if row.index < len(atts) and isinstance(atts[row.index], dict) else {}
    limit = max_bytes()
    try:
        if message.channel is None:
            raise MediaError("The message's channel was deleted.", permanent=True)
        if message.channel.is_demo:
            raise MediaError("A demo channel has no account to fetch attachments from.", permanent=True)
        module = _connector_media(message.channel.kind)
        src = (
            module.source(message.channel, message, row.index, att)
            if module is not None
            else plain_source(att)
        )
        if src.data is not None:
            if len(src.data) > limit:
                raise net.ResponseTooLarge(limit)
            spool.write(src.data)
        else:
            download(src.url, src.headers, spool, limit=limit)
        _keep(row, spool)
        return True
    except net.ResponseTooLarge:
        _finish(
            row,
            state=MediaState.QUARANTINED,
            reason=f"Larger than the {limit / 1024**2:.0f} MB limit: not stored. "
            "Ask the sender for a link or a smaller file.",
        )
        return True
    except TransportError as exc:
        _failed(row, str(exc), permanent=exc.permanent)
        return False
    except Exception as exc:  # a connector bug must not leave the row claimed until the lease ends
        log.exception("fetching attachment %s crashed", row.pk)
        _failed(row, f"{type(exc).__name__}: {str(exc)[:300]}", permanent=False)
        return False


def _keep(row: StoredMedia, spool: IO[bytes]) -> None:
    size = spool.tell()
    spool.seek(0)
    head = spool.read(4096)
    sniffed = sniff(head)
    declared = row.declared_type.split(";", 1)[0].strip().lower()
    if sniffed == "application/zip" and declared.startswith(ZIP_BASED):
        content_type = declared
    else:
        content_type = sniffed or "application/octet-stream"
    spool.seek(0)
    reason = active_reason(sniffed, declared, row.filename) or archive_reason(sniffed, spool, size)
    spool.seek(0)
    digest = hashlib.sha256()
    while chunk := spool.read(CHUNK):
        digest.update(chunk)
    spool.seek(0)
    row.file.save(row.filename, File(spool), save=False)
    _finish(
        row,
        state=MediaState.QUARANTINED if reason else MediaState.STORED,
        reason=reason,
        content_type=content_type[:100],
        size=size,
        sha256=digest.hexdigest(),
        file=row.file.name,
        fetched_at=timezone.now(),
    )


def _finish(row: StoredMedia, **values: Any) -> None:
    values.setdefault("error", "")
    StoredMedia.objects.filter(pk=row.pk).update(**values)
    for key, value in values.items():
        setattr(row, key, value)


def _failed(row: StoredMedia, error: str, *, permanent: bool) -> None:
    if permanent or row.attempts >= MAX_ATTEMPTS:
        _finish(row, state=MediaState.FAILED, error=error[:500])
        return
    wait = BACKOFF_SECONDS[min(row.attempts - 1, len(BACKOFF_SECONDS) - 1)]
    _finish(row, error=error[:500], next_attempt_at=timezone.now() + dt.timedelta(seconds=wait))


def retry(row: StoredMedia) -> StoredMedia:
    """Put a failed attachment back in the queue (after fixing the channel's credentials)."""
    if row.state != MediaState.FAILED:
        raise ActionError("Only a failed attachment can be fetched again.", {"state": [row.state]})
    _finish(row, state=MediaState.PENDING, attempts=0, next_attempt_at=timezone.now())
    transaction.on_commit(lambda: _queue([row.message_id]))
    return row


# --- reads, scoped by the conversation's visibility ---------------------------------------


def media_visible(user: User) -> QuerySet[StoredMedia]:
    """Attachments of the messages of conversations the user may see (the conversations
    selector decides); the rest does not exist for them."""
    from rapport.conversations.selectors import conversations_visible

    return StoredMedia.objects.filter(message__conversation__in=conversations_visible(user).values("pk"))


def media_of(message: Any) -> list[tuple[dict[str, Any], StoredMedia | None]]:
    """A message's attachments as (metadata, stored row or None): older messages and those
    not fetched yet still list what the platform announced."""
    atts = message.attachments if isinstance(message.attachments, list) else []
    if not atts:
        return []
    rows = {r.index: r for r in StoredMedia.objects.filter(message_id=message.pk)}
    return [(a if isinstance(a, dict) else {}, rows.get(i)) for i, a in enumerate(atts[:MAX_PER_MESSAGE])]
