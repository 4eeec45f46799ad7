from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "rapport.bench"
    label = "bench"
