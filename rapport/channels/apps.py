from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "rapport.channels"
    label = "channels"
