"""Turn an approved run into its one side effect, one delivery attempt at a time (layer 6).

Each attempt is reserved in a transaction that holds the run's row lock (the
action, the move to executing and an ActionAttempt row marked in flight),
sent outside any transaction, then recorded. The reservation re-reads the
kill switch and refuses while another attempt is in flight, so duplicate or
concurrent tasks never send twice at once. The first attempt of a run the
model approved is reserved in the decision's own transaction; every other
attempt in a short one of its own (attempt_make).
"""

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from automations.adapters import Adapter, UnknownAdapter, adapter_for
from automations.adapters.base import Delivery
from automations.adapters.webhook import timeout_seconds
from automations.models import Action, ActionAttempt, ActionState, ReviewTask, Run
from automations.services.runs import (
    move_clauses,
    move_params,
    run_moved,
    run_transition,
    transition_refused,
)
from automations.states import IllegalTransition, RunState
from catalog.models import Automation, Intent, Mode, SegmentPolicy
from reviewapp.rows import insert_rows, insert_values, inserted

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 4.0
BACKOFF_CAP_SECONDS = 900.0
BACKOFF_FLOOR_SECONDS = 1.0
# Marks a reserved attempt whose answer is not recorded yet.
IN_FLIGHT = "in flight: no answer recorded yet"
LOST = "no answer recorded: the worker was lost while sending"
DELIVERING = "delivering the action"  # the run's reason while its action is being sent
# The modes in which Handrail itself acts; shadow and suggest never do.
ACTING_MODES = frozenset({Mode.APPROVE, Mode.AUTONOMOUS})


# Whether a run may act now, and the automation's mode and its segment's policy
# (if any) that say why not: one prepared statement before every attempt. The
# rule is SQL's alone (a switched-off segment, else the segment's mode if it sets
# one, else the automation's, must be acting), so that the one-statement decision
# (services/decisions.py) can make its writes depend on it; policy_block words it.
_ACTING_LIST = ", ".join(f"'{mode}'" for mode in sorted(ACTING_MODES))
EXECUTION_POLICY_SQL = f"""
SELECT p.enabled IS NOT FALSE AND COALESCE(NULLIF(p.mode, ''), a.mode) IN ({_ACTING_LIST})
       AS acting, a.mode, p.enabled, p.mode
FROM {Run._meta.db_table} r
JOIN {Automation._meta.db_table} a ON a.id = r.automation_id
LEFT JOIN {SegmentPolicy._meta.db_table} p
    ON p.automation_id = a.id AND p.key = r.segment AND r.segment <> ''
WHERE r.id = %(run)s
"""  # noqa: S608 (table names from the models, values bound)


@dataclass(frozen=True)
class AttemptOutcome:
    kind: str  # "done" | "retry" | "failed" | "halted" | "skip"
    countdown: float = 0.0
    detail: str = ""


def skip(detail: str) -> AttemptOutcome:
    return AttemptOutcome("skip", detail=detail)


