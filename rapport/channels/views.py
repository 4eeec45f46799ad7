"""Admin screens: the channel list and the dead-letter list with replay."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from rapport.channels import selectors
from rapport.channels.actions import payload_replay
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest
from rapport.core.pagination import Page, keyset_page


@login_required
def channel_list_view(request: AuthedRequest) -> HttpResponse:
    channels = list(selectors.channels_for(request.user))
    dead = selectors.dead_letters(request.user).count()
    return render(request, "channels/channel_list.html", {"nav": "inbox", "channels": channels, "dead": dead})


@login_required
def dead_letter_list_view(request: AuthedRequest) -> HttpResponse:
    qs = selectors.dead_letters(request.user)
    error = None
    try:
        page = keyset_page(qs, ["-received_at", "-id"], request.GET.get("cursor") or None, 50)
    except ActionError as exc:
        error, page = exc.message, Page(items=[], next_cursor=None)
    return render(
        request,
        "channels/dead_letters.html",
        {"nav": "inbox", "page": page, "error": error},
        status=400 if error else 200,
    )


@login_required
def dead_letter_detail_view(request: AuthedRequest, payload_id: int) -> HttpResponse:
    payload = selectors.payload_get(request.user, payload_id)
    return render(request, "channels/dead_letter_detail.html", {"nav": "inbox", "p": payload})


@login_required
@require_POST
def dead_letter_replay_view(request: AuthedRequest, payload_id: int) -> HttpResponse:
    payload = selectors.payload_get(request.user, payload_id)
    try:
        payload_replay(actor=request.user, payload=payload)
    except ActionError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Payload {payload.pk} queued for processing again.")
    return redirect("dead-letters")
