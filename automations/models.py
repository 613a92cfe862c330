"""What happens to each event: events, runs, decisions, verdicts, reviews, actions.

Uniqueness the design promises (one event per key, one run per event, one
action per run, one review task per run) is enforced by database constraints.

References to the rows that every hot-path write shares (the automation, the
API token, the reviewer) carry no foreign-key constraint (`db_constraint=False`,
marked "shared row"). PostgreSQL checks such a constraint by locking the
referenced row FOR KEY SHARE, so every event, decision and review of an
automation would lock, and rewrite the lock bits of, the same few rows: about
10-20 % of the review cycle's database throughput (bench/claims.py). Django
still applies `on_delete` (PROTECT, SET_NULL) to deletions through the ORM,
and those rows are never deleted any other way.
"""

import json

from django.conf import settings
from django.db import models

from catalog.models import Automation, Mode

from .states import RunState


class Event(models.Model):
    """An incoming event, stored once per (automation, idempotency key), with provenance."""

    automation = models.ForeignKey(
        Automation,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,  # event_unique_idempotency_key leads with it
        db_constraint=False,  # shared row
    )
    idempotency_key = models.CharField(max_length=200)
    segment = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=100, blank=True)
    payload = models.JSONField()
    body_sha256 = models.CharField(max_length=64)
    payload_sha256 = models.CharField(
        max_length=64, help_text="Hash of the canonical payload, to tell a replay from a conflict."
    )
    api_token = models.ForeignKey(
        "catalog.ApiToken",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,  # shared row
    )
    client = models.CharField(max_length=100, blank=True, help_text="API client or command.")
    trace_id = models.CharField(max_length=32)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "idempotency_key"], name="event_unique_idempotency_key"
            ),
        ]

    def __str__(self):
        return f"{self.automation_id}:{self.idempotency_key}"


class JsonNumber(models.Func):
    """The number under `key` of a JSON column; NULL when it is absent or not a number."""

    output_field = models.FloatField()

    def __init__(self, column: str, key: str):
        super().__init__(models.F(column))
        self.key = key

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        sql = (
            f"CASE WHEN jsonb_typeof({column} -> %s) = 'number'"
            f" THEN ({column} ->> %s)::double precision END"
        )
        return sql, [*params, self.key, *params, self.key]

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        path = f"$.{json.dumps(self.key)}"
        sql = (
            f"CASE WHEN json_type({column}, %s) IN ('integer', 'real')"
            f" THEN json_extract({column}, %s) END"
        )
        return sql, [*params, path, *params, path]


class Run(models.Model):
    """One run per event; its state only changes through services.runs.run_transition."""

    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="run")
    automation = models.ForeignKey(
        Automation,
        on_delete=models.PROTECT,
        related_name="runs",
        db_index=False,
        db_constraint=False,  # shared row
    )
    segment = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.RECEIVED)
    trace_id = models.CharField(max_length=32)
    effective_mode = models.CharField(max_length=20, choices=Mode.choices, blank=True)
    # The validated intent the model (or rules) proposed:
    # {"intent": ..., "arguments": {...}, "confidence": ..., "rationale": ...}.
    proposed_intent = models.JSONField(null=True, blank=True)
    # The intent that was acted on (after a reviewer's edit, if any).
    final_intent = models.JSONField(null=True, blank=True)
    decided_by = models.CharField(max_length=20, blank=True)  # "model" | "reviewer"
    # The proposed intent's confidence, kept by the database (never written by code), so
    # that the what-if preview counts runs by it from an index (catalog/governance/whatif.py).
    confidence = models.GeneratedField(
        expression=JsonNumber("proposed_intent", "confidence"),
        output_field=models.FloatField(),
        db_persist=True,
    )
    # The guardrails' verdicts, in the order they ran: [{"check", "verdict", "reason",
    # "details"}, ...]; written once, with the decision.
    verdicts = models.JSONField(default=list, blank=True)
    reason = models.TextField(blank=True, help_text="Why the run is where it is.")
    # While a worker must still move the run (received, deciding, approved, executing):
    # by when, and which worker holds it meanwhile (deciding it or sending its action).
    # Past `due_at` the sweep hands it to a worker again (services/recovery.py).
    held_by = models.CharField(max_length=200, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["automation", "state"], name="run_automation_state"),
            # Exact lookups only: no varchar_pattern_ops twin as db_index=True would add.
            models.Index(fields=["trace_id"], name="run_trace_id"),
            # Covering the what-if preview's count of a window of runs (index-only).
            models.Index(
                fields=["automation", "created_at"],
                include=["id", "segment", "state", "event", "confidence"],
                name="run_automation_created",
            ),
            # The sweep's scan: only the few runs a worker must still move are in it.
            models.Index(
                fields=["due_at"],
                name="run_in_flight_due",
                condition=models.Q(state__in=["received", "deciding", "approved", "executing"]),
            ),
        ]

    def __str__(self):
        return f"run {self.pk} ({self.state})"


class RunTransition(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=20, choices=RunState.choices, blank=True)
    to_state = models.CharField(max_length=20, choices=RunState.choices)
    actor = models.CharField(max_length=200, help_text='"user:NAME", "worker:HOST", "api", ...')
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.from_state or '∅'} → {self.to_state}"


