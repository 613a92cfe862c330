"""Review tasks: claim with a lease, release, decide; every decision leaves a Label.

A claim is a lease: `claimed_by` holds the task until `lease_expires_at`,
after which any reviewer of the queue may claim it again and the first holder
can no longer decide it. `claimed_by` names the current holder only (it is
cleared on release and on decision; `decided_by` names who decided), which
keeps the live claims of a queue, among which a reviewer's own is looked up, few.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import jsonschema
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from automations.models import Label, ReviewOutcome, ReviewState, ReviewTask, Run
from automations.services import dispatch
from automations.services.runs import run_transition
from automations.states import IllegalTransition, RunState
from catalog.audit.trail import trail_append
from catalog.config_cache import intent_schema
from catalog.models import Automation, Role
from catalog.selectors import has_role, may_review, reviewable_automations
from reviewapp.rows import model_columns, row_fetch, row_get, row_insert, rows_update

REJECT_REASONS: list[tuple[str, str]] = [
    ("wrong_intent", "Wrong intent"),
    ("wrong_arguments", "Wrong arguments"),
    ("policy", "Against policy"),
    ("duplicate", "Duplicate"),
    ("not_enough_information", "Not enough information"),
    ("other", "Other (explain in the note)"),
]
REJECT_REASON_CODES = frozenset(code for code, _ in REJECT_REASONS)

# Actions a reviewer may take, by task kind.
APPROVE_ACTIONS = ("approve", "reject")
SUGGEST_ACTIONS = ("use", "discard")


class ReviewError(Exception):
    """A decision that cannot be made; nothing was changed."""


class LeaseExpired(ReviewError):
    """The user does not (or no longer) hold the task's lease."""


class AlreadyDecided(ReviewError):
    """The task was decided before (a double submit, or another path closed it)."""


class RunNotAwaitingReview(ReviewError):
    """The run left `awaiting_review` (e.g. a kill switch) while the task was open."""


class ReviewInvalid(ReviewError):
    """The submitted decision is invalid; `errors` maps a field path to a message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors.items()))
        self.errors = errors


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.HANDRAIL_REVIEW_LEASE_SECONDS)


# The claim in one statement: the oldest claimable task of the queue (pending, or claimed
# with a lapsed lease), leased to the user. Concurrent claimers skip the rows the others
# have locked (PostgreSQL; on SQLite the IMMEDIATE transaction serialises writers). Hand
# SQL, the one place the reviews write it: through the ORM a claim was two statements
# (the pick, then the update), both compiled on every claim (bench/claims-history.md).
_CLAIM_SQL = """
    UPDATE automations_reviewtask
       SET state = %(claimed)s, claimed_by_id = %(user)s, claimed_at = %(now)s,
           lease_expires_at = %(until)s
     WHERE id = (
        SELECT id FROM automations_reviewtask
         WHERE automation_id = %(automation)s
           AND (state = %(pending)s OR (state = %(claimed)s AND lease_expires_at < %(now)s))
         ORDER BY created_at, id
         LIMIT 1 {lock})
    RETURNING {columns}
"""


def claim_statement(*, user_id: int, automation_id: int, now: datetime) -> tuple[str, dict]:
    """The claim's SQL and parameters for this database (bench/claims.py shows its plan)."""
    connection = transaction.get_connection()
    lock = "FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    params = {
        "user": user_id,
        "now": now,
        "until": now + lease_duration(),
        "automation": automation_id,
        "pending": ReviewState.PENDING,
        "claimed": ReviewState.CLAIMED,
    }
    return _CLAIM_SQL.format(lock=lock, columns=model_columns(ReviewTask)), params


def _claim_oldest(*, user: AbstractBaseUser, automation_id: int, now: datetime):
    sql, params = claim_statement(user_id=user.pk, automation_id=automation_id, now=now)
    return row_fetch(ReviewTask, sql, params)


def _held_if_allowed(
    *, user: AbstractBaseUser, automation_id: int, now: datetime
) -> ReviewTask | None:
    """The user's live claim on the queue, if any; PermissionDenied if they may not work it."""
    held = (
        ReviewTask.objects.filter(
            automation=OuterRef("pk"),
            state=ReviewState.CLAIMED,
            claimed_by=user,
            lease_expires_at__gt=now,
        )
        .order_by("created_at", "id")
        .values("pk")[:1]
    )
    rows = list(
        reviewable_automations(user)
        .filter(pk=automation_id)
        .annotate(held_id=Subquery(held))
        .values_list("held_id", flat=True)
    )
    if not rows:
        raise PermissionDenied("you do not review this automation")
    return None if rows[0] is None else ReviewTask.objects.get(pk=rows[0])


