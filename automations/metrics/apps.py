from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "automations.metrics"
    label = "metrics"
    verbose_name = "Metrics"
