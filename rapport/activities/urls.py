from django.urls import path

from rapport.activities import views

urlpatterns = [
    path("activities/", views.activity_list_view, name="activity-list"),
    path("activities/new/", views.activity_create_view, name="activity-create"),
    path("activities/<int:pk>/", views.activity_detail_view, name="activity-detail"),
    path("activities/<int:pk>/edit/", views.activity_edit_view, name="activity-edit"),
    path("activities/<int:pk>/done/", views.activity_done_view, name="activity-done"),
    path("activities/<int:pk>/delete/", views.activity_delete_view, name="activity-delete"),
]
