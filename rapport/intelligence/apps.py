from django.apps import AppConfig


class IntelligenceConfig(AppConfig):
    name = "rapport.intelligence"
    label = "intelligence"
