from django.urls import path

from rapport.channels.connectors.facebook import views

urlpatterns = [path("hooks/facebook/<int:channel_id>/", views.receive, name="hook-facebook")]
