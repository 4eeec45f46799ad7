"""IMAP poller: fetch new mail, store each message as a RawPayload, then process it.

Mail on the server is never changed: folders are opened read-only (EXAMINE) and bodies are
fetched with BODY.PEEK[], so no \\Seen flag is set, nothing is moved, nothing deleted.

Cursor, per folder, in `Channel.settings["imap_state"][folder]`:
`{"uidvalidity": int, "last_uid": int, "since": "YYYY-MM-DD" | null}`. It only advances after
the messages below it are stored. When UIDVALIDITY changes (the folder was rebuilt, the
server migrated) UIDs mean nothing any more: the folder is re-scanned from `since` and
the stored copies deduplicate everything already seen (a RawPayload is unique per body
digest, a Message per Message-ID or content hash), so nothing is lost and nothing doubled.

A new channel starts at the folder's current end unless `settings.import_existing` is true,
so connecting an old mailbox does not turn ten years of mail into conversations (and
auto-replies). A message larger than `settings.max_message_bytes` (25 MB by default) is stored
as its header only, with a note; it stays in the mailbox.

Two pollers never work on one channel at once: a lease in settings is claimed with a
conditional UPDATE on `updated_at`."""

import contextlib
import datetime as dt
import imaplib
import logging
import re
import ssl
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from rapport.channels.actions import enqueue_processing, payload_store
from rapport.channels.connectors.email.inbound import TRUNCATED_HEADER
from rapport.channels.crypto import CredentialsError
from rapport.channels.models import Channel, ChannelKind, ChannelStatus

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
BATCH = 50
MAX_PER_RUN = 1000
LEASE = dt.timedelta(minutes=10)
TIMEOUT = 60.0
_SIZE = re.compile(rb"UID (\d+).*?RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+).*?UID (\d+)")


class PollError(Exception):
    pass


@dataclass
class FolderResult:
    folder: str
    uidvalidity: int = 0
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    truncated: int = 0
    rescan: bool = False


@dataclass
class PollResult:
    channel_id: int
    folders: list[FolderResult] = field(default_factory=list)
    skipped: str = ""
    error: str = ""

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.folders)


# --- connection ----------------------------------------------------------------------------


def connect(channel: Channel) -> imaplib.IMAP4:
    creds = channel.credentials
    host = str(creds.get("imap_host") or creds.get("host") or "")
    if not host:
        raise PollError("This email channel has no IMAP host (credentials.imap_host).")
    security = str(creds.get("imap_security") or "ssl").lower()
    default_port = {"ssl": 993, "starttls": 143, "none": 143}.get(security)
    if default_port is None:
        raise PollError("imap_security must be ssl, starttls or none.")
    port = int(creds.get("imap_port") or default_port)
    context = ssl.create_default_context()
    if security == "ssl":
        imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=TIMEOUT)
    else:
        imap = imaplib.IMAP4(host, port, timeout=TIMEOUT)
        if security == "starttls":
            imap.starttls(ssl_context=context)
    username = str(creds.get("imap_username") or creds.get("username") or "")
    password = str(creds.get("imap_password") or creds.get("password") or "")
    imap.login(username, password)
    return imap


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uidvalidity(imap: imaplib.IMAP4) -> int:
    _, data = imap.response("UIDVALIDITY")
    try:
        return int(data[0]) if data and data[0] else 0
    except (TypeError, ValueError):
        return 0


def _uidnext(imap: imaplib.IMAP4, folder: str) -> int:
    _, data = imap.response("UIDNEXT")
    if data and data[0]:
        return int(data[0])
    typ, status = imap.status(_quote(folder), "(UIDNEXT)")
    match = re.search(rb"UIDNEXT (\d+)", status[0] or b"") if typ == "OK" and status else None
    return int(match.group(1)) if match else 1


def _search(imap: imaplib.IMAP4, after_uid: int, since: str | None) -> list[int]:
    criteria = [f"UID {after_uid + 1}:*"]
    if since:
        criteria.append("SINCE " + dt.date.fromisoformat(since).strftime("%d-%b-%Y"))
    typ, data = imap.uid("SEARCH", *criteria)
    if typ != "OK":
        raise PollError(f"IMAP SEARCH failed: {data!r}"[:300])
    uids = sorted(int(u) for u in (data[0] or b"").split() if u.isdigit())
    # "n:*" always matches the last message even when its UID is below n.
    return [u for u in uids if u > after_uid]


