from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _analyze_after_migrate(sender: AppConfig, plan: list | None = None, **kwargs: Any) -> None:
    # Only when migrations actually ran: new indexes need statistics before the planner
    # uses them well (see rapport.core.db).
    if plan:
        from rapport.core.db import refresh_planner_stats

        refresh_planner_stats()


class CoreConfig(AppConfig):
    name = "rapport.core"
    label = "core"

    def ready(self) -> None:
        post_migrate.connect(
            _analyze_after_migrate, sender=self, dispatch_uid="rapport-analyze-after-migrate"
        )
