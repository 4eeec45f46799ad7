from django.urls import path

from rapport.conversations import views

urlpatterns = [
    path("inbox/", views.inbox_view, name="inbox"),
    path("inbox/bulk/", views.bulk_view, name="inbox-bulk"),
    path("inbox/notifications/", views.notifications_view, name="notifications"),
    path("inbox/canned/", views.canned_list_view, name="canned-list"),
    path("inbox/canned/<int:canned_id>/", views.canned_edit_view, name="canned-edit"),
    path("inbox/<int:conversation_id>/", views.conversation_view, name="conversation"),
    path("inbox/<int:conversation_id>/messages.json", views.messages_json, name="conversation-messages"),
    path("inbox/<int:conversation_id>/canned.json", views.canned_json, name="conversation-canned"),
    path("inbox/<int:conversation_id>/reply/", views.reply_view, name="conversation-reply"),
    path(
        "inbox/<int:conversation_id>/messages/<int:message_id>/sentiment/",
        views.message_sentiment_view,
        name="message-sentiment",
    ),
    path("inbox/<int:conversation_id>/assign/", views.assign_view, name="conversation-assign"),
    path("inbox/<int:conversation_id>/status/", views.status_view, name="conversation-status"),
    path("inbox/<int:conversation_id>/priority/", views.priority_view, name="conversation-priority"),
    path("inbox/<int:conversation_id>/call/", views.call_view, name="conversation-call"),
    path("inbox/<int:conversation_id>/merge/", views.merge_view, name="conversation-merge"),
    path("inbox/<int:conversation_id>/unmerge/", views.unmerge_view, name="conversation-unmerge"),
    path("inbox/<int:conversation_id>/hop/", views.hop_view, name="conversation-hop"),
    path("settings/routing/", views.routing_list_view, name="routing-list"),
    path("settings/routing/new/", views.routing_edit_view, name="routing-new"),
    path("settings/routing/<int:rule_id>/", views.routing_edit_view, name="routing-edit"),
    path("settings/routing/<int:rule_id>/move/", views.routing_move_view, name="routing-move"),
    path("settings/sla/", views.sla_view, name="sla-list"),
]
