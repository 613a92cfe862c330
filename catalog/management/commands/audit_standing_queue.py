"""Add newly finished autonomous runs to the standing audit samples, once (beat: every minute)."""

from django.core.management.base import BaseCommand

from catalog.audit.standing import standing_queue_run


class Command(BaseCommand):
    help = (
        "Take each automation's autonomous runs finished since the last time into its standing"
        " audit sample at its audit_sample_rate; what Celery beat runs every minute."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"standing audit queue: {standing_queue_run()} run(s) added")
