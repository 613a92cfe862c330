"""What the run page shows, assembled from the rows `run_for_page` loaded.

Pure functions over already-fetched rows, like panels.py for the review
screen: nothing here runs a query of its own.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from automations.models import Run
from automations.services.runs import IN_FLIGHT_STATES, held_elsewhere
from automations.states import RunState
from automations.timeline import ONGOING_STATES, run_spans, timeline_chart

from .panels import payload_rows


@dataclass(frozen=True)
class RecoveryNotice:
    """Where a run a worker must still move stands: overdue, held, queued or waiting to retry."""

    kind: str  # overdue | held | queued | retry
    headline: str
    text: str


def sweep_interval_seconds() -> int:
    """How often the sweep looks for overdue runs (Celery beat's schedule), whole seconds up."""
    return math.ceil(settings.CELERY_BEAT_SCHEDULE["sweep-overdue-runs"]["schedule"])


def _clock(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%H:%M:%S}"


def run_overdue(run: Run, *, now: datetime) -> bool:
    """True when a worker should have moved `run` on by now (services/recovery.runs_overdue)."""
    return run.state in IN_FLIGHT_STATES and run.due_at is not None and run.due_at <= now


def recovery_notice(run: Run, *, now: datetime) -> RecoveryNotice | None:
    """The banner of a run a worker must still move; None for any other run.

    An overdue run waits for recovery: the sweep hands it to a worker again.
    """
    if run.state not in IN_FLIGHT_STATES or run.due_at is None:
        return None
    due, within = _clock(run.due_at), sweep_interval_seconds()
    if run_overdue(run, now=now):
        if run.held_by:
            why = (
                f"the worker holding it ({run.held_by}) stopped answering; the sweep hands it"
                f" to another worker within {within} s."
            )
        else:
            why = (
                "its message was lost or is still queued behind others; the sweep sends it"
                f" again once the queue is empty (it looks every {within} s)."
            )
        return RecoveryNotice("overdue", f"Waiting for recovery since {due}", why)
    if held_elsewhere(run, now=now):
        doing = "sending its action" if run.state == RunState.EXECUTING else "deciding it"
        text = f"{run.held_by} is {doing}, until {due} at the latest."
        return RecoveryNotice("held", "Being worked on", text)
    action = getattr(run, "action", None)
    if run.state == RunState.EXECUTING and action is not None and action.attempt_count:
        text = f"attempt {action.attempt_count + 1} is due at {due}."
        return RecoveryNotice("retry", "Waiting to retry", text)
    text = f"waiting for a worker; if none has taken it by {due}, the sweep sends it again."
    return RecoveryNotice("queued", "Queued", text)


def run_page(run: Run, *, now: datetime, is_admin: bool, may_review: bool) -> dict:
    """The template context of the run page."""
    event = run.event
    spans = run_spans(run, now=now)
    rows, truncated = payload_rows(event.payload)
    task = getattr(run, "review_task", None)
    action = getattr(run, "action", None)
    reviewer = (task.decided_by or task.claimed_by) if task is not None else None
    return {
        "run": run,
        "event": event,
        "automation": run.automation,
        "task": task,
        "may_review": may_review,
        "reviewer": reviewer.get_username() if reviewer is not None else "",
        "action": action,
        "attempts": list(action.attempts.all()) if action is not None else [],
        "show_excerpts": is_admin,
        "recovery": recovery_notice(run, now=now),
        "ongoing": run.state in ONGOING_STATES,
        "chart": timeline_chart(spans, origin=event.received_at),
        "verdicts": run.verdicts or [],
        "payload_rows": rows,
        "payload_truncated": truncated,
    }
