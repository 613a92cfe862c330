"""Celery tasks of the catalog: the trail's sequencer and verification, the standing audit
queue, automatic demotion."""

import logging

from celery import shared_task

from catalog.audit.standing import standing_queue_run
from catalog.audit.trail import trail_chain
from catalog.audit.trail_status import trail_verification_perform
from catalog.governance.demotion import demote_segments

logger = logging.getLogger(__name__)


@shared_task(name="catalog.chain_trail", acks_late=False, ignore_result=True)
def chain_trail() -> None:
    # Not retried: beat sends the next one a second later.
    trail_chain()


@shared_task(name="catalog.demote_segments", acks_late=False, ignore_result=True)
def demote_segments_task() -> None:
    demote_segments()


@shared_task(name="catalog.verify_trail", acks_late=False, ignore_result=True)
def verify_trail(verification_id: int) -> None:
    # Not acks_late: a verification lost with its worker is left unfinished, and the
    # compliance page lets a new one start once it is abandoned (trail_status.ABANDONED_AFTER).
    trail_verification_perform(verification_id=verification_id)


@shared_task(name="catalog.audit_standing_queue", acks_late=False, ignore_result=True)
def audit_standing_queue() -> None:
    # Not retried: the next beat carries on from where each standing sample stopped.
    added = standing_queue_run()
    if added:
        logger.info("standing audit queue: %s run(s) added", added)