class ModelCall(models.Model):
    """One call to a decision provider, recorded whatever its outcome."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_calls")
    automation = models.ForeignKey(
        Automation,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # modelcall_spend leads with it
        db_constraint=False,  # shared row
    )
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=200, blank=True)
    base_url = models.CharField(max_length=500, blank=True)
    prompt_version = models.PositiveIntegerField(default=1)
    request_id = models.CharField(max_length=200, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    raw_output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    redactions = models.JSONField(
        default=list, blank=True, help_text="Kinds and counts of PII redacted before the call."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["automation", "created_at"], name="modelcall_spend")]

    def __str__(self):
        return f"{self.provider} call for run {self.run_id}"


class DailySpend(models.Model):
    """What an automation's model calls cost on one UTC day; the budget guardrail reads it.

    Kept by services.spend.model_call_record in the transaction that records
    each call, so the guardrail reads one row however many calls the day had.
    """

    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # daily_spend_unique_day leads with it
    day = models.DateField()
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["automation", "day"], name="daily_spend_unique_day")
        ]

    def __str__(self):
        return f"{self.automation_id} {self.day}: ${self.cost_usd}"


class Verdict(models.TextChoices):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    REVIEW = "review"
    BLOCK = "block"


class ReviewState(models.TextChoices):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"


class ReviewOutcome(models.TextChoices):
    ACCEPTED = "accepted"  # approved as is
    EDITED = "edited"  # edited, then approved
    REJECTED = "rejected"
    # Suggest mode: the person acted outside Handrail.
    USED = "used"
    USED_EDITED = "used_edited"
    DISCARDED = "discarded"


class ReviewTask(models.Model):
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="review_task")
    # The partial indexes below lead with automation; a whole-table FK index
    # would only add a write to every claim and decision.
    automation = models.ForeignKey(
        Automation,
        on_delete=models.PROTECT,
        related_name="review_tasks",
        db_index=False,
        db_constraint=False,  # shared row
    )
    kind = models.CharField(
        max_length=10, choices=[("approve", "approve"), ("suggest", "suggest")], default="approve"
    )
    reason = models.TextField(blank=True, help_text="Why a person must look at it.")
    state = models.CharField(
        max_length=10, choices=ReviewState.choices, default=ReviewState.PENDING
    )
    # Not indexed: a reviewer's live claim is found among the queue's few live claims
    # (review_open_by_state), and every claim would write one more index entry.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,  # shared row
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # review_decided_by, partial
        db_constraint=False,  # shared row
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=ReviewOutcome.choices, blank=True)
    reject_reason = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)
    review_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The claim query: oldest open task of one automation.
            models.Index(
                fields=["automation", "created_at", "id"],
                name="review_open_by_age",
                condition=models.Q(state__in=["pending", "claimed"]),
            ),
            # Queue counts (pending, in review, lapsed) as index-only range scans.
            models.Index(
                fields=["automation", "state", "lease_expires_at"],
                name="review_open_by_state",
                condition=models.Q(state__in=["pending", "claimed"]),
            ),
            models.Index(
                fields=["decided_by", "decided_at"],
                name="review_decided_by",
                condition=models.Q(decided_by__isnull=False),
            ),
            # The corrected cases the what-if preview joins its runs to: only decided tasks
            # with an overriding outcome (automations.selectors.OVERRIDDEN_OUTCOMES).
            models.Index(
                fields=["automation", "run"],
                name="review_overridden",
                condition=models.Q(
                    state="done", outcome__in=["discarded", "edited", "rejected", "used_edited"]
                ),
            ),
        ]

    def __str__(self):
        return f"review {self.pk} of run {self.run_id} ({self.state})"


class Label(models.Model):
    """A training example: the model's intent and the one a person settled on."""

    review_task = models.OneToOneField(ReviewTask, on_delete=models.CASCADE, related_name="label")
    # run and reviewer are not indexed: labels are read by automation (label_export) or
    # through their review task, and each index is one more write per decision.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="labels", db_index=False)
    automation = models.ForeignKey(
        Automation,
        on_delete=models.PROTECT,
        related_name="labels",
        db_index=False,  # label_export leads with it
        db_constraint=False,  # shared row
    )
    outcome = models.CharField(max_length=20, choices=ReviewOutcome.choices)
    model_intent = models.JSONField(null=True, blank=True)
    final_intent = models.JSONField(null=True, blank=True)
    diff = models.JSONField(default=list, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,  # shared row
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["automation", "created_at"], name="label_export")]

    def __str__(self):
        return f"label of run {self.run_id} ({self.outcome})"


class ActionState(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HALTED = "halted"
    COMPENSATED = "compensated"


class Action(models.Model):
    """The one side effect of an approved intent; its key is the same on every attempt."""

    run = models.OneToOneField(Run, on_delete=models.PROTECT, related_name="action")
    automation = models.ForeignKey(
        Automation,
        on_delete=models.PROTECT,
        related_name="actions",
        db_constraint=False,  # shared row
    )
    adapter = models.CharField(max_length=50)
    idempotency_key = models.CharField(max_length=100, unique=True)
    state = models.CharField(
        max_length=20, choices=ActionState.choices, default=ActionState.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"action {self.idempotency_key} ({self.state})"


class ActionAttempt(models.Model):
    action = models.ForeignKey(
        Action,
        on_delete=models.CASCADE,
        related_name="attempts",
        db_index=False,  # attempt_unique_number leads with it
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    retryable = models.BooleanField(default=False)

    class Meta:
        ordering = ["action", "number"]
        constraints = [
            models.UniqueConstraint(fields=["action", "number"], name="attempt_unique_number"),
        ]

    def __str__(self):
        return f"attempt {self.number} of action {self.action_id}"
