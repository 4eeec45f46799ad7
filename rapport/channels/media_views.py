"""Serving stored attachments. Only someone who can see the conversation gets the bytes (a
404 for everyone else, like any record they cannot see). Every file is a download
(`application/octet-stream`, `Content-Disposition: attachment`), except PNG/JPEG/GIF/WebP
recognised by their magic bytes, which may be shown inline as images. Both answers carry
`nosniff` and a sandboxing CSP, so even a file a browser chose to render could not run
script or reach our origin."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from rapport.accounts.models import User
from rapport.channels.media import media_visible, retry
from rapport.channels.models import StoredMedia
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest

SANDBOX = "default-src 'none'; sandbox"


def media_get(user: User, media_id: Any) -> StoredMedia:
    try:
        return media_visible(user).get(pk=media_id)
    except (StoredMedia.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found")


def file_response(media: StoredMedia, *, inline: bool = False) -> FileResponse:
    if not (media.inline_ok if inline else media.downloadable):
        raise Http404("Not found")
    try:
        handle = media.file.open("rb")
    except OSError:
        raise Http404("Not found")
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=media.filename,
        content_type=media.content_type if inline else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = SANDBOX
    response["Cache-Control"] = "private, max-age=3600"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


@login_required
@require_GET
def attachment_download_view(request: AuthedRequest, media_id: int) -> FileResponse:
    return file_response(media_get(request.user, media_id))


@login_required
@require_GET
def attachment_inline_view(request: AuthedRequest, media_id: int) -> FileResponse:
    return file_response(media_get(request.user, media_id), inline=True)


@login_required
@require_POST
def attachment_retry_view(request: AuthedRequest, media_id: int) -> HttpResponse:
    """Fetch a failed attachment again (after an admin fixed the channel's credentials)."""
    from rapport.conversations.selectors import conversation_for_edit

    row = media_get(request.user, media_id)
    conversation = conversation_for_edit(request.user, row.message.conversation_id)
    try:
        retry(row)
        messages.success(request, f"{row.filename} will be fetched again.")
    except ActionError as exc:
        messages.error(request, exc.message)
    return redirect(f"{reverse('conversation', args=[conversation.pk])}#m{row.message_id}")
