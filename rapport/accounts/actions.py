"""Administration of users, teams and API tokens."""

from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from rapport.accounts.models import ApiToken, Role, Team, User
from rapport.core.errors import ActionError


def _require_admin(actor: User) -> None:
    if not actor.is_admin:
        raise ActionError("Only administrators manage users and teams.")


@transaction.atomic
def user_create(
    *,
    actor: User,
    username: str,
    password: str,
    role: str,
    teams: list[Team],
    first_name: str = "",
    last_name: str = "",
    email: str = "",
) -> User:
    _require_admin(actor)
    if role not in Role.values:
        raise ActionError("Unknown role.", {"role": [f"One of {', '.join(Role.values)}."]})
    if not username.strip() or User.objects.filter(username=username.strip()).exists():
        raise ActionError("That username is taken or empty.", {"username": ["Choose another username."]})
    if len(password) < 10:
        raise ActionError("Passwords have at least 10 characters.", {"password": ["At least 10 characters."]})
    user = User.objects.create_user(
        username=username.strip(),
        password=password,
        role=role,
        first_name=first_name,
        last_name=last_name,
        email=email,
    )
    user.teams.set(teams)
    return user


@transaction.atomic
def user_set_active(*, actor: User, user: User, active: bool) -> None:
    """Deactivating a user also ends their sessions and revokes their API tokens at once."""
    _require_admin(actor)
    if user.pk == actor.pk and not active:
        raise ActionError("You cannot deactivate yourself.")
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
            if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
                session.delete()


def team_create(*, actor: User, name: str) -> Team:
    _require_admin(actor)
    if not name.strip() or Team.objects.filter(name=name.strip()).exists():
        raise ActionError("That team name is taken or empty.", {"name": ["Choose another name."]})
    return Team.objects.create(name=name.strip()[:100])


def token_create(*, user: User, name: str = "token") -> tuple[ApiToken, str]:
    return ApiToken.issue(user=user, name=(name or "token")[:100])


def token_revoke(*, actor: User, token: ApiToken) -> None:
    if token.user_id != actor.pk and not actor.is_admin:
        raise ActionError("Not your token.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
