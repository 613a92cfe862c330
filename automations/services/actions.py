"""Turn an approved run into its one side effect, one delivery attempt at a time (layer 6).

Each attempt is reserved in a short transaction (the action, the run moved to
or kept in `executing` and held by this worker, and an ActionAttempt row
marked in flight), sent outside any transaction, then recorded. The
reservation re-reads the kill switches and modes and refuses while another
worker holds the run, so duplicate or concurrent tasks never send twice at
once. The first attempt of a run the model approved is reserved in the
decision's own transaction (services/decisions.py).
"""

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from automations.adapters import Adapter, UnknownAdapter, adapter_for
from automations.adapters.base import Delivery
from automations.metrics.tracecontext import trace_bind
from automations.models import Action, ActionAttempt, ActionState, ReviewTask, Run
from automations.services import dispatch
from automations.services.runs import (
    held_elsewhere,
    hold,
    run_due_later,
    run_take_over,
    run_transition,
)
from automations.states import IllegalTransition, RunState
from catalog.audit.trail import trail_append
from catalog.models import Intent
from catalog.policy import policy_lock, policy_now
from reviewapp.rows import row_insert, rows_update

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 4.0
BACKOFF_CAP_SECONDS = 900.0
BACKOFF_FLOOR_SECONDS = 1.0
# Added to an adapter's timeout for the work around the send.
SENDING_LEASE_MARGIN_SECONDS = 10.0
# Marks a reserved attempt whose answer is not recorded yet.
IN_FLIGHT = "in flight: no answer recorded yet"
LOST = "no answer recorded: the worker was lost while sending"
DELIVERING = "delivering the action"  # the run's reason while its action is being sent
# Between tries to record an answer while the database is away, and for how long.
RECORD_RETRY_SECONDS = 1.0
RECORD_PATIENCE_SECONDS = 300.0


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


def sending_lease_seconds(adapter: Adapter, config: dict) -> float:
    """How long a worker holds a run while it sends one attempt."""
    return adapter.timeout_seconds(config) + SENDING_LEASE_MARGIN_SECONDS


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


@dataclass(frozen=True)
class Reserved:
    """An attempt written as in flight; send it once the reserving transaction has committed."""

    action: Action
    attempt: ActionAttempt
    adapter: Adapter
    config: dict


def attempt_first(
    *, run: Run, intent: Intent, adapter: Adapter, actor: str, fields: dict | None = None
) -> Reserved:
    """Move a run that may act now to executing, with its new action and first attempt.

    For a run in `deciding` (the decision's own transaction, `fields` carrying
    the decision) or `approved` (locked by the caller). The caller has checked
    the kill switches and modes in the same transaction.
    """
    config = intent.action_config or {}
    now = timezone.now()
    run_transition(
        run=run,
        to_state=RunState.EXECUTING,
        actor=actor,
        reason=DELIVERING,
        fields={**(fields or {}), **hold(sending_lease_seconds(adapter, config), now=now)},
    )
    action = row_insert(
        Action(
            run=run,
            automation_id=run.automation_id,
            adapter=adapter.name,
            idempotency_key=f"act_{uuid.uuid4().hex}",
            attempt_count=1,
        )
    )
    attempt = row_insert(ActionAttempt(action=action, number=1, started_at=now, error=IN_FLIGHT))
    return Reserved(action=action, attempt=attempt, adapter=adapter, config=config)


def action_attempt(*, run_id: int, actor: str) -> AttemptOutcome:
    """Make at most one delivery attempt for an approved or executing run.

    Never sends when the run is in any other state, when it was switched off
    or its mode stopped acting since approval (the run is halted instead), or
    while another worker holds it. The reservation is a short transaction
    holding the run's row lock; a twin task waits on the lock, then sees what
    this one did.
    """
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("automation")
            .filter(pk=run_id)
            .first()
        )
        if run is None:
            return skip("run is gone")
        trace_bind(trace_id=run.trace_id, run_id=run.pk)
        if run.state not in (RunState.APPROVED, RunState.EXECUTING):
            return skip(f"run is {run.state}")
        if held_elsewhere(run):
            return skip("another worker is sending it")
        reserved = _reserve(run=run, intent=intent_for(run), actor=actor)
    if isinstance(reserved, AttemptOutcome):
        return reserved
    return attempt_send(run=run, reserved=reserved, actor=actor)


