"""Home (the rep's day at a glance), global search and the health check."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from rapport.core.http import AuthedRequest
from rapport.web.search import global_search


@login_required
def home(request: AuthedRequest) -> HttpResponse:
    from rapport.web.dashboard import home_context

    return render(request, "web/home.html", home_context(request.user))


@login_required
def search(request: AuthedRequest) -> HttpResponse:
    q = request.GET.get("q", "")[:200]
    groups = global_search(request.user, q, limit=8 if request.GET.get("format") == "json" else 25)
    if request.GET.get("format") == "json":
        return JsonResponse({"q": q, "groups": [g.as_json() for g in groups]})
    return render(request, "web/search.html", {"groups": groups, "search_q": q})


def healthz(request: HttpRequest) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 — any database failure means "not ready"
        return JsonResponse({"status": "database unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