def _sizes(imap: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    typ, data = imap.uid("FETCH", ",".join(map(str, uids)), "(RFC822.SIZE)")
    sizes: dict[int, int] = {}
    for item in data if typ == "OK" else []:
        line = item[0] if isinstance(item, tuple) else item
        match = _SIZE.search(line or b"")
        if match:
            uid, size = (
                (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
            )
            sizes[int(uid)] = int(size)
    return sizes


def _fetch(imap: imaplib.IMAP4, uid: int, part: str) -> bytes | None:
    typ, data = imap.uid("FETCH", str(uid), f"(BODY.PEEK[{part}])")
    if typ != "OK":
        raise PollError(f"IMAP FETCH of UID {uid} failed: {data!r}"[:300])
    for item in data:
        if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[1], bytes):
            return item[1]
    return None  # expunged by someone else meanwhile


# --- cursor and lease -------------------------------------------------------------------------


def _claim(channel: Channel, now: dt.datetime) -> bool:
    """Take the channel's poll lease with a compare-and-set on updated_at."""
    channel.refresh_from_db()
    lease = (channel.settings or {}).get("imap_lease_until")
    if lease and dt.datetime.fromisoformat(lease) > now:
        return False
    settings = {**(channel.settings or {}), "imap_lease_until": (now + LEASE).isoformat()}
    claimed = Channel.objects.filter(pk=channel.pk, updated_at=channel.updated_at).update(
        settings=settings, updated_at=now
    )
    if claimed:
        channel.settings, channel.updated_at = settings, now
    return bool(claimed)


def _save_state(channel: Channel, folder: str, state: dict[str, Any], *, release: bool = False) -> None:
    """Write one folder's cursor, re-reading settings so an admin's concurrent edit of other
    keys is kept."""
    with transaction.atomic():
        fresh = Channel.objects.select_for_update().get(pk=channel.pk)
        settings = dict(fresh.settings or {})
        states = dict(settings.get("imap_state") or {})
        if folder:
            states[folder] = state
        settings["imap_state"] = states
        if release:
            settings.pop("imap_lease_until", None)
        now = timezone.now()
        Channel.objects.filter(pk=channel.pk).update(settings=settings, updated_at=now)
        channel.settings, channel.updated_at = settings, now


def _record_error(channel: Channel, error: str) -> None:
    Channel.objects.filter(pk=channel.pk).update(last_error=error[:2000], last_error_at=timezone.now())


# --- polling ------------------------------------------------------------------------------


def poll_folder(channel: Channel, imap: imaplib.IMAP4, folder: str) -> FolderResult:
    result = FolderResult(folder)
    typ, data = imap.select(_quote(folder), readonly=True)  # EXAMINE: flags stay untouched
    if typ != "OK":
        raise PollError(f"Cannot open folder {folder!r}: {data!r}"[:300])
    uidvalidity = _uidvalidity(imap)
    result.uidvalidity = uidvalidity
    settings = channel.settings or {}
    state = dict((settings.get("imap_state") or {}).get(folder) or {})
    max_bytes = int(settings.get("max_message_bytes") or MAX_MESSAGE_BYTES)
    if not state:
        # First poll of this folder.
        if settings.get("import_existing"):
            state = {"uidvalidity": uidvalidity, "last_uid": 0, "since": None}
        else:
            state = {
                "uidvalidity": uidvalidity,
                "last_uid": _uidnext(imap, folder) - 1,
                "since": timezone.now().date().isoformat(),
            }
            _save_state(channel, folder, state)
            return result
    if state.get("uidvalidity") != uidvalidity:
        log.warning(
            "channel %s folder %s: UIDVALIDITY changed %s → %s; re-scanning",
            channel.pk,
            folder,
            state.get("uidvalidity"),
            uidvalidity,
        )
        result.rescan = True
        state = {**state, "uidvalidity": uidvalidity, "last_uid": 0}
    uids = _search(imap, int(state.get("last_uid") or 0), state.get("since") if result.rescan else None)
    uids = uids[:MAX_PER_RUN]
    for start in range(0, len(uids), BATCH):
        batch = uids[start : start + BATCH]
        sizes = _sizes(imap, batch)
        for uid in batch:
            size = sizes.get(uid, 0)
            truncated = size > max_bytes
            body = _fetch(imap, uid, "HEADER" if truncated else "")
            result.fetched += 1
            if body is not None:
                headers = {"X-Imap-Folder": folder[:200], "X-Imap-Uid": f"{uidvalidity}:{uid}"}
                if truncated:
                    headers[TRUNCATED_HEADER] = str(size)
                    result.truncated += 1
                with transaction.atomic():
                    payload, created = payload_store(channel=channel, body=body, headers=headers)
                    if created:
                        enqueue_processing(payload)
                result.stored += int(created)
                result.duplicates += int(not created)
            state["last_uid"] = uid
        _save_state(channel, folder, state)
    if result.rescan and not uids:
        _save_state(channel, folder, state)
    return result


def poll_channel(channel: Channel, *, now: dt.datetime | None = None) -> PollResult:
    result = PollResult(channel.pk)
    if channel.kind != ChannelKind.EMAIL:
        result.skipped = "not an email channel"
        return result
    if channel.status == ChannelStatus.DISABLED:
        result.skipped = "disabled"
        return result
    if not _claim(channel, now or timezone.now()):
        result.skipped = "another poller holds this channel"
        return result
    folders = (channel.settings or {}).get("folders") or ["INBOX"]
    imap = None
    try:
        imap = connect(channel)
        for folder in folders:
            if isinstance(folder, str) and folder:
                result.folders.append(poll_folder(channel, imap, folder))
        if channel.last_error:
            Channel.objects.filter(pk=channel.pk).update(last_error="", last_error_at=None)
    except (
        TimeoutError,
        imaplib.IMAP4.error,
        PollError,
        OSError,
        ssl.SSLError,
        ValueError,
        CredentialsError,
    ) as exc:
        # Transient or configuration: shown to admins on the channel; the next poll retries.
        result.error = f"{type(exc).__name__}: {exc}"[:1000]
        log.warning("email channel %s: poll failed: %s", channel.pk, result.error)
        _record_error(channel, f"IMAP poll failed: {result.error}")
    finally:
        if imap is not None:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()
        _save_state(channel, "", {}, release=True)
    return result


def poll_all(*, channel_id: int | None = None) -> list[PollResult]:
    channels = Channel.objects.filter(kind=ChannelKind.EMAIL).exclude(status=ChannelStatus.DISABLED)
    if channel_id is not None:
        channels = channels.filter(pk=channel_id)
    # Demo channels have no mailbox behind them (checked in Python: channels are few, and a
    # JSON-key exclude would also drop rows without the key on SQLite).
    return [poll_channel(channel) for channel in channels.order_by("id") if not channel.is_demo]
