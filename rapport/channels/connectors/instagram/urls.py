from django.urls import path

from rapport.channels.connectors.instagram import views

urlpatterns = [path("hooks/instagram/<int:channel_id>/", views.receive, name="hook-instagram")]
