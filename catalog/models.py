"""What owners and compliance govern: automations and their configuration.

Every configuration model keeps its history (django-simple-history): who
changed what, when, and why (`_change_reason`).
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords

slug_validator = RegexValidator(r"^[a-z0-9-]+$", "Use lowercase letters, digits and hyphens.")


class Role(models.TextChoices):
    """The Django groups that carry roles (contracts section 2)."""

    REVIEWER = "reviewer"
    OWNER = "owner"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


class RiskTier(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class DataClassification(models.TextChoices):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


class Mode(models.TextChoices):
    SHADOW = "shadow"
    SUGGEST = "suggest"
    APPROVE = "approve"
    AUTONOMOUS = "autonomous"


class Provider(models.TextChoices):
    OPENAI = "openai"
    RULES = "rules"


class IntentRisk(models.TextChoices):
    LOW = "low"
    HIGH = "high"


class Automation(models.Model):
    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_automations"
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="review_automations"
    )
    purpose = models.TextField()
    rollback_plan = models.TextField()
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices)
    data_classification = models.CharField(max_length=20, choices=DataClassification.choices)
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.SHADOW)
    enabled = models.BooleanField(
        default=True, help_text="Off: the kill switch for the whole automation."
    )
    min_confidence = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    latency_budget_ms = models.PositiveIntegerField(default=8000)
    daily_budget_usd = models.DecimalField(max_digits=12, decimal_places=4, default=25)
    audit_sample_rate = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    review_sla_minutes = models.PositiveIntegerField(
        default=60, help_text="A pending review older than this is late."
    )
    # Economics (cost per 1,000 decisions, time saved).
    reviewer_hourly_usd = models.DecimalField(
        max_digits=10, decimal_places=2, default=0, help_text="What a reviewer's hour costs."
    )
    manual_minutes_per_case = models.FloatField(
        default=0,
        validators=[MinValueValidator(0.0)],
        help_text="A person's time per case without the automation.",
    )
    # Readiness for autonomy (catalog/governance/readiness.py): what the playbook asks for.
    success_metrics = models.TextField(
        blank=True, help_text="How we know it works: the figures and the targets."
    )
    monitoring_plan = models.TextField(blank=True, help_text="Who watches what, and where.")
    labeling_budget = models.CharField(
        max_length=200, blank=True, help_text="Reviewer time set aside for labels, e.g. 4 h/week."
    )
    on_call = models.CharField(
        max_length=200, blank=True, help_text="Who answers when it misbehaves (a rotation)."
    )
    # Automatic demotion (catalog/governance/demotion.py): off unless asked for.
    auto_demote = models.BooleanField(
        default=False,
        help_text="Demote a segment to approve when its recent override rate is too high.",
    )
    auto_demote_after = models.PositiveIntegerField(
        default=50, help_text="Judge the override rate over this many latest reviewed cases."
    )
    auto_demote_over = models.FloatField(
        default=0.2,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Demote when the override rate over them is above this.",
    )
    # Where governance notifications go (signed like any webhook); empty: nowhere.
    notify_url = models.URLField(max_length=500, blank=True)
    notify_secret_env = models.CharField(max_length=100, blank=True)
    # Decision settings.
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.RULES)
    model = models.CharField(max_length=200, blank=True)
    base_url = models.URLField(max_length=500, blank=True)
    api_key_env = models.CharField(max_length=100, blank=True)
    instructions = models.TextField(blank=True)
    rules = models.JSONField(default=list, blank=True)
    prompt_version = models.PositiveIntegerField(
        default=1, help_text="Bumped whenever instructions, intents or schemas change."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(m2m_fields=[reviewers])

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_confidence__gte=0) & models.Q(min_confidence__lte=1),
                name="automation_min_confidence_0_1",
            ),
            models.CheckConstraint(
                condition=models.Q(audit_sample_rate__gte=0) & models.Q(audit_sample_rate__lte=1),
                name="automation_audit_sample_rate_0_1",
            ),
        ]

    def __str__(self):
        return self.slug


class Intent(models.Model):
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="intents")
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=100, validators=[RegexValidator(r"^[A-Za-z0-9_]+$")])
    description = models.TextField(blank=True)
    risk = models.CharField(max_length=10, choices=IntentRisk.choices, default=IntentRisk.LOW)
    arguments_schema = models.JSONField(default=dict)
    action_adapter = models.CharField(max_length=50, blank=True)
    # Adapter settings, e.g. {"url": ..., "secret_env": ...}. Never a secret itself.
    action_config = models.JSONField(default=dict, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["automation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["automation", "name"], name="intent_unique_name"),
        ]

    def __str__(self):
        return f"{self.automation.slug}:{self.name}"


class SegmentPolicy(models.Model):
    """Per-segment toggle: `enabled=False` is the kill switch for that segment."""

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="segments")
    position = models.PositiveIntegerField(default=0)
    key = models.CharField(max_length=100, validators=[slug_validator])
    enabled = models.BooleanField(default=True)
    mode = models.CharField(max_length=20, choices=Mode.choices, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["automation", "position"]
        verbose_name_plural = "segment policies"
        constraints = [
            models.UniqueConstraint(fields=["automation", "key"], name="segment_unique_key"),
        ]

    def __str__(self):
        return f"{self.automation.slug}/{self.key}"


class MatchOperator(models.TextChoices):
    MATCHES = "matches"
    EQUALS = "equals"
    CONTAINS = "contains"
    IN = "in"


class RuleEffect(models.TextChoices):
    REVIEW = "review"
    BLOCK = "block"


class DoNotAutomateRule(models.Model):
    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="do_not_automate"
    )
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=200)
    field = models.CharField(max_length=300)
    operator = models.CharField(max_length=10, choices=MatchOperator.choices)
    value = models.JSONField()
    effect = models.CharField(max_length=10, choices=RuleEffect.choices)

    history = HistoricalRecords()

    class Meta:
        ordering = ["automation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["automation", "name"], name="dna_rule_unique_name"),
        ]

    def __str__(self):
        return f"{self.automation.slug}: {self.name}"


class ApiToken(models.Model):
    """An ingestion API token; only the SHA-256 of the secret is stored."""

    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart.")
    automations = models.ManyToManyField(
        Automation, blank=True, help_text="Empty: every automation."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(m2m_fields=[automations], excluded_fields=["last_used_at"])

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


class AuditOutcome(models.TextChoices):
    """What became of a finished run, as contracts section 7 names it (catalog/audit/outcomes)."""

    AUTONOMOUS = "autonomous"
    APPROVED = "approved"
    EDITED = "edited"
    REJECTED = "rejected"
    BLOCKED = "blocked"


class AuditSampleKind(models.TextChoices):
    DRAWN = "drawn"  # by audit_sample or the browser's form, over a date range
    STANDING = "standing"  # one per automation: its autonomous runs at audit_sample_rate


class AuditSample(models.Model):
    """A reproducible draw of runs for compliance review: same arguments and seed, same runs.

    `arguments` keeps everything the draw was made from (catalog/audit/sampling.py),
    so that it can be drawn again and compared.
    """

    name = models.CharField(max_length=200)
    kind = models.CharField(
        max_length=10, choices=AuditSampleKind.choices, default=AuditSampleKind.DRAWN
    )
    automation = models.ForeignKey(
        Automation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A standing sample's automation.",
    )
    seed = models.CharField(max_length=64)
    since = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True, help_text="Empty: a standing sample.")
    arguments = models.JSONField(default=dict, blank=True)
    # A standing sample has considered every autonomous run of its automation up to this id.
    cursor_run_id = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["automation"],
                condition=models.Q(kind="standing"),
                name="audit_sample_one_standing_per_automation",
            ),
        ]

    def __str__(self):
        return f"{self.name} (seed {self.seed})"


class AuditStratum(models.Model):
    """One stratum of a sample: its key (e.g. {"outcome": "approved", "segment": ""}) and size."""

    sample = models.ForeignKey(AuditSample, on_delete=models.CASCADE, related_name="strata")
    position = models.PositiveIntegerField()
    key = models.JSONField()
    population = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["sample", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["sample", "position"], name="audit_stratum_unique_position"
            ),
        ]
        verbose_name_plural = "audit strata"

    def __str__(self):
        return ", ".join(f"{k}={v}" for k, v in self.key.items()) or "all runs"


class AuditVerdict(models.TextChoices):
    COMPLIANT = "compliant"
    ISSUE = "issue"


class AuditSampleItem(models.Model):
    """One sampled run: the blind re-review, then the compliance verdict."""

    sample = models.ForeignKey(AuditSample, on_delete=models.CASCADE, related_name="items")
    stratum = models.ForeignKey(AuditStratum, on_delete=models.CASCADE, related_name="items")
    run = models.ForeignKey("automations.Run", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=AuditOutcome.choices)
    # Blind re-review: what the auditor says should have been done, before seeing what was.
    # {"intent": NAME | None, "arguments": {...}}; intent None: it should not have acted.
    blind_intent = models.JSONField(null=True, blank=True)
    blind_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    blind_at = models.DateTimeField(null=True, blank=True)
    revealed_at = models.DateTimeField(null=True, blank=True)
    verdict = models.CharField(max_length=20, choices=AuditVerdict.choices, blank=True)
    category = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)
    verdict_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verdict_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["sample", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sample", "run"], name="audit_item_unique_run"),
            models.UniqueConstraint(
                fields=["sample", "position"], name="audit_item_unique_position"
            ),
        ]

    def __str__(self):
        return f"{self.sample} run {self.run_id}: {self.verdict or 'pending'}"


class GovernanceChange(models.Model):
    """A mode or kill-switch change: who, when, why, and whether evidence was overridden."""

    class Kind(models.TextChoices):
        MODE = "mode"
        SWITCH = "switch"

    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="governance_changes"
    )
    segment = models.CharField(max_length=100, blank=True)  # "": the whole automation
    kind = models.CharField(max_length=10, choices=Kind.choices)
    from_value = models.CharField(max_length=20)
    to_value = models.CharField(max_length=20)
    reason = models.TextField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # None: the system (automatic demotion) or the command line without --by
    override = models.BooleanField(default=False, help_text="Promoted without its evidence.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["automation", "kind", "created_at"], name="governance_by_kind")
        ]

    def __str__(self):
        where = f"/{self.segment}" if self.segment else ""
        return f"{self.automation.slug}{where} {self.kind}: {self.from_value} -> {self.to_value}"


class TrailEntry(models.Model):
    """One fact of the tamper-evident trail (contracts section 8), ordered by `seq`.

    Appended unchained (`seq` NULL) in the transaction that made the fact, with
    `data` and its RFC 8785 bytes (`canonical`); the sequencer
    (catalog/audit/trail.py) then gives it `seq` and its hash, in commit order.
    """

    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    kind = models.CharField(max_length=30)
    automation = models.ForeignKey(
        Automation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,  # a shared row: see automations/models.py
    )
    run = models.ForeignKey(
        "automations.Run",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="trail_entries",
        db_constraint=False,
    )
    data = models.JSONField()
    canonical = models.BinaryField()
    prev_hash = models.BinaryField(null=True, blank=True)
    hash = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The sequencer's scan: only entries not chained yet.
            models.Index(fields=["id"], name="trail_unchained", condition=models.Q(seq=None)),
        ]
        verbose_name_plural = "trail entries"

    def __str__(self):
        return f"trail {self.seq if self.seq is not None else '(unchained)'}: {self.kind}"


class TrailHead(models.Model):
    """The chain's last link: one row, locked by the one sequencer that extends it."""

    seq = models.BigIntegerField(default=0)
    hash = models.BinaryField()
    chained_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"trail head at {self.seq}"


class TrailCheckpoint(models.Model):
    """A signed statement of the chain's head at `seq` (Ed25519, DSSE), for later proof."""

    seq = models.BigIntegerField(unique=True)
    hash = models.BinaryField()
    key_id = models.CharField(max_length=64)
    signature = models.BinaryField()
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["seq"]

    def __str__(self):
        return f"checkpoint at {self.seq} ({self.key_id})"


class TrailVerification(models.Model):
    """One run of verify_trail: what it found, for the compliance page."""

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    entries = models.BigIntegerField(default=0)
    head_seq = models.BigIntegerField(null=True, blank=True)
    ok = models.BooleanField(null=True)  # None while it runs
    checked = models.BigIntegerField(default=0, help_text="Entries checked so far.")
    summary = models.TextField(blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"verification of {self.started_at:%Y-%m-%d %H:%M}: {self.summary or 'running'}"
