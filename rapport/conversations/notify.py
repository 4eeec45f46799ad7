"""In-app notices. Called explicitly by the actions that have something to say (no signal
bus), inside their transaction, so a notice exists exactly when its cause does."""

from collections.abc import Iterable

from rapport.accounts.models import Role, User
from rapport.conversations.models import Conversation, Notification


def notify(
    *,
    users: Iterable[User | None],
    kind: str,
    text: str,
    conversation: Conversation | None = None,
    actor: User | None = None,
) -> int:
    seen: set[int] = set()
    rows = []
    for user in users:
        if (
            user is None
            or not user.is_active
            or user.pk in seen
            or (actor is not None and user.pk == actor.pk)
        ):
            continue
        seen.add(user.pk)
        rows.append(Notification(user=user, conversation=conversation, kind=kind, text=text[:300]))
    Notification.objects.bulk_create(rows)
    return len(rows)


def team_managers(team_id: int | None) -> list[User]:
    if team_id is None:
        return list(User.objects.filter(role=Role.ADMIN, is_active=True).exclude(username="rapport-bot"))
    return list(User.objects.filter(teams__id=team_id, role=Role.MANAGER, is_active=True))


def admins() -> list[User]:
    return list(User.objects.filter(role=Role.ADMIN, is_active=True).exclude(username="rapport-bot")) + list(
        User.objects.filter(is_superuser=True, is_active=True).exclude(role=Role.ADMIN)
    )
