"""The sweep: hand runs that are overdue to a worker again.

A run a worker must still move carries `due_at` (services/runs.py). It is
overdue when its message was lost (the broker was down when it was enqueued,
or restarted without persistence) or when the worker holding it died. The
sweep, run by Celery beat every sixth of HANDRAIL_RECOVERY_SECONDS, enqueues
such runs again, marks them held by SWEPT (the first worker the message
reaches takes the run, whatever its due time says) and pushes their `due_at`
on, so that each is enqueued once per grace period, not once per sweep. A
run no worker holds is only enqueued again while the queue is empty: until
then its message may simply be waiting behind others. Whoever picks a run up
checks its state and hold first, so a message that turns out to be a twin
changes nothing.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from automations.models import Run
from automations.services import dispatch
from automations.services.runs import IN_FLIGHT_STATES, SWEPT, queued_due
from automations.states import RunState

SWEEP_BATCH = 1000
# The states whose run the decide task moves on; the others go to the execute task.
_DECIDE_STATES = frozenset({RunState.RECEIVED, RunState.DECIDING})


@dataclass(frozen=True)
class SweepResult:
    overdue: int  # overdue runs seen (at most SWEEP_BATCH)
    dispatched: int  # enqueued again
    waiting: int  # left alone: nobody holds them and the queue is not empty yet


def runs_overdue(*, now: datetime | None = None) -> QuerySet[Run]:
    """Runs a worker should have moved on by now (the run page and the admin show them)."""
    return Run.objects.filter(state__in=IN_FLIGHT_STATES, due_at__lte=now or timezone.now())


def sweep(*, now: datetime | None = None) -> SweepResult:
    """Enqueue the overdue runs again (oldest first, at most SWEEP_BATCH a sweep).

    Nothing happens while the broker is unreachable: the next sweep tries again.
    """
    now = now or timezone.now()
    overdue = list(
        runs_overdue(now=now).order_by("due_at").values_list("pk", "state", "held_by")[:SWEEP_BATCH]
    )
    if not overdue:
        return SweepResult(0, 0, 0)
    try:
        queued = dispatch.queue_length()
    except dispatch.BrokerUnavailable:
        return SweepResult(len(overdue), 0, len(overdue))
    # A worker's hold that is overdue means the worker was lost: nothing else will move it.
    picked = [
        (pk, state) for pk, state, held_by in overdue if held_by not in ("", SWEPT) or not queued
    ]
    # Only rows still overdue: a run a worker took meanwhile keeps its hold and due time.
    Run.objects.filter(pk__in=[pk for pk, _ in picked], due_at__lte=now).update(
        held_by=SWEPT, due_at=queued_due(now)
    )
    dispatched = 0
    for pk, state in picked:
        send = dispatch.enqueue_decide if state in _DECIDE_STATES else dispatch.enqueue_execute
        # Ahead of any backlog: the run has waited long enough already.
        if not send(pk, priority=settings.HANDRAIL_RECOVERY_PRIORITY):
            break  # the broker went away: these are due again after the grace period
        dispatched += 1
    return SweepResult(len(overdue), dispatched, len(overdue) - len(picked))
