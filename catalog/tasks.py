"""Celery tasks of the catalog: the trail's sequencer, automatic demotion."""

from celery import shared_task

from catalog.audit.trail import trail_chain
from catalog.governance.demotion import demote_segments


@shared_task(name="catalog.chain_trail", acks_late=False, ignore_result=True)
def chain_trail() -> None:
    # Not retried: beat sends the next one a second later.
    trail_chain()


@shared_task(name="catalog.demote_segments", acks_late=False, ignore_result=True)
def demote_segments_task() -> None:
    demote_segments()
