from django.urls import path

from rapport.api.main import api

urlpatterns = [path("", api.urls)]
