"""GET /api/v1/runs/{run_id}: load a run with everything about it in a fixed number of queries."""

from datetime import datetime
from typing import Any

from django.db.models import Prefetch
from ninja import Field, Schema

from automations.models import ModelCall, Run

# Ids beyond a signed 64-bit integer cannot exist, and PostgreSQL would refuse to compare them.
MAX_RUN_ID = 2**63 - 1


class EventOut(Schema):
    idempotency_key: str
    source: str
    received_at: datetime
    body_sha256: str


class VerdictOut(Schema):
    check: str
    verdict: str
    reason: str
    details: dict[str, Any]


class ModelCallOut(Schema):
    provider: str
    model: str
    prompt_version: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: int
    error: str
    request_id: str


class ReviewOut(Schema):
    state: str
    outcome: str
    reviewer: str | None
    reject_reason: str
    note: str
    review_ms: int | None
    decided_at: datetime | None


class AttemptOut(Schema):
    number: int
    status_code: int | None
    error: str
    duration_ms: int
    started_at: datetime


class ActionOut(Schema):
    adapter: str
    idempotency_key: str
    state: str
    attempt_count: int
    last_error: str
    attempts: list[AttemptOut]


class TransitionOut(Schema):
    from_: str | None = Field(..., alias="from")
    to: str
    at: datetime
    actor: str
    reason: str


class RunDetailOut(Schema):
    run_id: str
    automation: str
    segment: str
    status: str
    trace_id: str
    created_at: datetime
    updated_at: datetime
    event: EventOut
    intent: dict[str, Any] | None
    final_intent: dict[str, Any] | None
    decided_by: str
    reason: str
    verdicts: list[VerdictOut]
    model_calls: list[ModelCallOut]
    review: ReviewOut | None
    action: ActionOut | None
    transitions: list[TransitionOut]


def run_for_detail(run_id: str) -> Run | None:
    """The run with id `run_id` (digits only) and all it shows, or None; at most five queries."""
    if not run_id.isascii() or not run_id.isdigit() or int(run_id) > MAX_RUN_ID:
        return None
    return (
        Run.objects.select_related(
            "event",
            "automation",
            "review_task__claimed_by",
            "review_task__decided_by",
            "action",
        )
        .prefetch_related(
            Prefetch("model_calls", queryset=ModelCall.objects.order_by("created_at", "pk")),
            "transitions",
            "action__attempts",
        )
        .filter(pk=int(run_id))
        .first()
    )


def run_detail(run: Run) -> dict:
    """Everything a client may know about a run, as plain JSON-ready values (see RunDetailOut)."""
    event = run.event
    # A missing reverse one-to-one raises an AttributeError subclass: getattr's default applies.
    review = getattr(run, "review_task", None)
    action = getattr(run, "action", None)
    return {
        "run_id": str(run.pk),
        "automation": run.automation.slug,
        "segment": run.segment,
        "status": run.state,
        "trace_id": run.trace_id,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "event": {
            "idempotency_key": event.idempotency_key,
            "source": event.source,
            "received_at": event.received_at,
            "body_sha256": event.body_sha256,
        },
        "intent": run.proposed_intent,
        "final_intent": run.final_intent,
        "decided_by": run.decided_by,
        "reason": run.reason,
        "verdicts": run.verdicts,
        "model_calls": [
            {
                "provider": c.provider,
                "model": c.model,
                "prompt_version": c.prompt_version,
                "input_tokens": c.input_tokens,
                "output_tokens": c.output_tokens,
                "cost_usd": float(c.cost_usd),
                "latency_ms": c.latency_ms,
                "error": c.error,
                "request_id": c.request_id,
            }
            for c in run.model_calls.all()
        ],
        "review": _review_detail(review) if review else None,
        "action": _action_detail(action) if action else None,
        "transitions": [
            {
                "from": t.from_state or None,
                "to": t.to_state,
                "at": t.at,
                "actor": t.actor,
                "reason": t.reason,
            }
            for t in run.transitions.all()
        ],
    }


def _review_detail(task) -> dict:
    person = task.decided_by or task.claimed_by
    return {
        "state": task.state,
        "outcome": task.outcome,
        "reviewer": person.get_username() if person else None,
        "reject_reason": task.reject_reason,
        "note": task.note,
        "review_ms": task.review_ms,
        "decided_at": task.decided_at,
    }


def _action_detail(action) -> dict:
    return {
        "adapter": action.adapter,
        "idempotency_key": action.idempotency_key,
        "state": action.state,
        "attempt_count": action.attempt_count,
        "last_error": action.last_error,
        "attempts": [
            {
                "number": a.number,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
                "started_at": a.started_at,
            }
            for a in action.attempts.all()
        ],
    }
