"""The intelligence settings page: which sentiment backend is in use, the learned model's
evidence (examples, cross-validated macro recall against the rules), and its retraining."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from rapport.core.http import AuthedRequest
from rapport.intelligence.actions import can_retrain, retrain_state
from rapport.intelligence.models import SentimentModel


@login_required
@require_http_methods(["GET", "POST"])
def settings_view(request: AuthedRequest) -> HttpResponse:
    if request.method == "POST":
        if not can_retrain(request.user):
            raise PermissionDenied
        from rapport.intelligence.tasks import retrain_sentiment

        retrain_sentiment.enqueue(True)
        messages.success(request, "Retraining queued; the worker trains it in the background.")
        return redirect("/settings/intelligence/")
    ctx = {
        "nav": "settings",
        "state": retrain_state(),
        "models": SentimentModel.objects.defer("blob").select_related("trained_by")[:20],
        "can_retrain": can_retrain(request.user),
    }
    return render(request, "intelligence/settings.html", ctx)
