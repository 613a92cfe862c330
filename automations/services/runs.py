"""The one place a run's state changes, and where a run is opened and held by a worker.

A run that a worker must still move (received, deciding, approved, executing)
carries `due_at`: the time by which it should have moved on. A queued run is
due a grace period after it got there (its message may still be waiting in
the queue); a run a worker holds while deciding it or sending its action is
due when the longest that work may take is over; a run waiting for a retry,
when the retry is. Past `due_at` the sweep (services/recovery.py) hands it to
a worker again, so a lost message or a killed worker delays a run, never
strands it. A run the sweep handed on is held by SWEPT: the first worker its
message reaches takes it, whatever its due time says.
"""

import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from automations.models import Event, Run, RunTransition
from automations.states import IllegalTransition, RunState, check_transition

# The states a worker, not a person, must move a run out of.
IN_FLIGHT_STATES = frozenset(
    {RunState.RECEIVED, RunState.DECIDING, RunState.APPROVED, RunState.EXECUTING}
)
# `held_by` of a run the sweep sent to the queue again because its holder or its message
# was lost; its `due_at` is when the sweep may send it once more.
SWEPT = "sweep"


@cache
def worker_actor() -> str:
    """The name a worker process records on the transitions it makes and the runs it holds."""
    return f"worker:{socket.gethostname()}:{os.getpid()}"


def queued_due(now: datetime) -> datetime:
    """When a run waiting for its message is due: half the recovery bound from now."""
    return now + timedelta(seconds=settings.HANDRAIL_RECOVERY_SECONDS / 2)


def hold(seconds: float, *, now: datetime | None = None) -> dict:
    """The fields that mark a run held by this worker for `seconds` (for run_transition)."""
    return {
        "held_by": worker_actor(),
        "due_at": (now or timezone.now()) + timedelta(seconds=seconds),
    }


def run_open(*, event: Event, actor: str) -> Run:
    """Create the run of a new event in `received`, with its first transition."""
    run = Run.objects.create(
        event=event,
        automation_id=event.automation_id,
        segment=event.segment,
        trace_id=event.trace_id,
        state=RunState.RECEIVED,
        due_at=queued_due(timezone.now()),
    )
    RunTransition.objects.create(
        run=run, from_state="", to_state=RunState.RECEIVED, actor=actor, at=run.created_at
    )
    return run


def run_transition(
    *,
    run: Run,
    to_state: str,
    actor: str,
    reason: str = "",
    fields: dict | None = None,
    on_commit: Callable[[], None] | None = None,
) -> Run:
    """Move `run` to `to_state` if it is still in the state we read, and record the move.

    The update is guarded by the state read, so two workers racing on one run
    cannot both move it: the loser gets IllegalTransition and nothing is
    written. `fields` are saved in the same UPDATE (`hold()` among them for a
    worker that keeps the run); `on_commit` runs once the transaction commits.
    """
    from_state = run.state
    check_transition(from_state, to_state)
    now = timezone.now()
    values = {
        "state": to_state,
        "reason": reason,
        "held_by": "",
        "due_at": queued_due(now) if to_state in IN_FLIGHT_STATES else None,
        **(fields or {}),
    }
    # No savepoint: a lost race writes nothing and raises only after the block, so the
    # caller's transaction stays usable.
    with transaction.atomic(savepoint=False):
        moved = Run.objects.filter(pk=run.pk, state=from_state).update(**values, updated_at=now)
        if moved:
            RunTransition.objects.create(
                run=run,
                from_state=from_state,
                to_state=to_state,
                actor=actor,
                reason=reason,
                at=now,
            )
            if on_commit is not None:
                transaction.on_commit(on_commit)
    if not moved:
        raise transition_refused(run.pk, to_state)
    for name, value in values.items():
        setattr(run, name, value)
    run.updated_at = now
    return run


def transition_refused(run_id: int, to_state: str) -> IllegalTransition:
    """The error for a guarded move that changed nothing, naming the state the run is in now."""
    current = Run.objects.filter(pk=run_id).values_list("state", flat=True).first()
    return IllegalTransition(current or "gone", to_state)


def run_take_over(*, run: Run, seconds: float) -> bool:
    """Hold a run without moving it: its holder was lost, the sweep sent it, or its retry is due.

    False when another worker holds it still, or it moved on.
    """
    now = timezone.now()
    fields = hold(seconds, now=now)
    free = Q(due_at__lte=now) | Q(held_by=SWEPT)
    taken = Run.objects.filter(free, pk=run.pk, state=run.state).update(**fields)
    if taken:
        for name, value in fields.items():
            setattr(run, name, value)
    return bool(taken)


def run_due_later(*, run: Run, due_at: datetime) -> None:
    """Let go of a run that stays where it is until `due_at` (a retry waits)."""
    Run.objects.filter(pk=run.pk, state=run.state).update(held_by="", due_at=due_at)
    run.held_by, run.due_at = "", due_at


def held_elsewhere(run: Run, *, now: datetime | None = None) -> bool:
    """True while another worker holds `run` and is not yet overdue."""
    if run.held_by in ("", SWEPT) or run.due_at is None:
        return False
    return run.due_at > (now or timezone.now())
