from django.urls import path

from rapport.imports import views

urlpatterns = [
    path("imports/", views.import_home, name="import-home"),
    path("imports/<int:pk>/", views.import_job, name="import-job"),
    path("imports/<int:pk>/start/", views.import_start, name="import-start"),
    path("imports/<int:pk>/status.json", views.import_status, name="import-status"),
    path("imports/<int:pk>/errors.csv", views.import_errors, name="import-errors"),
    path("export/<slug:kind>.<slug:fmt>", views.export_view, name="export"),
]
