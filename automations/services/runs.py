"""The one place a run's state changes, and where a run is opened and held by a worker.

A run that a worker must still move (received, deciding, approved, executing)
carries `due_at`: the time by which it should have moved on. A queued run is
due a grace period after it got there (its message may still be waiting in
the queue); a run a worker holds while deciding it or sending its action is
due when the longest that work may take is over (in a Celery worker, a third
of the recovery bound, renewed while the work goes on: hold_renewal_start);
a run waiting for a retry, when the retry is. Past `due_at` the sweep
(services/recovery.py) hands it to a worker again, so a lost message or a
killed worker delays a run, never strands it. A run the sweep handed on is
held by SWEPT: the first worker its message reaches takes it, whatever its
due time says.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from automations.models import Event, Run, RunTransition
from automations.states import IllegalTransition, RunState, check_transition
from reviewapp.rows import row_insert, rows_update

logger = logging.getLogger(__name__)

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
    """The fields that mark a run held by this worker for `seconds` (for run_transition).

    Where holds are renewed (hold_renewal_start), for at most hold_lease_seconds().
    """
    if _renewal is not None:
        seconds = min(seconds, hold_lease_seconds())
    return {
        "held_by": worker_actor(),
        "due_at": (now or timezone.now()) + timedelta(seconds=seconds),
    }


def run_open(*, event: Event, actor: str) -> Run:
    """Create the run of a new event in `received`, with its first transition."""
    run = Run(
        event=event,
        automation_id=event.automation_id,
        segment=event.segment,
        trace_id=event.trace_id,
        state=RunState.RECEIVED,
        due_at=queued_due(timezone.now()),
    )
    row_insert(run)
    _noted(run.pk, "", RunState.RECEIVED, actor, "", run.created_at)
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
        moved = _moved(run.pk, from_state, values, now)
        if moved:
            _noted(run.pk, from_state, to_state, actor, reason, now)
            if on_commit is not None:
                transaction.on_commit(on_commit)
    if not moved:
        raise transition_refused(run.pk, to_state)
    _held_note(run.pk, held=values["held_by"] == worker_actor())
    for name, value in values.items():
        setattr(run, name, value)
    run.updated_at = now
    return run


def _moved(run_id: int, from_state: str, values: dict, now: datetime) -> bool:
    moved = rows_update(
        Run, where={"id": run_id, "state": from_state}, values={**values, "updated_at": now}
    )
    return moved == 1


def _noted(run_id: int, from_state: str, to_state: str, actor: str, reason: str, now) -> None:
    step = RunTransition(
        run_id=run_id, from_state=from_state, to_state=to_state, actor=actor, reason=reason, at=now
    )
    row_insert(step)


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
    _held_note(run.pk, held=bool(taken))
    if taken:
        for name, value in fields.items():
            setattr(run, name, value)
    return bool(taken)


def run_due_later(*, run: Run, due_at: datetime) -> None:
    """Let go of a run that stays where it is until `due_at` (a retry waits)."""
    Run.objects.filter(pk=run.pk, state=run.state).update(held_by="", due_at=due_at)
    _held_note(run.pk, held=False)
    run.held_by, run.due_at = "", due_at


def held_elsewhere(run: Run, *, now: datetime | None = None) -> bool:
    """True while another worker holds `run` and is not yet overdue."""
    if run.held_by in ("", SWEPT) or run.due_at is None:
        return False
    return run.due_at > (now or timezone.now())


# -- holds renewed while the work goes on ---------------------------------------------------------
#
# A hold must outlast the work it covers, or a second worker takes the run over while the
# first still works on it; it must lapse soon after its worker dies, or the run waits that
# long. A model call or a delivery may take minutes (every attempt at its budget), so in a
# Celery worker a hold lasts a third of the recovery bound and a thread of the worker's own
# renews it while the task runs: a killed worker's runs are overdue within a third of the
# bound, and the sweep hands them on within the next sixth.

_held: set[int] = set()  # the runs this process holds for the task it runs now
_held_lock = threading.Lock()
_renewal: threading.Thread | None = None


def hold_lease_seconds() -> float:
    """How long a renewed hold lasts unless renewed again: a third of the recovery bound."""
    return settings.HANDRAIL_RECOVERY_SECONDS / 3


def _held_note(run_id: int, *, held: bool) -> None:
    with _held_lock:
        if held:
            _held.add(run_id)
        else:
            _held.discard(run_id)


def holds_release() -> None:
    """Renew none of the runs this process holds (its task is over): they lapse when due."""
    with _held_lock:
        _held.clear()


def holds_renew(*, now: datetime | None = None) -> int:
    """Push the due time of the runs this process holds a lease on; how many it still holds."""
    with _held_lock:
        run_ids = list(_held)
    if not run_ids:
        return 0
    due = (now or timezone.now()) + timedelta(seconds=hold_lease_seconds())
    held = Run.objects.filter(pk__in=run_ids, held_by=worker_actor(), state__in=IN_FLIGHT_STATES)
    return held.update(due_at=due)


def hold_renewal_start() -> None:
    """Renew this process's holds from a thread of its own (once per process; Celery workers)."""
    global _renewal
    if _renewal is not None:
        return
    _renewal = threading.Thread(target=_renew_forever, name="handrail-holds", daemon=True)
    _renewal.start()


def _renew_forever() -> None:
    interval = hold_lease_seconds() / 4  # three renewals may fail before a hold lapses
    while True:
        time.sleep(interval)
        try:
            holds_renew()
        except DatabaseError as exc:
            # The holds lapse if the database stays away; the work they cover cannot be
            # recorded meanwhile either.
            logger.warning("could not renew the holds of %s: %s", worker_actor(), exc)
        finally:
            connection.close()  # back to the pool, which discards a broken connection
