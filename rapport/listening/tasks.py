"""Queue tasks: thin wrappers that take ids and are safe to run twice."""

from django_tasks import task


@task()
def poll_sources(source_ids: list[int] | None = None) -> int:
    from rapport.listening.polling import poll_all

    return sum(r.get("stored", 0) for r in poll_all(source_ids=source_ids))


@task()
def evaluate_velocity_rules() -> int:
    from rapport.listening.alerts import evaluate_velocity
    from rapport.listening.models import AlertRule, RuleKind

    return sum(
        evaluate_velocity(rule) is not None
        for rule in AlertRule.objects.filter(is_active=True, kind=RuleKind.VELOCITY).select_related("owner")
    )
