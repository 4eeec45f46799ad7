from django.urls import path

from rapport.channels.connectors.twilio import views

urlpatterns = [
    path("hooks/sms/<int:channel_id>/", views.sms, name="hook-sms"),
    path("hooks/sms/<int:channel_id>/status/", views.sms_status, name="hook-sms-status"),
    path("hooks/phone/<int:channel_id>/", views.call, name="hook-phone"),
    path("hooks/phone/<int:channel_id>/status/", views.call_status, name="hook-phone-status"),
]
