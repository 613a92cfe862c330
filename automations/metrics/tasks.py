"""Celery tasks of the metrics: the rollup job, the drift check, a rebuild from the browser."""

import logging

from celery import shared_task

from .drift import drift_check
from .rebuilds import rebuild_perform
from .rollup import rollup_run

logger = logging.getLogger(__name__)


@shared_task(name="metrics.rollup", acks_late=False, ignore_result=True)
def rollup() -> None:
    # Not retried: the next beat carries on from the cursors.
    rollup_run()


@shared_task(name="metrics.check_drift", acks_late=False, ignore_result=True)
def check_drift() -> None:
    rollup_run()
    result = drift_check()
    for alert in result.raised:
        logger.warning("metrics alert raised: %s", alert)


@shared_task(name="metrics.rebuild", acks_late=False, ignore_result=True)
def rebuild(rebuild_id: int) -> None:
    # Not acks_late: a rebuild lost with its worker stays unfinished and a new one may start
    # (rebuilds.ABANDONED_AFTER); the cursors keep what it had done.
    rebuild_perform(rebuild_id=rebuild_id)
