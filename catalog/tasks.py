"""Celery tasks of the catalog: the trail's sequencer, the standing audit queue."""

import logging

from celery import shared_task

from catalog.audit.standing import standing_queue_run
from catalog.audit.trail import trail_chain

logger = logging.getLogger(__name__)


@shared_task(name="catalog.chain_trail", acks_late=False, ignore_result=True)
def chain_trail() -> None:
    # Not retried: beat sends the next one a second later.
    trail_chain()


@shared_task(name="catalog.audit_standing_queue", acks_late=False, ignore_result=True)
def audit_standing_queue() -> None:
    # Not retried: the next beat carries on from where each standing sample stopped.
    added = standing_queue_run()
    if added:
        logger.info("standing audit queue: %s run(s) added", added)