def _claim(*, user: AbstractBaseUser, automation_id: int, now: datetime, checked: bool = False):
    """The user's live claim on the queue, else the oldest claimable task leased to them.

    `checked`: the caller, in its own transaction, has just checked that the user
    works this queue and closed their claim on it (a decision): neither is looked up
    again.
    """
    if checked:
        return _claim_oldest(user=user, automation_id=automation_id, now=now)
    with transaction.atomic():
        held = _held_if_allowed(user=user, automation_id=automation_id, now=now)
        if held is not None:
            return held
        return _claim_oldest(user=user, automation_id=automation_id, now=now)


def review_claim_next(
    *, user: AbstractBaseUser, automation: Automation, now: datetime | None = None
) -> ReviewTask | None:
    """Lease the oldest claimable task of the queue to `user`; no two live leases on one task.

    Returns the user's own live claim on this queue if there is one (one task
    at a time per queue), None when the queue is empty; PermissionDenied if
    the user may not work it. On PostgreSQL concurrent claimers skip each
    other's locked rows (SKIP LOCKED); on SQLite the IMMEDIATE transaction
    serialises writers.
    """
    now = now or timezone.now()
    if not has_role(user, Role.REVIEWER, Role.ADMIN):
        raise PermissionDenied("you do not review this automation")
    return _claim(user=user, automation_id=automation.pk, now=now)


def review_release(*, task: ReviewTask, user: AbstractBaseUser) -> ReviewTask:
    """Put a task the user holds back in the queue; raise LeaseExpired if they do not hold it."""
    moved = ReviewTask.objects.filter(
        pk=task.pk, state=ReviewState.CLAIMED, claimed_by=user
    ).update(state=ReviewState.PENDING, claimed_by=None, claimed_at=None, lease_expires_at=None)
    if moved != 1:
        raise LeaseExpired("you do not hold this task any more")
    task.state = ReviewState.PENDING
    task.claimed_by = None
    task.claimed_at = None
    task.lease_expires_at = None
    return task


def intent_diff(model_intent: dict | None, final_intent: dict | None) -> list[dict]:
    """The changes from the model's intent to the final one: [{"path", "from", "to"}, ...]."""
    if final_intent is None:
        return []
    model_intent = model_intent or {}
    changes: list[dict] = []
    if model_intent.get("intent") != final_intent.get("intent"):
        changes.append(
            {"path": "intent", "from": model_intent.get("intent"), "to": final_intent.get("intent")}
        )
    _diff_values("arguments", model_intent.get("arguments"), final_intent.get("arguments"), changes)
    return changes


