from django.urls import include, path

from rapport.channels import media_views, views
from rapport.channels.connectors.webhook import views as webhook_views
from rapport.channels.registry import url_modules

urlpatterns = [
    path("hooks/webhook/<int:channel_id>/", webhook_views.receive, name="hook-webhook"),
    path("attachments/<int:media_id>/", media_views.attachment_download_view, name="attachment-download"),
    path("attachments/<int:media_id>/inline/", media_views.attachment_inline_view, name="attachment-inline"),
    path("attachments/<int:media_id>/retry/", media_views.attachment_retry_view, name="attachment-retry"),
    path("settings/channels/", views.channel_list_view, name="channel-list"),
    path("settings/channels/dead-letters/", views.dead_letter_list_view, name="dead-letters"),
    path(
        "settings/channels/dead-letters/<int:payload_id>/", views.dead_letter_detail_view, name="dead-letter"
    ),
    path(
        "settings/channels/dead-letters/<int:payload_id>/replay/",
        views.dead_letter_replay_view,
        name="dead-letter-replay",
    ),
    # Each connector folder may carry a urls.py with its webhook endpoints (under /hooks/<kind>/).
    *[path("", include(module)) for module in url_modules()],
]
