from django.urls import path

from rapport.intelligence import views

urlpatterns = [
    path("settings/intelligence/", views.settings_view, name="intelligence-settings"),
]
