"""What the review screen shows, assembled from the objects `review_task_detail` loaded.

Pure functions over already-fetched rows: nothing here runs a query of its
own (the prefetches in the selector keep the page's query count fixed).
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser

from automations.forms import ArgumentField, argument_fields, arguments_from_form, field_error_keys
from automations.models import ReviewOutcome, ReviewState, ReviewTask
from automations.selectors import ReviewQueue
from automations.services.reviews import REJECT_REASONS, arguments_errors

# Errors shown next to a control of their own rather than in the form's error list.
CONTROL_ERRORS = frozenset({"intent", "reject_reason", "note"})
PAYLOAD_ROWS_LIMIT = 400


@dataclass
class EditForm:
    """The decision form of a live task: intent choice, argument fields, reject reason, note."""

    intents: list
    proposed_name: str
    intent_name: str
    fields: list[ArgumentField] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    form_errors: list[str] = field(default_factory=list)
    reject_reason: str = ""
    note: str = ""

    @property
    def chosen(self):
        return _intent_named(self.intents, self.intent_name)


def _intent_named(intents, name: str):
    return next((intent for intent in intents if intent.name == name), None)


def _initial_arguments(task: ReviewTask, intent_name: str) -> dict:
    """The model's arguments if the form shows the intent it proposed, else nothing."""
    proposal = task.run.proposed_intent or {}
    if intent_name and intent_name == proposal.get("intent"):
        return dict(proposal.get("arguments") or {})
    return {}


def edit_form(
    task: ReviewTask,
    *,
    intent_name: str | None = None,
    submitted=None,
    errors: dict[str, str] | None = None,
) -> EditForm:
    """The form for `task`, showing `intent_name` (default: the proposed intent).

    With `submitted` (the POSTed data) the fields show what the reviewer typed,
    next to `errors`; without it they show the model's proposal.
    """
    intents = list(task.automation.intents.all())
    proposed_name = (task.run.proposed_intent or {}).get("intent") or ""
    name = proposed_name if intent_name is None else intent_name
    errors = dict(errors or {})
    form = EditForm(intents=intents, proposed_name=proposed_name, intent_name=name, errors=errors)
    chosen = form.chosen
    schema = chosen.arguments_schema if chosen is not None else {}
    if chosen is not None:
        form.fields = argument_fields(
            schema,
            arguments=_initial_arguments(task, name),
            submitted=submitted,
            errors=errors,
        )
    shown_at_fields = field_error_keys(schema, errors) | CONTROL_ERRORS
    form.form_errors = [
        message if path in ("arguments", "action") else f"{path}: {message}"
        for path, message in errors.items()
        if path not in shown_at_fields
    ]
    if submitted is not None:
        form.reject_reason = submitted.get("reject_reason", "")
        form.note = submitted.get("note", "")
    return form


def submitted_arguments(task: ReviewTask, intent_name: str, data) -> tuple[dict | None, dict]:
    """The arguments the form describes for `intent_name`, and every error found reading them.

    None when no known intent is chosen (the service then says so at the
    intent). When a field cannot be read at all, the schema's verdict on the
    other fields is added, so the reviewer sees every problem at once.
    """
    intents = list(task.automation.intents.all())
    chosen = _intent_named(intents, intent_name)
    if chosen is None:
        return None, {}
    initial = _initial_arguments(task, intent_name)
    arguments, errors = arguments_from_form(chosen.arguments_schema, data, initial=initial)
    if errors:
        errors = {**arguments_errors(chosen.arguments_schema, arguments), **errors}
    return arguments, errors


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and not any(isinstance(v, dict | list) for v in value):
        return ", ".join(_text(v) for v in value) if value else "[]"
    return json.dumps(value, ensure_ascii=False)


def payload_rows(payload, *, limit: int = PAYLOAD_ROWS_LIMIT) -> tuple[list[tuple[str, str]], bool]:
    """The payload's leaves as (dotted path, text) rows, and whether `limit` cut them short.

    Dotted paths are the ones do-not-automate rules and rules match on
    (`body`, `customer.tier`, `items[0].sku`), so a reviewer reads the same names.
    """
    rows: list[tuple[str, str]] = []
    truncated = False

    def walk(path: str, value) -> None:
        nonlocal truncated
        if len(rows) >= limit:
            truncated = True
            return
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(f"{path}.{key}" if path else str(key), child)
        elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            for index, child in enumerate(value):
                walk(f"{path}[{index}]", child)
        else:
            rows.append((path or "(payload)", _text(value)))

    walk("", payload)
    return rows, truncated


