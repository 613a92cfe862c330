"""`manage.py rollup_metrics [--rebuild]`: bring the rollups up to date, or rebuild them.

Without --rebuild, the incremental job the beat runs every minute, once, until
it has caught up. With --rebuild, every rollup is emptied and rebuilt from the
source tables (transitions, model calls, labels), with its progress printed
here and shown on the dashboards while it runs.
"""

import time

from django.core.management.base import BaseCommand

from automations.metrics.models import RollupRebuild
from automations.metrics.rebuilds import rebuild_perform, rebuild_running
from automations.metrics.rollup import rollup_run

PROGRESS_EVERY_SECONDS = 1.0


class Command(BaseCommand):
    help = "Roll up what the pipeline did since the last run, or rebuild every rollup."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild", action="store_true", help="empty the rollups and read everything again"
        )

    def handle(self, *args, rebuild, **options):
        if not rebuild:
            read = rollup_run(progress=self._ticker("rolled up {done:,} rows"))
            self.stdout.write(f"rollups up to date: {read:,} new source rows")
            return
        running = rebuild_running()
        if running is not None:
            self.stderr.write(f"a rebuild is already under way (started {running.started_at})")
            raise SystemExit(1)
        record = RollupRebuild.objects.create()
        tick = self._ticker("rebuilding: {done:,} of {total:,} source rows ({percent}%)")
        record = rebuild_perform(rebuild_id=record.pk, progress=tick)
        self.stdout.write(f"rollups rebuilt from {record.total:,} source rows")

    def _ticker(self, template: str):
        """A progress callback that prints what changed, at most once a second."""
        last = {"at": 0.0, "done": -1}

        def tick(done: int, total: int = 0) -> None:
            now = time.monotonic()
            if done == last["done"] or now - last["at"] < PROGRESS_EVERY_SECONDS:
                return
            last.update(at=now, done=done)
            percent = min(100, done * 100 // total) if total else 0
            self.stdout.write(template.format(done=done, total=total, percent=percent))
            self.stdout.flush()

        return tick
