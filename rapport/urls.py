from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("rapport.api.urls")),
    path("", include("rapport.web.urls")),
]
