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
    now = timezone.now()
    if connection.vendor == "postgresql":
        moved = _move_postgresql(run, from_state, to_state, actor, reason, values, connection, now)
        if moved and on_commit is not None:
            transaction.on_commit(on_commit)
    else:
        # No savepoint: callers nest this in their own transaction, and a lost race
        # raises only after the block, having written nothing. update() skips auto_now.
        with transaction.atomic(savepoint=False):
            moved = (
                Run.objects.filter(pk=run.pk, state=from_state).update(**values, updated_at=now)
                == 1
            )
            if moved:
                RunTransition.objects.create(
                    run=run, from_state=from_state, to_state=to_state, actor=actor, reason=reason
                )
                if on_commit is not None:
                    transaction.on_commit(on_commit)
    if not moved:
        raise transition_refused(run.pk, to_state)
    return run_moved(run, values, now)


def run_moved(run: Run, values: dict, at) -> Run:
    """Give `run` the fields a move just saved (move_params' `values`, and updated_at)."""
    for name, value in values.items():
        setattr(run, name, value)
    run.updated_at = at
    return run


def transition_refused(run_id: int, to_state: str) -> IllegalTransition:
    """The error for a guarded move that changed nothing, naming the state the run is in now."""
    current = Run.objects.filter(pk=run_id).values_list("state", flat=True).first()
    return IllegalTransition(current or "gone", to_state)


def _move_postgresql(run, from_state, to_state, actor, reason, values, connection, now) -> bool:
    """The guarded UPDATE and its transition row in one statement (atomic on its own)."""
    params = move_params(
        run_id=run.pk,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        reason=reason,
        values=values,
        connection=connection,
        at=now,
    )
    with connection.cursor() as cursor:
        cursor.execute(_transition_sql(tuple(values)), params)
        return cursor.fetchone() is not None


@cache
def _transition_sql(names: tuple[str, ...]) -> str:
    return f"WITH {move_clauses(names)} SELECT id FROM noted"  # noqa: S608 (model names)


@cache
def move_clauses(names: tuple[str, ...], via: bool = False, when: str = "") -> str:
    """WITH clauses (PostgreSQL) moving a run and recording the move, for move_params' values.

    `moved` holds the run's id when it was still in its from-state and moved
    (updated_at set to the transition's time), `noted` the transition row's. A
    statement that also reads the run sees the row as it was before the move
    and learns from `moved` whether it moved. With `via`, the run passes
    through a state on the way (one row can be updated once per statement):
    two transitions, in order, the first with its own reason. `when` is one
    more SQL condition the move needs (on earlier clauses of the statement).
    """
    fields = [Run._meta.get_field(name) for name in names]
    assignments = ", ".join(f'"{field.column}" = %({_param(field)})s' for field in fields)
    assignments += ', "updated_at" = %(at)s'
    run_table, transitions = Run._meta.db_table, RunTransition._meta.db_table

    def step(source: str, target: str, reason: str) -> str:
        # One transition row; the arguments name its parameters, whose values are bound.
        # The casts: a UNION would take the states for text, the run's column is varchar.
        return (
            f" SELECT id, %({source})s::varchar, %({target})s::varchar, %(actor)s,"  # noqa: S608
            f" %({reason})s, %(at)s FROM moved"
        )

    steps = step("from_state", "to_state", "reason")
    if via:
        steps = (
            step("from_state", "via_state", "via_reason")
            + " UNION ALL"
            + step("via_state", "to_state", "reason")
        )
    return (
        f"moved AS (UPDATE {run_table} SET {assignments}"  # noqa: S608 (model names, values bound)
        f" WHERE id = %(run)s AND state = %(from_state)s{f' AND {when}' if when else ''}"
        " RETURNING id),"
        f" noted AS (INSERT INTO {transitions} (run_id, from_state, to_state, actor, reason, at)"
        f"{steps} RETURNING id)"
    )


def _param(field) -> str:
    # The run's state and reason are the transition's own: one value each (psycopg
    # re-parses a statement of more than 50 parameters on every call).
    return {"state": "to_state", "reason": "reason"}.get(field.name, f"set_{field.column}")


def move_params(
    *,
    run_id,
    from_state,
    to_state,
    actor,
    connection,
    reason="",
    values=None,
    at=None,
    via=None,
    via_reason="",
) -> dict:
    """The values for move_clauses(tuple(values), via=bool(via)): the moves checked first.

    `values` are the run's fields to set by name, the new state among them.
    """
    if via:
        check_transition(from_state, via)
        check_transition(via, to_state)
    else:
        check_transition(from_state, to_state)
    values = values or {"state": to_state}
    if values.get("state", to_state) != to_state or values.get("reason", reason) != reason:
        raise ValueError("a move sets the run's state and reason to the transition's")
    params = {
        _param(field): field.get_db_prep_save(values[field.name], connection)
        for field in (Run._meta.get_field(name) for name in values)
    }
    if via:
        params |= {"via_state": via, "via_reason": via_reason}
    return params | {
        "run": run_id,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "reason": reason,
        "at": at or timezone.now(),
    }
