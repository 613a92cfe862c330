"""Rollups, the job's cursors, alerts and rebuilds.

A Rollup row holds what happened to one automation's segment in one UTC hour
(period "h") or day (period "d"): every fact is counted once, in the hour it
happened (a run's arrival, its decision, its finish, a model call, a review).
The job writes the hour's row and the day's row together; a window reads day
rows for its whole days and hour rows for the rest (windows.py).
"""

from django.conf import settings
from django.db import models

from catalog.models import Automation

from .buckets import BUCKETS, CONFIDENCE_BINS

DECISION_BUCKET_FIELDS = tuple(f"decision_b{i}" for i in range(BUCKETS))
END_TO_END_BUCKET_FIELDS = tuple(f"e2e_b{i}" for i in range(BUCKETS))
CONFIDENCE_FIELDS = tuple(f"confidence_b{i}" for i in range(CONFIDENCE_BINS))
# Outcomes as contracts section 7 names them (catalog.models.AuditOutcome), one column each.
OUTCOME_FIELDS = ("autonomous", "approved", "edited", "rejected", "blocked")


class Period(models.TextChoices):
    HOUR = "h"
    DAY = "d"


class Rollup(models.Model):
    """Counts and sums of one automation's segment over one hour or day; only ever added to."""

    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # rollup_unique_row leads with it
    period = models.CharField(max_length=1, choices=Period.choices)
    start = models.DateTimeField()
    segment = models.CharField(max_length=100, blank=True)
    # Arrivals.
    runs = models.BigIntegerField(default=0)
    # Decisions (a run leaving `deciding`), with what the guardrails and routing made of them.
    decisions = models.BigIntegerField(default=0)
    needed_person = models.BigIntegerField(default=0)
    guardrail_triggered = models.BigIntegerField(default=0)
    decision_ms_sum = models.BigIntegerField(default=0)
    # Finishes (a run reaching a final state), with their outcome when section 7 names one.
    finished = models.BigIntegerField(default=0)
    autonomous = models.BigIntegerField(default=0)
    approved = models.BigIntegerField(default=0)
    edited = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    blocked = models.BigIntegerField(default=0)
    e2e_ms_sum = models.BigIntegerField(default=0)
    # Model calls.
    model_calls = models.BigIntegerField(default=0)
    model_errors = models.BigIntegerField(default=0)
    model_timeouts = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    # Reviews (a person's decision).
    reviewed = models.BigIntegerField(default=0)
    overridden = models.BigIntegerField(default=0)
    review_ms_sum = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "period", "start", "segment"], name="rollup_unique_row"
            ),
        ]
        # Across all automations: one window's rows.
        indexes = [models.Index(fields=["period", "start"], name="rollup_period_start")]

    def __str__(self):
        return f"{self.automation_id}/{self.segment} {self.period} {self.start:%Y-%m-%d %H:00}"


# Histogram columns, one per bucket: summed in SQL like every other column.
for _name in DECISION_BUCKET_FIELDS + END_TO_END_BUCKET_FIELDS + CONFIDENCE_FIELDS:
    Rollup.add_to_class(_name, models.BigIntegerField(default=0))

SUM_FIELDS = tuple(
    field.name
    for field in Rollup._meta.local_fields
    if isinstance(field, models.BigIntegerField | models.DecimalField) and field.name != "id"
)


class KeyKind(models.TextChoices):
    CHECK = "check"  # a guardrail check that did not pass a decision
    FIELD = "field"  # an intent's field a reviewer changed (Label.diff paths)


class RollupKey(models.Model):
    """A count by name next to a Rollup row: triggers per guardrail check, corrections per field."""

    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # rollup_key_unique_row leads with it
    period = models.CharField(max_length=1, choices=Period.choices)
    start = models.DateTimeField()
    segment = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=10, choices=KeyKind.choices)
    key = models.CharField(max_length=200)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "period", "start", "segment", "kind", "key"],
                name="rollup_key_unique_row",
            ),
        ]
        indexes = [models.Index(fields=["period", "start"], name="rollup_key_period_start")]

    def __str__(self):
        return f"{self.kind} {self.key}: {self.count}"


class Source(models.TextChoices):
    TRANSITION = "transition"
    MODEL_CALL = "model_call"
    LABEL = "label"
    DRIFT = "drift"  # not read: the drift job's lock and its last run


class RollupCursor(models.Model):
    """How far the rollup job has read one source table, by id, and the ids it still waits for.

    An id below `last_id` that was not there when the job read past it
    belongs to a transaction that had not committed yet (or rolled back):
    `pending` keeps it with when it was first missed, until it shows up or
    is given up on (rollup.GAP_SECONDS).
    """

    source = models.CharField(max_length=20, choices=Source.choices, unique=True)
    last_id = models.BigIntegerField(default=0)
    pending = models.JSONField(default=list, blank=True)  # [[id, first missed (unix s)], ...]
    ran_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.source} up to {self.last_id}"


class AlertKind(models.TextChoices):
    OVERRIDE_RATE = "override_rate"
    CONFIDENCE_PSI = "confidence_psi"
    LATENCY_P95 = "latency_p95"
    SPEND = "spend"


class Alert(models.Model):
    """A drift or budget condition, open while it holds (`resolved_at` empty)."""

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="+")
    segment = models.CharField(max_length=100, null=True, blank=True)  # None: the whole automation
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    value = models.FloatField()
    baseline = models.FloatField(null=True, blank=True)
    threshold = models.FloatField()
    details = models.JSONField(default=dict, blank=True)
    raised_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "segment", "kind"],
                condition=models.Q(resolved_at=None, segment__isnull=False),
                name="alert_one_open_per_segment",
            ),
            models.UniqueConstraint(
                fields=["automation", "kind"],
                condition=models.Q(resolved_at=None, segment=None),
                name="alert_one_open_per_automation",
            ),
        ]
        indexes = [models.Index(fields=["automation", "raised_at"], name="alert_by_automation")]

    def __str__(self):
        where = (
            self.automation_id if self.segment is None else f"{self.automation_id}/{self.segment}"
        )
        return f"{self.kind} on {where}: {self.value:g} (threshold {self.threshold:g})"


class RollupRebuild(models.Model):
    """One rebuild of every rollup from the source tables, with its progress for the browser."""

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.BigIntegerField(default=0, help_text="Source rows to read, when it started.")
    done = models.BigIntegerField(default=0, help_text="Source rows read so far.")
    error = models.TextField(blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"rebuild of {self.started_at:%Y-%m-%d %H:%M}: {self.done} of {self.total}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.done * 100 // self.total)
