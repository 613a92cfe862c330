from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "automations.metrics"
    label = "metrics"
    verbose_name = "Metrics"

    def ready(self):
        from automations.metrics import tracecontext

        tracecontext.celery_signals_connect()