def _diff_values(path: str, old, new, changes: list[dict]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            _diff_values(f"{path}.{key}", old.get(key), new.get(key), changes)
    elif old != new:
        changes.append({"path": path, "from": old, "to": new})


@lru_cache(maxsize=256)
def _validator(schema_json: str):
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def arguments_errors(schema: dict, arguments) -> dict[str, str]:
    """Validation errors of `arguments` against `schema`, keyed by "arguments.<path>"."""
    if not isinstance(arguments, dict):
        return {"arguments": "must be an object"}
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except jsonschema.SchemaError:
        return {"intent": "this intent's arguments schema is invalid; ask the owner to fix it"}
    errors: dict[str, str] = {}
    for error in validator.iter_errors(arguments):
        path = ".".join(["arguments", *(str(p) for p in error.absolute_path)])
        if error.validator == "required" and isinstance(error.instance, dict):
            for name in error.validator_value:
                if name not in error.instance:
                    errors.setdefault(f"{path}.{name}", "is required")
            continue
        errors.setdefault(path, error.message)
    return errors


@dataclass(frozen=True)
class _Decision:
    """What the reviewer submitted, as review_decide takes it."""

    action: str
    arguments: dict | None
    intent: str | None
    reject_reason: str
    note: str


@dataclass(frozen=True)
class _OpenTask:
    """What a decision reads about the task it decides."""

    automation_id: int
    kind: str
    proposed: dict  # the run's proposed intent ({} when the model proposed none)


def _final_intent(*, open_task: _OpenTask, intent: str | None, arguments) -> dict:
    """The intent the reviewer settled on, validated; raise ReviewInvalid otherwise."""
    proposed = open_task.proposed
    name = intent or proposed.get("intent")
    if not name:
        raise ReviewInvalid({"intent": "the model proposed no intent: choose one"})
    schema = intent_schema(open_task.automation_id, name)
    if schema is None:
        raise ReviewInvalid({"intent": f"{name!r} is not an intent of this automation"})
    if arguments is None:
        arguments = proposed.get("arguments", {}) if name == proposed.get("intent") else {}
    errors = arguments_errors(schema, arguments)
    if errors:
        raise ReviewInvalid(errors)
    return {"intent": name, "arguments": arguments}


def _check_holder(
    *, state: str, outcome: str, holder_id, lease_expires_at, allowed: bool, user, now
) -> None:
    """Raise unless `user` may work the queue and holds a live lease on the task."""
    if not allowed:
        raise PermissionDenied("you do not review this automation")
    if state == ReviewState.DONE:
        raise AlreadyDecided(f"this task was already decided ({outcome})")
    if state != ReviewState.CLAIMED or holder_id != user.pk:
        raise LeaseExpired("you do not hold this task: claim it first")
    if lease_expires_at is None or lease_expires_at <= now:
        raise LeaseExpired("your lease on this task expired; claim it again")


def _lock_open_task(*, task_id: int, user: AbstractBaseUser, now: datetime) -> ReviewTask:
    """Lock the task row, with its run, and check that `user` holds a live lease on it."""
    task = row_get(ReviewTask, where={"id": task_id}, related="run", lock=True)
    if task is None:
        raise ReviewTask.DoesNotExist(f"no review task {task_id}")
    _check_holder(
        state=task.state,
        outcome=task.outcome,
        holder_id=task.claimed_by_id,
        lease_expires_at=task.lease_expires_at,
        allowed=may_review(user, task.automation_id),
        user=user,
        now=now,
    )
    return task


def _decision(*, open_task: _OpenTask, decision: _Decision) -> tuple[str, dict | None]:
    """The outcome and final intent of a decision, validated; raise ReviewInvalid otherwise."""
    action, reject_reason = decision.action, decision.reject_reason
    allowed = SUGGEST_ACTIONS if open_task.kind == "suggest" else APPROVE_ACTIONS
    if action not in allowed:
        raise ReviewInvalid({"action": f"must be one of {', '.join(allowed)} for this task"})
    if action == "reject":
        if reject_reason not in REJECT_REASON_CODES:
            raise ReviewInvalid({"reject_reason": "choose a reason from the list"})
        if reject_reason == "other" and not decision.note.strip():
            raise ReviewInvalid({"note": "explain the reason in the note"})
        return ReviewOutcome.REJECTED, None
    if action == "discard":
        return ReviewOutcome.DISCARDED, None
    final = _final_intent(open_task=open_task, intent=decision.intent, arguments=decision.arguments)
    proposed = open_task.proposed
    unchanged = final["intent"] == proposed.get("intent") and final["arguments"] == proposed.get(
        "arguments"
    )
    if action == "approve":
        return (ReviewOutcome.ACCEPTED if unchanged else ReviewOutcome.EDITED), final
    return (ReviewOutcome.USED if unchanged else ReviewOutcome.USED_EDITED), final


# Where a reviewed run goes: approved ones on to their action, the others stop.
RUN_STATE_AFTER = {
    ReviewOutcome.ACCEPTED: RunState.APPROVED,
    ReviewOutcome.EDITED: RunState.APPROVED,
    ReviewOutcome.REJECTED: RunState.REJECTED,
    # Suggest mode: the person acted outside Handrail; never executed.
    ReviewOutcome.USED: RunState.RECORDED,
    ReviewOutcome.USED_EDITED: RunState.RECORDED,
    ReviewOutcome.DISCARDED: RunState.RECORDED,
}


def _move_run(*, run: Run, user: AbstractBaseUser, outcome: str, final: dict | None, reason: str):
    to_state = RUN_STATE_AFTER[outcome]
    run_id = run.pk
    run_transition(
        run=run,
        to_state=to_state,
        actor=f"user:{user.get_username()}",
        reason=reason,
        fields={"final_intent": final, "decided_by": "reviewer"},
        on_commit=(
            (lambda: dispatch.enqueue_execute(run_id)) if to_state == RunState.APPROVED else None
        ),
    )


def review_decide(
    *,
    task_id: int,
    user: AbstractBaseUser,
    action: str,
    arguments: dict | None = None,
    intent: str | None = None,
    reject_reason: str = "",
    note: str = "",
    now: datetime | None = None,
) -> ReviewTask:
    """Record the holder's decision, its Label and the run's next state, all or nothing.

    `action`: "approve" or "reject" for approve tasks, "use" or "discard" for
    suggest drafts. `arguments` (and `intent`, required when the model
    proposed none) edit the proposal and are validated against the intent's
    schema. Raises LeaseExpired, AlreadyDecided, ReviewInvalid,
    RunNotAwaitingReview, PermissionDenied or ReviewTask.DoesNotExist; on any
    of them nothing is changed. Approval enqueues execution on commit.
    """
    decision = _Decision(action, arguments, intent, reject_reason, note or "")
    decided, _ = _decide(task_id, user, now or timezone.now(), decision, claim_next=False)
    return decided


def review_decide_and_claim_next(
    *,
    task_id: int,
    user: AbstractBaseUser,
    action: str,
    arguments: dict | None = None,
    intent: str | None = None,
    reject_reason: str = "",
    note: str = "",
    now: datetime | None = None,
) -> tuple[ReviewTask, ReviewTask | None]:
    """review_decide, then lease the next task of the same queue: (decided, next or None).

    The console's submit: the decision and the claim are one transaction; the
    claim happens only if the decision was written, so any refusal leaves both
    undone.
    """
    decision = _Decision(action, arguments, intent, reject_reason, note or "")
    return _decide(task_id, user, now or timezone.now(), decision, claim_next=True)


def _decide(task_id: int, user, now: datetime, decision: _Decision, *, claim_next: bool):
    with transaction.atomic():
        decided = _decide_locked(task_id=task_id, user=user, now=now, decision=decision)
        following = None
        if claim_next:
            following = _claim(
                user=user, automation_id=decided.automation_id, now=now, checked=True
            )
    return decided, following


def _run_reason(outcome: str, reject_reason: str) -> str:
    return f"review: {outcome}" + (f" ({reject_reason})" if reject_reason else "")


def _decide_locked(*, task_id: int, user: AbstractBaseUser, now: datetime, decision: _Decision):
    """The decision's writes, in the caller's transaction."""
    task = _lock_open_task(task_id=task_id, user=user, now=now)
    run = task.run
    open_task = _OpenTask(
        automation_id=task.automation_id, kind=task.kind, proposed=run.proposed_intent or {}
    )
    outcome, final = _decision(open_task=open_task, decision=decision)
    _close_task(task=task, user=user, now=now, outcome=outcome, decision=decision)
    _label_record(task=task, user=user, now=now, final=final)
    reason = _run_reason(outcome, task.reject_reason)
    try:
        _move_run(run=run, user=user, outcome=outcome, final=final, reason=reason)
    except IllegalTransition as exc:
        raise RunNotAwaitingReview(
            f"the run is {exc.from_state} now, no longer awaiting review"
        ) from None
    return task


def _close_task(*, task: ReviewTask, user, now: datetime, outcome: str, decision: _Decision):
    """Mark the task done by `user`, in the database and on `task`."""
    claimed_at = task.claimed_at or now
    closed = {
        "state": ReviewState.DONE,
        "claimed_by_id": None,
        "decided_by_id": user.pk,
        "decided_at": now,
        "review_ms": max(0, int((now - claimed_at).total_seconds() * 1000)),
        "outcome": outcome,
        "reject_reason": decision.reject_reason if outcome == ReviewOutcome.REJECTED else "",
        "note": decision.note,
    }
    rows_update(ReviewTask, where={"id": task.pk}, values=closed)
    for name, value in closed.items():
        setattr(task, name, value)


def _label_record(*, task: ReviewTask, user, now: datetime, final: dict | None) -> None:
    """The closed task's Label and its trail entry."""
    run = task.run
    diff = intent_diff(run.proposed_intent, final)
    row_insert(
        Label(
            review_task=task,
            run=run,
            automation_id=task.automation_id,
            outcome=task.outcome,
            model_intent=run.proposed_intent,
            final_intent=final,
            diff=diff,
            reviewer=user,
        )
    )
    trail_append(
        kind="review",
        automation_id=task.automation_id,
        run_id=run.pk,
        data={
            "run": run.pk,
            "task": task.pk,
            "kind": task.kind,
            "outcome": task.outcome,
            "final_intent": final,
            "diff": diff,
            "reject_reason": task.reject_reason,
            "note": task.note,
            "review_ms": task.review_ms,
            "by": user.get_username(),
            "at": now,
        },
    )