def retry_countdown(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt`: full jitter under a capped doubling."""
    exponent = min(max(attempt - 1, 0), 30)
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**exponent)
    return max(BACKOFF_FLOOR_SECONDS, random.uniform(0, ceiling))


def max_attempts(config: dict) -> int:
    """The action config's attempt limit, 6 unless a positive integer is given."""
    value = config.get("max_attempts")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_MAX_ATTEMPTS


def run_reviewer(run: Run) -> str | None:
    """The username of the person who decided the run's review, if any."""
    task = ReviewTask.objects.filter(run_id=run.pk).select_related("decided_by").first()
    return task.decided_by.get_username() if task and task.decided_by else None


def action_body(*, run: Run, action: Action) -> dict:
    """The JSON body every adapter sends (contracts section 5), identical on every attempt."""
    final = run.final_intent or {}
    # A run the model decided on its own had no reviewer: no need to look.
    reviewer = None if run.decided_by == "model" else run_reviewer(run)
    decided_by = run.decided_by
    if decided_by not in ("model", "reviewer"):
        decided_by = "reviewer" if reviewer else "model"
    return {
        "run_id": str(run.pk),
        "automation": run.automation.slug,
        "segment": run.segment,
        "intent": final.get("intent"),
        "arguments": final.get("arguments") or {},
        "trace_id": run.trace_id,
        "idempotency_key": action.idempotency_key,
        "decided_by": decided_by,
        "reviewer": reviewer,
    }


def intent_for(run: Run) -> Intent | None:
    """The catalog intent the run's final intent names, as configured now."""
    name = (run.final_intent or {}).get("intent")
    if not name:
        return None
    # Unique per automation: no ordering (the default one joins the automation).
    return Intent.objects.filter(automation_id=run.automation_id, name=name).order_by().first()


def execution_block(*, run: Run) -> str:
    """Why the run may not act right now, read fresh from the database; "" when it may."""
    with connection.cursor() as cursor:
        cursor.execute(EXECUTION_POLICY_SQL, execution_policy_params(run))
        return policy_block(run, *cursor.fetchone())


def execution_policy_params(run: Run) -> dict:
    return {"run": run.pk}


def policy_block(
    run: Run, acting: bool, mode: str, enabled: bool | None, policy_mode: str | None
) -> str:
    """Why the run may not act under this row of EXECUTION_POLICY_SQL; "" when it may."""
    if acting:
        return ""
    if enabled is not None and not enabled:
        return f"segment {run.segment} switched off after approval"
    if policy_mode:
        return f"segment {run.segment} switched to {policy_mode} mode after approval"
    return f"the automation switched to {mode} mode after approval"


def action_get_or_new(*, run: Run, adapter: str) -> tuple[Action, bool]:
    """The run's one action, and whether it is new; its key is made once and kept for every attempt.

    A new action is not saved yet: attempt_reserve inserts it once it knows how the
    reservation ends, so it is written in one statement. Call it holding the run's
    row lock: no other task can then be making the same action, and the unique
    run_id settles anything the lock cannot.
    """
    # A run still approved has none: its action is made in the transaction that moves it
    # on (to executing, halted or failed), so there is nothing to look for.
    if run.state != RunState.APPROVED:
        action = Action.objects.filter(run_id=run.pk).first()
        if action is not None:
            return action, False
    return action_new(run=run, adapter=adapter), True


def action_new(*, run: Run, adapter: str) -> Action:
    """A new, unsaved action for `run`, with the idempotency key every attempt will carry."""
    return Action(
        run=run,
        automation_id=run.automation_id,
        adapter=adapter,
        idempotency_key=f"act_{uuid.uuid4().hex}",
    )


def action_close(*, action: Action, state: str, error: str = "") -> None:
    """Settle a pending action once; a settled action is left as it is."""
    Action.objects.filter(pk=action.pk, state=ActionState.PENDING).update(
        state=state, last_error=error, completed_at=timezone.now()
    )


def run_halt(*, run: Run, action: Action, actor: str, reason: str) -> AttemptOutcome:
    """Halt the run and its action without sending anything."""
    try:
        with transaction.atomic():
            run_transition(run=run, to_state=RunState.HALTED, actor=actor, reason=reason)
            action_close(action=action, state=ActionState.HALTED, error=reason)
    except IllegalTransition as exc:
        return skip(str(exc))
    logger.info("run %s halted before its action: %s", run.pk, reason)
    return AttemptOutcome("halted", detail=reason)


def run_fail(*, run: Run, action: Action | None, actor: str, reason: str) -> AttemptOutcome:
    """Fail the run and its action for good."""
    try:
        with transaction.atomic():
            run_transition(run=run, to_state=RunState.FAILED, actor=actor, reason=reason)
            if action is not None:
                action_close(action=action, state=ActionState.FAILED, error=reason)
    except IllegalTransition as exc:
        return skip(str(exc))
    logger.info("run %s failed its action: %s", run.pk, reason)
    return AttemptOutcome("failed", detail=reason)


@dataclass(frozen=True)
class Reserved:
    """An attempt written as in flight; send it once the reserving transaction has committed."""

    action: Action
    attempt: ActionAttempt
    adapter: Adapter
    config: dict


def attempt_reserve_locked(
    *, run: Run, intent: Intent | None, actor: str
) -> Reserved | AttemptOutcome:
    """Reserve the next attempt of `run`, whose row the caller's transaction has locked.

    `run.state` must be what the caller read under that lock, approved or
    executing; `intent` is the catalog intent its final intent names (None
    when there is none). In order: an intent without adapter settles the run
    (nothing to send), its one action is made or read, no other attempt may be
    in flight, the kill switch and mode are re-read (a switched-off run is
    halted, never sent), an approved run moves to executing, a problem (no
    intent, unknown adapter) fails it, and the attempt row is written marked
    in flight. The decision's own transaction calls it for a run it has just
    approved; attempt_make calls it for every other attempt.
    """
    if intent is not None and not intent.action_adapter:
        return run_without_action(run=run, intent=intent, actor=actor)
    adapter, problem = None, ""
    if intent is None:
        name = (run.final_intent or {}).get("intent")
        problem = f"intent {name} no longer exists" if name else "the run has no final intent"
    else:
        try:
            adapter = adapter_for(intent.action_adapter)
        except UnknownAdapter as exc:
            problem = str(exc)
    config = (intent.action_config or {}) if intent else {}
    now = timezone.now()
    action, created = action_get_or_new(run=run, adapter=intent.action_adapter if intent else "")
    if action.state != ActionState.PENDING:
        return skip(f"action is {action.state}")
    last = None if created else action.attempts.order_by("-number").first()
    if last is not None and last.status_code is None and last.error == IN_FLIGHT:
        lost_after = timedelta(seconds=4 * timeout_seconds(config) + 30)
        if now - last.started_at < lost_after:
            # Another task is sending; come back once it must have answered or died.
            wait = (last.started_at + lost_after - now).total_seconds()
            return AttemptOutcome("retry", countdown=wait, detail="an attempt is in flight")
        ActionAttempt.objects.filter(pk=last.pk).update(error=LOST, retryable=True)
    block = execution_block(run=run)
    if created and (block or problem):
        insert_rows([action])  # kept, halted or failed, with the run
    if block:
        return run_halt(run=run, action=action, actor=actor, reason=block)
    if created and not problem and run.state == RunState.APPROVED and _postgresql():
        # The common case, every autonomous decision's: one statement instead of three.
        attempt = ActionAttempt(action=action, number=1, started_at=now, error=IN_FLIGHT)
        _reserve_first_postgresql(run=run, action=action, attempt=attempt, actor=actor, now=now)
        return Reserved(action=action, attempt=attempt, adapter=adapter, config=config)
    if run.state == RunState.APPROVED:
        run_transition(run=run, to_state=RunState.EXECUTING, actor=actor, reason=DELIVERING)
    if problem:
        return run_fail(run=run, action=action, actor=actor, reason=problem)
    number = (last.number if last else 0) + 1
    limit = max_attempts(config)
    if number > limit:
        return run_fail(
            run=run,
            action=action,
            actor=actor,
            reason=f"gave up after {limit} attempts: {action.last_error or LOST}",
        )
    action.attempt_count = number
    if created:
        insert_rows([action])
    else:
        Action.objects.filter(pk=action.pk).update(attempt_count=number)
    attempt = ActionAttempt(action=action, number=number, started_at=now, error=IN_FLIGHT)
    insert_rows([attempt])
    return Reserved(action=action, attempt=attempt, adapter=adapter, config=config)


def _postgresql() -> bool:
    return transaction.get_connection().vendor == "postgresql"


def _reserve_first_postgresql(
    *, run: Run, action: Action, attempt: ActionAttempt, actor: str, now
) -> None:
    """Move an approved run to executing and write its new action and first attempt, at once.

    The action is inserted from the moved row and the attempt from the action,
    so a run that was not approved any more gets nothing (the caller holds its
    row lock, so it was).
    """
    connection = transaction.get_connection()
    values = {"state": RunState.EXECUTING, "reason": DELIVERING}
    params = move_params(
        run_id=run.pk,
        from_state=run.state,
        to_state=RunState.EXECUTING,
        actor=actor,
        reason=DELIVERING,
        values=values,
        connection=connection,
        at=now,
    )
    columns, rows_params = first_attempt_params(action, attempt, connection)
    sql = (
        f"WITH {move_clauses(('state', 'reason'))}, {first_attempt_clauses(*columns)}"  # noqa: S608
        " SELECT action.id, attempt.id FROM action, attempt"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params | rows_params)
        row = cursor.fetchone()
    if row is None:
        raise transition_refused(run.pk, RunState.EXECUTING)
    first_attempt_inserted(action, attempt, row)
    run_moved(run, values, now)


def first_attempt_params(action: Action, attempt: ActionAttempt, connection) -> tuple:
    """((action columns, attempt columns), named values) for first_attempt_clauses."""
    action.attempt_count = attempt.number
    # Left out, so NULL: a new action is not completed, an attempt in flight has no status.
    action_columns, action_values = insert_values(action, connection, skip=("run", "completed_at"))
    attempt_columns, attempt_values = insert_values(
        attempt, connection, skip=("action", "number", "status_code")
    )
    params = {f"action{n}": value for n, value in enumerate(action_values)}
    params |= {f"attempt{n}": value for n, value in enumerate(attempt_values)}
    return (tuple(action_columns), tuple(attempt_columns)), params


@cache
def first_attempt_clauses(action_columns: tuple[str, ...], attempt_columns: tuple[str, ...]) -> str:
    """WITH clauses (PostgreSQL) writing a new action from `moved` and its attempt from it.

    Nothing is written when `moved` (runs.move_clauses) moved nothing; `action`
    and `attempt` hold the new keys. The attempt's number is the action's count.
    """

    def placeholders(prefix: str, count: int) -> str:
        return ", ".join(f"%({prefix}{n})s" for n in range(count))

    run_column = Action._meta.get_field("run").column
    count_column = Action._meta.get_field("attempt_count").column
    action_column = ActionAttempt._meta.get_field("action").column
    number_column = ActionAttempt._meta.get_field("number").column
    return (
        f"action AS (INSERT INTO {Action._meta.db_table}"  # noqa: S608 (model names, values bound)
        f" ({run_column}, {', '.join(action_columns)})"
        f" SELECT moved.id, {placeholders('action', len(action_columns))} FROM moved"
        f" RETURNING id, {count_column}),"
        f" attempt AS (INSERT INTO {ActionAttempt._meta.db_table}"
        f" ({action_column}, {number_column}, {', '.join(attempt_columns)})"
        f" SELECT action.id, action.{count_column},"
        f" {placeholders('attempt', len(attempt_columns))} FROM action"
        " RETURNING id)"
    )


def first_attempt_inserted(action: Action, attempt: ActionAttempt, ids) -> None:
    """Mark the action and attempt saved with the keys `action` and `attempt` returned."""
    inserted([action], [ids[0]])
    attempt.action = action  # now with its key
    inserted([attempt], [ids[1]])


def attempt_record(
    *,
    run: Run,
    action: Action,
    attempt: ActionAttempt,
    delivery: Delivery,
    duration_ms: int,
    config: dict,
    actor: str,
) -> AttemptOutcome:
    """Record what the attempt came to and move the run accordingly."""
    number = attempt.number
    logger.info(
        "run %s action %s attempt %s: %s",
        run.pk,
        action.idempotency_key,
        number,
        delivery.status_code or delivery.error,
    )
    if delivery.ok and transaction.get_connection().vendor == "postgresql":
        return _record_delivered_postgresql(
            run=run,
            action=action,
            attempt=attempt,
            delivery=delivery,
            duration_ms=duration_ms,
            actor=actor,
        )
    with transaction.atomic():
        ActionAttempt.objects.filter(pk=attempt.pk).update(
            duration_ms=duration_ms,
            status_code=delivery.status_code,
            error=delivery.error,
            response_excerpt=delivery.response_excerpt,
            retryable=delivery.retryable,
        )
        if delivery.ok:
            action_close(action=action, state=ActionState.SUCCEEDED)
            reason = f"delivered: receiver answered {delivery.status_code}"
            try:
                run_transition(run=run, to_state=RunState.EXECUTED, actor=actor, reason=reason)
            except IllegalTransition as exc:
                return skip(str(exc))
            return AttemptOutcome("done", detail=reason)
        Action.objects.filter(pk=action.pk).update(last_error=delivery.error)
        if delivery.retryable and number < max_attempts(config):
            countdown = retry_countdown(number)
            return AttemptOutcome("retry", countdown=countdown, detail=delivery.error)
        reason = delivery.error
        if delivery.retryable:
            reason = f"gave up after {number} attempts: {delivery.error}"
        return run_fail(run=run, action=action, actor=actor, reason=reason)


# A delivered attempt in one statement (the common case, once per autonomous
# decision): the attempt's answer, the action succeeded, and the run executed
# with its transition if it is still executing (as the ORM path below, the
# answer is kept even when the run moved on meanwhile).
DELIVERED_SQL = """
WITH moved AS (
    UPDATE automations_run SET state = 'executed', reason = %(reason)s, updated_at = %(now)s
    WHERE id = %(run)s AND state = 'executing'
    RETURNING id
), attempt AS (
    UPDATE automations_actionattempt
    SET duration_ms = %(duration_ms)s, status_code = %(status_code)s, error = %(error)s,
        response_excerpt = %(excerpt)s, retryable = %(retryable)s
    WHERE id = %(attempt)s
), action AS (
    UPDATE automations_action SET state = 'succeeded', last_error = '', completed_at = %(now)s
    WHERE id = %(action)s AND state = 'pending'
)
INSERT INTO automations_runtransition (run_id, from_state, to_state, actor, reason, at)
SELECT id, 'executing', 'executed', %(actor)s, %(reason)s, %(now)s FROM moved
RETURNING id
"""


def _record_delivered_postgresql(
    *,
    run: Run,
    action: Action,
    attempt: ActionAttempt,
    delivery: Delivery,
    duration_ms: int,
    actor: str,
) -> AttemptOutcome:
    reason = f"delivered: receiver answered {delivery.status_code}"
    params = {
        "run": run.pk,
        "attempt": attempt.pk,
        "action": action.pk,
        "duration_ms": duration_ms,
        "status_code": delivery.status_code,
        "error": delivery.error,
        "excerpt": delivery.response_excerpt,
        "retryable": delivery.retryable,
        "reason": reason,
        "actor": actor,
        "now": timezone.now(),
    }
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(DELIVERED_SQL, params)
        moved = cursor.fetchone() is not None
    if not moved:
        return skip(str(transition_refused(run.pk, RunState.EXECUTED)))
    run.state, run.reason = RunState.EXECUTED, reason
    return AttemptOutcome("done", detail=reason)


def action_attempt(*, run_id: int, actor: str) -> AttemptOutcome:
    """Make at most one delivery attempt for an approved or executing run.

    Never sends when the run is in any other state, when its segment or mode
    was switched off since approval (the run is halted instead), or while
    another attempt is in flight.
    """
    run = Run.objects.select_related("automation").filter(pk=run_id).first()
    if run is None:
        return skip("run is gone")
    if run.state not in (RunState.APPROVED, RunState.EXECUTING):
        return skip(f"run is {run.state}")
    return attempt_make(run=run, intent=intent_for(run), actor=actor)


def attempt_make(*, run: Run, intent: Intent | None, actor: str) -> AttemptOutcome:
    """Make at most one delivery attempt for `run`, read moments ago in approved or executing.

    `intent` is the catalog intent its final intent names (None when there is none).
    The attempt is reserved in one short transaction under the run's row lock,
    which re-reads everything that decides whether to send (state, action,
    attempt in flight, kill switch, mode); a twin task waits on the lock and
    then sees what this one did. The unique constraints settle anything the
    lock cannot (SQLite), and the loser of such a race changes nothing.
    """
    try:
        with transaction.atomic():
            state = (
                Run.objects.select_for_update()
                .filter(pk=run.pk)
                .values_list("state", flat=True)
                .first()
            )
            if state not in (RunState.APPROVED, RunState.EXECUTING):
                return skip(f"run is {state or 'gone'}")
            run.state = state
            reserved = attempt_reserve_locked(run=run, intent=intent, actor=actor)
    except IntegrityError:
        return skip("a concurrent task reserved this attempt first")
    if isinstance(reserved, AttemptOutcome):
        return reserved
    return attempt_send(run=run, reserved=reserved, actor=actor)


def attempt_send(*, run: Run, reserved: Reserved, actor: str) -> AttemptOutcome:
    """Send a committed reservation, outside any transaction, and record its answer."""
    action, config = reserved.action, reserved.config
    body = action_body(run=run, action=action)
    started = time.monotonic()
    delivery = reserved.adapter.deliver(action=action, run=run, config=config, body=body)
    duration_ms = int((time.monotonic() - started) * 1000)
    return attempt_record(
        run=run,
        action=action,
        attempt=reserved.attempt,
        delivery=delivery,
        duration_ms=duration_ms,
        config=config,
        actor=actor,
    )


def run_without_action(*, run: Run, intent: Intent, actor: str) -> AttemptOutcome:
    """Settle a run whose intent has no adapter: there is nothing to send."""
    reason = f"intent {intent.name} has no action: nothing was sent"
    try:
        with transaction.atomic():
            if run.state == RunState.APPROVED:
                run_transition(run=run, to_state=RunState.EXECUTING, actor=actor, reason=reason)
            run_transition(run=run, to_state=RunState.EXECUTED, actor=actor, reason=reason)
    except IllegalTransition as exc:
        return skip(str(exc))
    return AttemptOutcome("done", detail=reason)


def action_compensate(*, run_id: int, actor: str) -> AttemptOutcome:
    """Send the compensation of a failed or executed run's action; compensated on a 2xx.

    Skips, changing nothing, when the run is in another state, never had an
    action, or its intent has no compensation configured. A retryable answer
    returns "retry" with a countdown; the caller caps how often it retries.
    """
    run = Run.objects.select_related("automation").filter(pk=run_id).first()
    if run is None:
        return skip("run is gone")
    if run.state not in (RunState.FAILED, RunState.EXECUTED):
        return skip(f"run is {run.state}")
    action = Action.objects.filter(run_id=run.pk).first()
    intent = intent_for(run)
    if action is None or intent is None:
        return skip("nothing was attempted" if action is None else "the intent no longer exists")
    try:
        adapter = adapter_for(action.adapter)
    except UnknownAdapter as exc:
        return skip(str(exc))
    body = action_body(run=run, action=action)
    delivery = adapter.compensate(
        action=action, run=run, config=intent.action_config or {}, body=body
    )
    if delivery is None:
        return skip("no compensation is configured")
    return compensation_record(run=run, action=action, delivery=delivery, actor=actor)


def compensation_record(
    *, run: Run, action: Action, delivery: Delivery, actor: str
) -> AttemptOutcome:
    """Mark the run compensated after a 2xx; otherwise keep the error on the action."""
    logger.info(
        "run %s compensation of %s: %s",
        run.pk,
        action.idempotency_key,
        delivery.status_code or delivery.error,
    )
    if not delivery.ok:
        error = f"compensation: {delivery.error}"
        Action.objects.filter(pk=action.pk).update(last_error=error)
        if delivery.retryable:
            return AttemptOutcome("retry", countdown=retry_countdown(1), detail=error)
        return AttemptOutcome("failed", detail=error)
    reason = f"compensation delivered: receiver answered {delivery.status_code}"
    try:
        with transaction.atomic():
            run_transition(run=run, to_state=RunState.COMPENSATED, actor=actor, reason=reason)
            Action.objects.filter(pk=action.pk).update(state=ActionState.COMPENSATED)
    except IllegalTransition as exc:
        return skip(str(exc))
    return AttemptOutcome("done", detail=reason)
