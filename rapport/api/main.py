"""REST API v1: one NinjaAPI, one router per domain module. Schema at /api/v1/openapi.json."""

from ninja import NinjaAPI

from rapport.api.auth import BearerOrSession
from rapport.api.errors import install_error_handlers

api = NinjaAPI(
    title="Rapport API",
    version="1",
    description="Rapport Social CRM. Authenticate with `Authorization: Bearer <token>` (create one with `rapport token create USERNAME`).",
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=BearerOrSession(),
)
install_error_handlers(api)


def _register() -> None:
    from rapport.api import (
        activities,
        attachments,
        capture,
        conversations,
        imports,
        intelligence,
        listening,
        people,
        sales,
    )

    # capture first: its literal paths (/people/merge) must win over /people/{id}.
    api.add_router("/", capture.router)
    api.add_router("/", people.router)
    api.add_router("/", sales.router)
    api.add_router("/", activities.router)
    api.add_router("/", imports.router)
    api.add_router("/", conversations.router)
    api.add_router("/", attachments.router)
    api.add_router("/", intelligence.router)
    api.add_router("/", listening.router)


_register()
