"""Rebuilding every rollup as a long job: started from the browser or the command line,
its progress kept on a RollupRebuild row that both show."""

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from .models import RollupRebuild
from .rollup import rollup_rebuild

# A rebuild that has not finished in this long lost its worker: a new one may start.
ABANDONED_AFTER = timedelta(hours=2)


def rebuild_running(*, now: datetime | None = None) -> RollupRebuild | None:
    """The rebuild under way, if any."""
    since = (now or timezone.now()) - ABANDONED_AFTER
    return (
        RollupRebuild.objects.filter(finished_at=None, started_at__gte=since)
        .select_related("by")
        .order_by("-started_at")
        .first()
    )


def rebuild_start(*, by: AbstractBaseUser | None) -> RollupRebuild:
    """Start a rebuild in the background, or return the one already under way."""
    from .tasks import rebuild  # the task module imports this one

    running = rebuild_running()
    if running is not None:
        return running
    with transaction.atomic():
        record = RollupRebuild.objects.create(by=by)
        transaction.on_commit(lambda: rebuild.apply_async(args=[record.pk]))
    return record


def rebuild_perform(*, rebuild_id: int, progress=None) -> RollupRebuild | None:
    """Run a started rebuild to its end; None when it is gone or already finished."""
    record = RollupRebuild.objects.filter(pk=rebuild_id, finished_at=None).first()
    if record is None:
        return None
    try:
        rollup_rebuild(rebuild=record, progress=progress)
    except Exception as exc:
        # Recorded for the page, then raised: the task's failure is a bug to see.
        RollupRebuild.objects.filter(pk=record.pk).update(
            error=f"{type(exc).__name__}: {exc}"[:500], finished_at=timezone.now()
        )
        raise
    record.refresh_from_db()
    return record
