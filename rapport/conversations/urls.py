from django.urls import path

from rapport.conversations import views

urlpatterns = [
    path("inbox/", views.inbox_view, name="inbox"),
    path("inbox/<int:conversation_id>/", views.conversation_view, name="conversation"),
    path("inbox/<int:conversation_id>/messages.json", views.messages_json, name="conversation-messages"),
    path("inbox/<int:conversation_id>/reply/", views.reply_view, name="conversation-reply"),
    path("inbox/<int:conversation_id>/assign/", views.assign_view, name="conversation-assign"),
    path("inbox/<int:conversation_id>/status/", views.status_view, name="conversation-status"),
    path("inbox/<int:conversation_id>/priority/", views.priority_view, name="conversation-priority"),
    path("inbox/<int:conversation_id>/call/", views.call_view, name="conversation-call"),
]
