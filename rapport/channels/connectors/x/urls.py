from django.urls import path

from rapport.channels.connectors.x import views

urlpatterns = [path("hooks/x/<int:channel_id>/", views.receive, name="hook-x")]
