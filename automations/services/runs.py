"""The one place a run changes state."""

import socket
from collections.abc import Callable
from functools import cache

from django.db import transaction
from django.utils import timezone

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
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        moved = _move_postgresql(run, from_state, to_state, actor, reason, values, connection)
        if moved and on_commit is not None:
            transaction.on_commit(on_commit)
    else:
        # No savepoint: callers nest this in their own transaction, and a lost race
        # raises only after the block, having written nothing.
        with transaction.atomic(savepoint=False):
            moved = Run.objects.filter(pk=run.pk, state=from_state).update(**values) == 1
            if moved:
                RunTransition.objects.create(
                    run=run, from_state=from_state, to_state=to_state, actor=actor, reason=reason
                )
                if on_commit is not None:
                    transaction.on_commit(on_commit)
    if not moved:
        raise transition_refused(run.pk, to_state)
    for name, value in values.items():
        setattr(run, name, value)
    return run


def transition_refused(run_id: int, to_state: str) -> IllegalTransition:
    """The error for a guarded move that changed nothing, naming the state the run is in now."""
    current = Run.objects.filter(pk=run_id).values_list("state", flat=True).first()
    return IllegalTransition(current or "gone", to_state)


def _move_postgresql(run, from_state, to_state, actor, reason, values, connection) -> bool:
    """The guarded UPDATE and its transition row in one statement (atomic on its own)."""
    fields = [Run._meta.get_field(name) for name in values]
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    params += [run.pk, from_state, from_state, to_state, actor, reason, timezone.now()]
    with connection.cursor() as cursor:
        cursor.execute(_transition_sql(tuple(field.column for field in fields)), params)
        return cursor.fetchone() is not None


@cache
def _transition_sql(columns: tuple[str, ...]) -> str:
    assignments = ", ".join(f'"{column}" = %s' for column in columns)
    run_table, transition_table = Run._meta.db_table, RunTransition._meta.db_table
    return (
        "WITH moved AS ("  # noqa: S608 (table and column names from the models, values bound)
        f" UPDATE {run_table} SET {assignments} WHERE id = %s AND state = %s RETURNING id"
        f") INSERT INTO {transition_table} (run_id, from_state, to_state, actor, reason, at)"
        " SELECT id, %s, %s, %s, %s, %s FROM moved RETURNING id"
    )


@cache
def move_clauses(from_state: str, to_state: str) -> str:
    """WITH clauses (PostgreSQL) moving run %(run)s from `from_state` to `to_state`, recorded.

    The transition row names actor %(actor)s and time %(at)s; `moved` holds the
    run's id when it moved. For a statement that also reads the run: it sees
    the row as it was before the move, and tells whether it moved from `moved`.
    """
    check_transition(from_state, to_state)
    run_table, transitions = Run._meta.db_table, RunTransition._meta.db_table
    return (
        f"moved AS (UPDATE {run_table} SET state = '{to_state}'"  # noqa: S608 (known states)
        f" WHERE id = %(run)s AND state = '{from_state}' RETURNING id),"
        f" noted AS (INSERT INTO {transitions} (run_id, from_state, to_state, actor, reason, at)"
        f" SELECT id, '{from_state}', '{to_state}', %(actor)s, '', %(at)s FROM moved)"
    )
