"""Run Celery beat's schedule in this process: the demo's beat when there is no broker.

Without REDIS_URL, tasks run in process and no beat sends the periodic ones
(the sweep, the trail's sequencer, the standing audit queue, automatic
demotion, the metrics' rollups). This command runs each entry of
CELERY_BEAT_SCHEDULE at its interval, in process, until stopped. With a
broker, run `celery -A reviewapp beat` instead (README, "Running it").
"""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from reviewapp.celery import app

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the periodic tasks of CELERY_BEAT_SCHEDULE in process (the demo without Redis)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="Run every entry once, then stop (tests)."
        )

    def handle(self, *args, once, **options):
        app.loader.import_default_modules()  # every app's tasks.py, as a worker imports them
        schedule = settings.CELERY_BEAT_SCHEDULE
        due = dict.fromkeys(schedule, 0.0)
        while True:
            now = time.monotonic()
            for name, entry in schedule.items():
                if due[name] <= now:
                    self._run(name, entry["task"])
                    due[name] = now + float(entry["schedule"])
            if once:
                return
            time.sleep(max(0.2, min(due.values()) - time.monotonic()))

    def _run(self, name: str, task: str) -> None:
        try:
            app.tasks[task].apply()
        except Exception:  # one entry failing must not stop the others
            logger.exception("periodic task %s (%s) failed", name, task)
