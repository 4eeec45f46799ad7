from django.urls import path

from rapport.channels.connectors.whatsapp import views

urlpatterns = [path("hooks/whatsapp/<int:channel_id>/", views.receive, name="hook-whatsapp")]
