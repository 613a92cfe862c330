"""Celery tasks: take a run id, call one service, enqueue follow-ups.

Every task is safe to run twice (the services check the run's state under a
guarded update), so all of them use acks_late and reject_on_worker_lost; a
message that is lost anyway is made good by the sweep. Database hiccups are
retried with backoff and jitter; anything else is a bug and surfaces. The
process that runs tasks renews the holds its task has on runs while it runs
(services/runs.py), and lets go of them when it ends.
"""

import logging

from celery import shared_task
from celery.signals import task_postrun, worker_process_init
from django.db import InterfaceError, OperationalError

from automations.services import dispatch
from automations.services.actions import action_attempt, action_compensate
from automations.services.decisions import run_advance
from automations.services.recovery import sweep
from automations.services.runs import hold_renewal_start, holds_release, worker_actor

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError)
# Retries of a compensation the receiver answered 408/409/425/429/5xx or did not answer.
COMPENSATION_RETRIES = 5
COMMON = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="automations.decide_run", **COMMON)
def decide_run(run_id: int) -> None:
    # Decides, then makes the first delivery attempt of an approved run (no execute hop).
    outcome = run_advance(run_id=run_id, actor=worker_actor())
    if outcome.kind == "retry":
        dispatch.enqueue_execute(run_id, outcome.countdown)


@shared_task(name="automations.execute_run", **COMMON)
def execute_run(run_id: int) -> None:
    outcome = action_attempt(run_id=run_id, actor=worker_actor())
    if outcome.kind == "retry":
        # A fresh message per attempt: the countdown comes from the adapter's backoff.
        dispatch.enqueue_execute(run_id, outcome.countdown)


@shared_task(name="automations.compensate_run", bind=True, **COMMON)
def compensate_run(self, run_id: int) -> None:
    outcome = action_compensate(run_id=run_id, actor=worker_actor())
    if outcome.kind == "retry" and self.request.retries < COMPENSATION_RETRIES:
        # The same task again later: its count caps how often a receiver is asked to undo.
        raise self.retry(countdown=outcome.countdown, max_retries=COMPENSATION_RETRIES)


@shared_task(name="automations.sweep", acks_late=False, ignore_result=True)
def sweep_runs() -> None:
    # Not retried: the next beat sweeps again. acks_late off: a sweep lost with its worker
    # is simply the next one.
    result = sweep()
    if result.dispatched:
        logger.info("sweep: handed %s overdue run(s) to workers again", result.dispatched)


@worker_process_init.connect
def _holds_renewed(**kwargs) -> None:
    hold_renewal_start()


@task_postrun.connect
def _holds_released(**kwargs) -> None:
    # A run the task left held (it failed midway) lapses when due and is swept on.
    holds_release()
