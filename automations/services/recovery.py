"""The sweep: hand runs that are overdue to a worker again.

A run a worker must still move carries `due_at` (services/runs.py). It is
overdue when its message was lost (the broker was down when it was enqueued,
or restarted without persistence) or when the worker holding it died. The
sweep, run by Celery beat every sixth of HANDRAIL_RECOVERY_SECONDS, enqueues
such runs again, marks them held by SWEPT (the first worker the message
reaches takes the run, whatever its due time says) and pushes their `due_at`
on, so that each is enqueued once per grace period, not once per sweep. A
run no worker holds is only enqueued again while the queue is empty: until
then its message may simply be waiting behind others; unless that message
went out before the broker last started (Redis keeps nothing across a
restart), which the sweep sends again at once, overdue or not. A hold that
lapsed while PostgreSQL was down may belong to a live worker that could not
renew it (say, one waiting to record a delivery's answer): such runs are
handed on only once PostgreSQL has been up for a lease. Whoever picks a run
up checks its state and hold first, so a message that turns out to be a twin
changes nothing.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from automations.models import Run
from automations.services import dispatch
from automations.services.runs import IN_FLIGHT_STATES, SWEPT, hold_lease_seconds, queued_due
from automations.states import RunState

SWEEP_BATCH = 1000
# The states whose run the decide task moves on; the others go to the execute task.
_DECIDE_STATES = frozenset({RunState.RECEIVED, RunState.DECIDING})
# The states a run waits in for its message, nobody holding it.
_QUEUED_STATES = frozenset({RunState.RECEIVED, RunState.APPROVED})


@dataclass(frozen=True)
class SweepResult:
    overdue: int  # overdue runs seen (at most SWEEP_BATCH)
    dispatched: int  # enqueued again
    waiting: int  # seen and left alone: not due, or unheld while the queue is not empty


def runs_overdue(*, now: datetime | None = None) -> QuerySet[Run]:
    """Runs a worker should have moved on by now (the run page and the admin show them)."""
    return Run.objects.filter(state__in=IN_FLIGHT_STATES, due_at__lte=now or timezone.now())


def sweep(*, now: datetime | None = None) -> SweepResult:
    """Enqueue again the overdue runs and those whose message the broker lost when it restarted.

    Oldest first, at most SWEEP_BATCH a sweep. Nothing happens while the broker
    is unreachable: the next sweep tries again.
    """
    now = now or timezone.now()
    try:
        queued = dispatch.queue_length()
        started = dispatch.broker_started_at()
    except dispatch.BrokerUnavailable:
        overdue = runs_overdue(now=now)[:SWEEP_BATCH].count()
        return SweepResult(overdue, 0, overdue)
    # A queued run is due half the bound after its message went out: due before half the
    # bound after the broker started, its message went out before and is gone.
    lost_if_due_by = None
    if started is not None:
        lost_if_due_by = started + timedelta(seconds=settings.HANDRAIL_RECOVERY_SECONDS / 2)
    seen = list(
        Run.objects.filter(state__in=IN_FLIGHT_STATES, due_at__lte=max(now, lost_if_due_by or now))
        .order_by("due_at")
        .values_list("pk", "state", "held_by", "due_at")[:SWEEP_BATCH]
    )
    # A hold that lapsed while the database was away may be a live worker's that could not
    # renew it: its run is handed on only once the database has been up for a lease.
    up = database_up_seconds()
    holders_had_time = up is None or up >= hold_lease_seconds()
    picked = [
        (pk, state)
        for pk, state, held_by, due_at in seen
        if _send_again(
            state,
            held_by,
            due_at,
            now=now,
            queued=queued,
            lost=lost_if_due_by,
            holders_had_time=holders_had_time,
        )
    ]
    # Only rows no worker took meanwhile: a live holder keeps its hold and due time.
    Run.objects.filter(
        Q(due_at__lte=now) | Q(held_by__in=("", SWEPT)),
        pk__in=[pk for pk, _ in picked],
        state__in=IN_FLIGHT_STATES,
    ).update(held_by=SWEPT, due_at=queued_due(now))
    dispatched = 0
    for pk, state in picked:
        send = dispatch.enqueue_decide if state in _DECIDE_STATES else dispatch.enqueue_execute
        # Ahead of any backlog: the run has waited long enough already.
        if not send(pk, priority=settings.HANDRAIL_RECOVERY_PRIORITY):
            break  # the broker went away: these are due again after the grace period
        dispatched += 1
    overdue = sum(1 for *_, due_at in seen if due_at <= now)
    return SweepResult(overdue, dispatched, len(seen) - len(picked))


def _send_again(
    state: str,
    held_by: str,
    due_at: datetime,
    *,
    now: datetime,
    queued: int,
    lost: datetime | None,
    holders_had_time: bool,
) -> bool:
    # Due half the bound after its message went out: a run in a queued state, or one the
    # sweep sent.
    queued_run = held_by == SWEPT or (not held_by and state in _QUEUED_STATES)
    if queued_run and lost is not None and due_at <= lost:
        return True  # its message went out before the broker last started
    if due_at > now:
        return False  # a live worker holds it, or its retry is not due yet
    if held_by not in ("", SWEPT):
        # An overdue hold means its worker was lost: nothing else will move the run.
        return holders_had_time
    return not queued


def database_up_seconds() -> float | None:
    """How long PostgreSQL has been up (None on another database)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM now() - pg_postmaster_start_time())")
        return float(cursor.fetchone()[0])
