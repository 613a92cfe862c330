"""Celery tasks of the metrics: the rollup job and a rebuild started from the browser."""

from celery import shared_task

from .rebuilds import rebuild_perform
from .rollup import rollup_run


@shared_task(name="metrics.rollup", acks_late=False, ignore_result=True)
def rollup() -> None:
    # Not retried: the next beat carries on from the cursors.
    rollup_run()


@shared_task(name="metrics.rebuild", acks_late=False, ignore_result=True)
def rebuild(rebuild_id: int) -> None:
    # Not acks_late: a rebuild lost with its worker stays unfinished and a new one may start
    # (rebuilds.ABANDONED_AFTER); the cursors keep what it had done.
    rebuild_perform(rebuild_id=rebuild_id)