def _reserve(*, run: Run, intent: Intent | None, actor: str) -> Reserved | AttemptOutcome:
    """Reserve the next attempt of `run`, locked by the caller in approved or executing."""
    if intent is not None and not intent.action_adapter:
        return run_without_action(run=run, intent=intent, actor=actor)
    action = Action.objects.filter(run_id=run.pk).first()
    policy_lock(automation_id=run.automation_id, exclusive=False)
    block = policy_now(automation_id=run.automation_id, segment=run.segment).why_not()
    if block:
        return run_halt(run=run, action=action, actor=actor, reason=f"{block} after approval")
    try:
        adapter = _adapter(run, intent)
    except LookupError as problem:
        return run_fail(run=run, action=action, actor=actor, reason=str(problem))
    if action is None:
        return attempt_first(run=run, intent=intent, adapter=adapter, actor=actor)
    return _attempt_next(run=run, action=action, intent=intent, adapter=adapter, actor=actor)


def _adapter(run: Run, intent: Intent | None) -> Adapter:
    """The adapter the run's intent names; LookupError saying why there is none."""
    if intent is None:
        name = (run.final_intent or {}).get("intent")
        raise LookupError(
            f"intent {name} no longer exists" if name else "the run has no final intent"
        )
    try:
        return adapter_for(intent.action_adapter)
    except UnknownAdapter as exc:
        raise LookupError(str(exc)) from None


def _attempt_next(
    *, run: Run, action: Action, intent: Intent, adapter: Adapter, actor: str
) -> Reserved | AttemptOutcome:
    """Reserve a retry of an executing run's action (or resend one its lost worker left)."""
    if action.state != ActionState.PENDING:
        return skip(f"action is {action.state}")
    if not run.held_by and run.due_at is not None and run.due_at > timezone.now():
        return skip(f"its next attempt is due at {run.due_at:%H:%M:%S}")
    config = intent.action_config or {}
    last = action.attempts.order_by("-number").first()
    if last is not None and last.error == IN_FLIGHT:
        ActionAttempt.objects.filter(pk=last.pk).update(error=LOST, retryable=True)
        action.last_error = LOST
    number = action.attempt_count + 1
    limit = max_attempts(config)
    if number > limit:
        reason = f"gave up after {limit} attempts: {action.last_error or LOST}"
        return run_fail(run=run, action=action, actor=actor, reason=reason, config=config)
    if not run_take_over(run=run, seconds=sending_lease_seconds(adapter, config)):
        return skip("another worker took it over")
    Action.objects.filter(pk=action.pk).update(attempt_count=number)
    action.attempt_count = number
    attempt = ActionAttempt.objects.create(
        action=action, number=number, started_at=timezone.now(), error=IN_FLIGHT
    )
    return Reserved(action=action, attempt=attempt, adapter=adapter, config=config)


def attempt_send(*, run: Run, reserved: Reserved, actor: str) -> AttemptOutcome:
    """Send a committed reservation, outside any transaction, and record its answer."""
    action, config = reserved.action, reserved.config
    body = action_body(run=run, action=action)
    started = time.monotonic()
    delivery = reserved.adapter.deliver(action=action, run=run, config=config, body=body)
    duration_ms = int((time.monotonic() - started) * 1000)
    logger.info(
        "run %s action %s attempt %s: %s",
        run.pk,
        action.idempotency_key,
        reserved.attempt.number,
        delivery.status_code or delivery.error,
    )
    return attempt_record_patiently(
        run=run, reserved=reserved, delivery=delivery, duration_ms=duration_ms, actor=actor
    )


def attempt_record_patiently(
    *, run: Run, reserved: Reserved, delivery: Delivery, duration_ms: int, actor: str
) -> AttemptOutcome:
    """attempt_record, tried again while the database is away (for up to five minutes).

    Until it is recorded the answer exists only in this worker: lost, the attempt
    stays in flight and the run's next worker sends the action again. The worker's
    hold on the run is renewed once the database is back, and the sweep leaves
    holds that lapsed meanwhile alone for a while (services/recovery.py).
    """
    deadline = time.monotonic() + RECORD_PATIENCE_SECONDS
    tried = False
    while True:
        try:
            if tried:
                # What the failed try moved in memory was rolled back in the database.
                run.refresh_from_db(fields=["state", "reason", "held_by", "due_at", "updated_at"])
            tried = True
            return attempt_record(
                run=run, reserved=reserved, delivery=delivery, duration_ms=duration_ms, actor=actor
            )
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() >= deadline:
                raise
            logger.warning("run %s: could not record the answer yet: %s", run.pk, exc)
        if not connection.in_atomic_block:
            connection.close()  # back to the pool, which discards a broken connection
        time.sleep(RECORD_RETRY_SECONDS)


