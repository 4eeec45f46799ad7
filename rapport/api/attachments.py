"""Attachments API: what a message carries (announced by the platform and, once fetched,
stored, quarantined with a reason, or failed with the error) and the bytes themselves.
Access is the conversation's: what you cannot see is a 404, bytes included."""

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Router, Schema
from pydantic import Field

from rapport.api.schemas import Id
from rapport.channels import media
from rapport.channels.media_views import file_response, media_get
from rapport.channels.models import StoredMedia
from rapport.conversations import selectors
from rapport.core.http import ApiRequest

router = Router(tags=["Inbox"])


class AttachmentOut(Schema):
    index: int
    id: int | None = Field(
        description="The stored attachment; null until the message has been queued for fetching."
    )
    filename: str
    declared_type: str = Field(description="The type the platform announced.")
    content_type: str = Field(description="The type sniffed from the bytes (empty until fetched).")
    size: int
    sha256: str
    state: str = Field(description="pending, stored, quarantined, failed, or not_fetched.")
    reason: str = Field(description="Why it is quarantined.")
    error: str = Field(description="The last fetch error.")
    attempts: int
    download_url: str | None
    inline_url: str | None = Field(description="Only for PNG/JPEG/GIF/WebP verified by their bytes.")


def _out(index: int, meta: dict[str, Any], row: StoredMedia | None) -> dict[str, Any]:
    if row is None:
        size = meta.get("size")
        return {
            "index": index,
            "id": None,
            "filename": str(meta.get("filename") or ""),
            "declared_type": str(meta.get("content_type") or ""),
            "content_type": "",
            "size": size if isinstance(size, int) else 0,
            "sha256": "",
            "state": "not_fetched",
            "reason": "",
            "error": "",
            "attempts": 0,
            "download_url": None,
            "inline_url": None,
        }
    return {
        "index": index,
        "id": row.pk,
        "filename": row.filename,
        "declared_type": row.declared_type,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "state": row.state,
        "reason": row.reason,
        "error": row.error,
        "attempts": row.attempts,
        "download_url": f"/api/v1/attachments/{row.pk}/download" if row.downloadable else None,
        "inline_url": reverse("attachment-inline", args=[row.pk]) if row.inline_ok else None,
    }


@router.get(
    "/conversations/{conversation_id}/messages/{message_id}/attachments", response=list[AttachmentOut]
)
def list_attachments(request: ApiRequest, conversation_id: Id, message_id: Id) -> list[dict[str, Any]]:
    conv = selectors.conversation_get(request.auth, conversation_id)
    message = get_object_or_404(conv.messages, pk=message_id)
    return [_out(i, meta, row) for i, (meta, row) in enumerate(media.media_of(message))]


@router.get("/attachments/{media_id}/download")
def download_attachment(request: ApiRequest, media_id: Id) -> Any:
    """The file, always as `application/octet-stream` with `Content-Disposition: attachment`."""
    return file_response(media_get(request.auth, media_id))


@router.post("/attachments/{media_id}/retry", response=AttachmentOut)
def retry_attachment(request: ApiRequest, media_id: Id) -> dict[str, Any]:
    """Queue a failed attachment again (after fixing the channel's credentials)."""
    row = media_get(request.auth, media_id)
    selectors.conversation_for_edit(request.auth, row.message.conversation_id)
    media.retry(row)
    return _out(row.index, {}, row)
