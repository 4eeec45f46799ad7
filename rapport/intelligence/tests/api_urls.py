"""URLs for the API tests while the intelligence router is not yet mounted on the main API:
the same auth and error handling, with this router alone in front of the project's URLs."""

from django.urls import path
from ninja import NinjaAPI

from rapport.api.auth import BearerOrSession
from rapport.api.errors import install_error_handlers
from rapport.api.intelligence import router
from rapport.urls import urlpatterns as project_urls

api = NinjaAPI(urls_namespace="intelligence-test", auth=BearerOrSession(), docs_url=None)
install_error_handlers(api)
api.add_router("/", router)

urlpatterns = [path("api/v1/", api.urls), *project_urls]
