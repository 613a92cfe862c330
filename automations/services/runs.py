"""The one place a run changes state."""

import socket
from collections.abc import Callable

from django.db import transaction

from automations.models import Run, RunTransition
from automations.states import IllegalTransition, check_transition


def worker_actor() -> str:
    """The actor name a Celery worker or command records on the transitions it makes."""
    return f"worker:{socket.gethostname()}"


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

    The update is guarded by the current state, so two workers racing on one
    run cannot both move it: the loser gets IllegalTransition. `fields` are
    saved in the same UPDATE; `on_commit` runs once the transaction commits.
    """
    from_state = run.state
    check_transition(from_state, to_state)
    values = {"state": to_state, **(fields or {})}
    if reason:
        values.setdefault("reason", reason)
    # No savepoint: callers nest this in their own transaction, and a lost race
    # raises only after the block, having written nothing (two round trips saved).
    with transaction.atomic(savepoint=False):
        moved = Run.objects.filter(pk=run.pk, state=from_state).update(**values)
        if moved == 1:
            RunTransition.objects.create(
                run=run, from_state=from_state, to_state=to_state, actor=actor, reason=reason
            )
            if on_commit is not None:
                transaction.on_commit(on_commit)
    if moved != 1:
        current = Run.objects.filter(pk=run.pk).values_list("state", flat=True).first()
        raise IllegalTransition(current or "gone", to_state)
    for name, value in values.items():
        setattr(run, name, value)
    return run