def format_duration(seconds: float | None) -> str:
    """A short human duration: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass(frozen=True)
class QueueRow:
    queue: ReviewQueue
    oldest: str  # "12 min", or "" when the queue is empty
    sla: str


def queue_rows(queues: list[ReviewQueue]) -> list[QueueRow]:
    return [
        QueueRow(
            queue=queue,
            oldest=format_duration(queue.oldest_age_seconds),
            sla=format_duration(queue.automation.review_sla_minutes * 60),
        )
        for queue in queues
    ]


def panel_mode(task: ReviewTask, user: AbstractBaseUser, now: datetime) -> str:
    """live: the user holds a live lease; held: someone else does; open: claimable; decided."""
    if task.state == ReviewState.DONE:
        return "decided"
    live = task.lease_expires_at is not None and task.lease_expires_at > now
    if task.state == ReviewState.CLAIMED and live:
        return "live" if task.claimed_by_id == user.pk else "held"
    return "open"


STATUS_TEXTS = {
    ReviewOutcome.ACCEPTED: "Approved task {pk}.",
    ReviewOutcome.EDITED: "Approved task {pk} (edited).",
    ReviewOutcome.REJECTED: "Rejected task {pk} ({reason}).",
    ReviewOutcome.USED: "Used the draft of task {pk}.",
    ReviewOutcome.USED_EDITED: "Used the draft of task {pk} (edited).",
    ReviewOutcome.DISCARDED: "Discarded the draft of task {pk}.",
}


def decision_status(task: ReviewTask) -> str:
    """The one line that tells the reviewer what their decision did."""
    reason = dict(REJECT_REASONS).get(task.reject_reason, task.reject_reason).lower()
    return STATUS_TEXTS[task.outcome].format(pk=task.pk, reason=reason)


def task_panel(
    task: ReviewTask,
    *,
    user: AbstractBaseUser,
    now: datetime,
    form: EditForm | None = None,
    status: str = "",
    refusal: str = "",
) -> dict:
    """The template context of one task's panel."""
    run = task.run
    mode = panel_mode(task, user, now)
    rows, truncated = payload_rows(run.event.payload)
    waited = (now - task.created_at).total_seconds()
    proposal = run.proposed_intent or {}
    arguments = proposal.get("arguments")
    label = getattr(task, "label", None) if mode == "decided" else None
    verdicts = run.verdicts
    model_calls = list(run.model_calls.all())
    return {
        "task": task,
        "run": run,
        "event": run.event,
        "automation": task.automation,
        "mode": mode,
        "is_suggest": task.kind == "suggest",
        "proposal": proposal,
        "proposal_rows": payload_rows(arguments)[0] if arguments else [],
        "confidence_low": _below_threshold(proposal, task.automation.min_confidence),
        "payload_rows": rows,
        "payload_truncated": truncated,
        "verdicts": verdicts,
        "flagged_verdicts": [v for v in verdicts if v["verdict"] != "pass"],
        "model_calls": model_calls,
        "model_error": next((c.error for c in reversed(model_calls) if c.error), ""),
        "transitions": list(run.transitions.all()),
        "waited": format_duration(waited),
        "late": waited > task.automation.review_sla_minutes * 60,
        "sla": format_duration(task.automation.review_sla_minutes * 60),
        "form": form if form is not None else (edit_form(task) if mode == "live" else None),
        "reject_reasons": REJECT_REASONS,
        "reject_reason_label": dict(REJECT_REASONS).get(task.reject_reason, task.reject_reason),
        "label": label,
        "diff_rows": diff_rows(label.diff) if label is not None else [],
        "review_time": format_duration(task.review_ms / 1000) if task.review_ms is not None else "",
        "status": status,
        "refusal": refusal,
    }


def _shown(value) -> str:
    return "∅" if value is None else _text(value)


def diff_rows(diff: list[dict]) -> list[tuple[str, str, str]]:
    """A label's diff as (path, from, to) text; structures as JSON, nothing as ∅."""
    return [(c.get("path", ""), _shown(c.get("from")), _shown(c.get("to"))) for c in diff]


def _below_threshold(proposal: dict, threshold: float) -> bool:
    confidence = proposal.get("confidence")
    return isinstance(confidence, int | float) and confidence < threshold
