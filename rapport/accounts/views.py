from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from rapport.accounts import actions
from rapport.accounts.models import SERVICE_USERNAME, ApiToken, Role, Team, User
from rapport.core.errors import ActionError
from rapport.core.http import AuthedRequest, int_param


@login_required
def tokens(request: AuthedRequest) -> HttpResponse:
    new_token = None
    if request.method == "POST":
        if "revoke" in request.POST:
            token_id = int_param(request.POST.get("revoke"))
            token = ApiToken.objects.filter(pk=token_id, user=request.user).first() if token_id else None
            if token is None:
                raise Http404
            actions.token_revoke(actor=request.user, token=token)
            messages.success(request, "Token revoked.")
            return redirect("tokens")
        _, new_token = actions.token_create(user=request.user, name=request.POST.get("name", "token"))
    return render(
        request,
        "accounts/tokens.html",
        {
            "tokens": ApiToken.objects.filter(user=request.user).order_by("-created_at"),
            "new_token": new_token,
        },
    )


@login_required
def users(request: AuthedRequest) -> HttpResponse:
    if not request.user.is_admin:
        raise Http404
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            if request.POST.get("action") == "team":
                actions.team_create(actor=request.user, name=request.POST.get("name", ""))
                messages.success(request, "Team created.")
            elif request.POST.get("action") == "toggle":
                user_id = int_param(request.POST.get("user"))
                user = User.objects.filter(pk=user_id).first() if user_id else None
                if user is None:
                    raise Http404
                actions.user_set_active(actor=request.user, user=user, active=not user.is_active)
                messages.success(request, f"{user} {'activated' if user.is_active else 'deactivated'}.")
            else:
                actions.user_create(
                    actor=request.user,
                    username=request.POST.get("username", ""),
                    password=request.POST.get("password", ""),
                    role=request.POST.get("role", ""),
                    teams=_teams_from(request.POST.getlist("teams")),
                    first_name=request.POST.get("first_name", ""),
                    email=request.POST.get("email", ""),
                )
                messages.success(request, "User created.")
            return redirect("users")
        except ActionError as exc:
            messages.error(request, exc.message)
            errors = exc.field_errors
    return render(
        request,
        "accounts/users.html",
        {
            "users": User.objects.exclude(username=SERVICE_USERNAME)
            .prefetch_related("teams")
            .order_by("username"),
            "teams": Team.objects.all(),
            "roles": Role.choices,
            "errors": errors,
        },
    )


def _teams_from(values: list[str]) -> list[Team]:
    ids = [int_param(v) for v in values]
    teams = list(Team.objects.filter(pk__in=[i for i in ids if i is not None]))
    if len(teams) != len(set(values)):
        raise ActionError("Choose teams from the list.", {"teams": ["Unknown team."]})
    return teams
