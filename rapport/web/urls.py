"""URL map of the web UI. Each domain app owns its own url module."""

from django.urls import include, path

from rapport.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("rapport.accounts.urls")),
    path("", include("rapport.people.urls")),
    path("", include("rapport.people.urls_capture")),
    path("", include("rapport.sales.urls")),
    path("", include("rapport.activities.urls")),
    path("", include("rapport.imports.urls")),
    path("", include("rapport.conversations.urls")),
    path("", include("rapport.channels.urls")),
    path("", include("rapport.listening.urls")),
]
