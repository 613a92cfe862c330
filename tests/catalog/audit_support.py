"""Finished runs of every outcome, made in bulk, for the audit sampling tests."""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from automations.models import Event, ReviewTask, Run
from catalog.models import Automation

# What each outcome leaves on a run and its review task (catalog/audit/outcomes.py).
SHAPES = {
    "autonomous": {"state": "executed", "decided_by": "model", "review": None},
    "approved": {"state": "executed", "decided_by": "reviewer", "review": "accepted"},
    "edited": {"state": "executed", "decided_by": "reviewer", "review": "edited"},
    "rejected": {"state": "rejected", "decided_by": "reviewer", "review": "rejected"},
    "blocked": {"state": "blocked", "decided_by": "", "review": None},
    # Not finished runs, or no outcome: never sampled.
    "shadow": {"state": "recorded", "decided_by": "", "review": None},
    "suggest_used": {"state": "recorded", "decided_by": "reviewer", "review": "used"},
    "awaiting": {"state": "awaiting_review", "decided_by": "", "review": None},
    "in_flight": {"state": "executing", "decided_by": "model", "review": None},
}
INTENT = {"intent": "route_ticket", "arguments": {"team": "billing", "priority": "p2"}}


def runs_of(
    automation: Automation,
    outcome: str,
    count: int,
    *,
    segment: str = "",
    at: datetime | None = None,
    intent: dict | None = None,
) -> list[Run]:
    """`count` runs of `automation` that ended with `outcome`, created at `at` (default: now)."""
    shape = SHAPES[outcome]
    at = at or timezone.now()
    events = Event.objects.bulk_create(
        Event(
            automation=automation,
            idempotency_key=f"audit-{secrets.token_hex(8)}",
            segment=segment,
            payload={"subject": f"Invoice {n}", "body": f"Where is invoice {n}?"},
            body_sha256=hashlib.sha256(secrets.token_bytes(8)).hexdigest(),
            payload_sha256="0" * 64,
            trace_id=secrets.token_hex(16),
        )
        for n in range(count)
    )
    acted = shape["state"] in ("executed", "executing") or shape["review"] == "used"
    runs = Run.objects.bulk_create(
        Run(
            event=event,
            automation=automation,
            segment=segment,
            state=shape["state"],
            trace_id=event.trace_id,
            effective_mode="autonomous" if shape["decided_by"] == "model" else "approve",
            proposed_intent={**(intent or INTENT), "confidence": 0.9, "rationale": "r"},
            final_intent=(intent or INTENT) if acted else None,
            decided_by=shape["decided_by"],
        )
        for event in events
    )
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(created_at=at)
    if shape["review"]:
        ReviewTask.objects.bulk_create(
            ReviewTask(
                run=run,
                automation=automation,
                state="done",
                outcome=shape["review"],
                kind="suggest" if shape["review"] == "used" else "approve",
            )
            for run in runs
        )
    return runs


def day(n: int) -> datetime:
    """Midnight UTC of 2026-11-n, the window the tests sample."""
    return timezone.make_aware(datetime(2026, 11, n))


WINDOW = {"since": "2026-11-01", "until": "2026-11-08"}
INSIDE = day(3) + timedelta(hours=5)