@transaction.atomic
def attempt_record(
    *, run: Run, reserved: Reserved, delivery: Delivery, duration_ms: int, actor: str
) -> AttemptOutcome:
    """Record what the attempt came to and move the run accordingly."""
    action, attempt = reserved.action, reserved.attempt
    answer = {
        "duration_ms": duration_ms,
        "status_code": delivery.status_code,
        "error": delivery.error,
        "response_excerpt": delivery.response_excerpt,
        "retryable": delivery.retryable,
    }
    rows_update(ActionAttempt, where={"id": attempt.pk}, values=answer)
    trail_append(
        kind="attempt",
        automation_id=run.automation_id,
        run_id=run.pk,
        data={
            "run": run.pk,
            "action": action.idempotency_key,
            "adapter": action.adapter,
            "number": attempt.number,
            "started_at": attempt.started_at,
            "duration_ms": duration_ms,
            "status_code": delivery.status_code,
            "error": delivery.error,
            "retryable": delivery.retryable,
            "by": actor,
        },
    )
    if delivery.ok:
        reason = f"delivered: receiver answered {delivery.status_code}"
        try:
            run_transition(run=run, to_state=RunState.EXECUTED, actor=actor, reason=reason)
        except IllegalTransition as exc:
            return skip(str(exc))  # the answer is kept; the run moved on meanwhile
        action_close(action=action, state=ActionState.SUCCEEDED)
        return AttemptOutcome("done", detail=reason)
    Action.objects.filter(pk=action.pk).update(last_error=delivery.error)
    if delivery.retryable and attempt.number < max_attempts(reserved.config):
        countdown = retry_countdown(attempt.number)
        run_due_later(run=run, due_at=timezone.now() + timedelta(seconds=countdown))
        return AttemptOutcome("retry", countdown=countdown, detail=delivery.error)
    reason = delivery.error
    if delivery.retryable:
        reason = f"gave up after {attempt.number} attempts: {delivery.error}"
    return run_fail(run=run, action=action, actor=actor, reason=reason, config=reserved.config)


def action_close(*, action: Action, state: str, error: str = "") -> None:
    """Settle a pending action once; a settled action is left as it is."""
    rows_update(
        Action,
        where={"id": action.pk, "state": ActionState.PENDING},
        values={"state": state, "last_error": error, "completed_at": timezone.now()},
    )


def run_halt(*, run: Run, action: Action | None, actor: str, reason: str) -> AttemptOutcome:
    """Halt the run and its action without sending anything."""
    try:
        with transaction.atomic():
            run_transition(run=run, to_state=RunState.HALTED, actor=actor, reason=reason)
            if action is not None:
                action_close(action=action, state=ActionState.HALTED, error=reason)
    except IllegalTransition as exc:
        return skip(str(exc))
    logger.info("run %s halted before its action: %s", run.pk, reason)
    return AttemptOutcome("halted", detail=reason)


def run_fail(
    *, run: Run, action: Action | None, actor: str, reason: str, config: dict | None = None
) -> AttemptOutcome:
    """Fail the run and its action for good; compensate once committed if `config` says how.

    A compensation follows only a failure after the action was attempted: the
    receiver may have acted on an attempt that timed out or answered 5xx.
    """
    compensate = None
    if action is not None and (config or {}).get("compensation_url"):
        compensate = partial(dispatch.enqueue_compensate, run.pk)
    try:
        with transaction.atomic():
            if run.state == RunState.APPROVED:
                run_transition(run=run, to_state=RunState.EXECUTING, actor=actor, reason=reason)
            run_transition(
                run=run, to_state=RunState.FAILED, actor=actor, reason=reason, on_commit=compensate
            )
            if action is not None:
                action_close(action=action, state=ActionState.FAILED, error=reason)
    except IllegalTransition as exc:
        return skip(str(exc))
    logger.info("run %s failed its action: %s", run.pk, reason)
    return AttemptOutcome("failed", detail=reason)


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
    trace_bind(trace_id=run.trace_id, run_id=run.pk)
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
