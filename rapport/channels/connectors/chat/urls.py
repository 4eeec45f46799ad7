from django.urls import path, re_path

from rapport.channels.connectors.chat import views

KEY = r"(?P<key>[A-Za-z0-9_-]{16,64})"

urlpatterns = [
    path("chat/widget.js", views.widget_js, name="chat-widget-js"),
    path("chat/widget.css", views.widget_css, name="chat-widget-css"),
    re_path(rf"^chat/{KEY}/session$", views.session, name="chat-session"),
    re_path(rf"^chat/{KEY}/messages$", views.messages, name="chat-messages"),
]
