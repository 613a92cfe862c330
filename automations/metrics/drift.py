"""Drift and alerts, from the rollups: run by Celery beat (metrics.check_drift) and check_drift.

For each automation, and for each of its segments while it has 2 to 50 of
them in the window (settings, HANDRAIL_DRIFT_*):

- override_rate: edited + rejected over reviewed in the window, at or above
  its baseline (the BASELINE_DAYS before the window) plus a margin; both need
  at least MIN_REVIEWED reviews;
- confidence_psi: the population stability index of the model's confidence
  (ten bins) against the window just before, at or above the threshold; both
  windows need at least PSI_MIN_SAMPLE decisions, which keeps false alarms on
  a stationary distribution under 1 % (tests/automations/test_metrics_drift.py);
- latency_p95 (whole automation): decision latency p95 over the last
  LATENCY_HOURS at or above its latency_budget_ms, from LATENCY_MIN_SAMPLE
  decisions;
- spend (whole automation): today's model spend at or above
  HANDRAIL_ALERT_SPEND_SHARE of daily_budget_usd. The figure is spend_today,
  the one the budget guardrail reads: once it reaches the whole budget, new
  cases go to review.

A condition that holds keeps one open Alert (value and last seen updated);
one that no longer holds is resolved. A newly raised alert is posted to the
automation's notify_url, signed like any webhook.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automations.services.spend import spend_today
from catalog.governance.notify import notify
from catalog.models import Automation

from .buckets import psi
from .figures import Figures, sums_add
from .models import CONFIDENCE_FIELDS, Alert, AlertKind, Source
from .rollup import cursor_locked
from .sums import rollup_sums
from .windows import Span, last_hours

LATENCY_HOURS = 2  # the current hour and the one before
LATENCY_MIN_SAMPLE = 20
MAX_SEGMENTS = 50
# Reaching a threshold raises: a value a rounding error below it counts as reaching it.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Finding:
    """A condition that holds now."""

    automation: Automation
    segment: str | None  # None: the whole automation
    kind: str
    value: float
    baseline: float | None
    threshold: float
    details: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (self.automation.pk, self.segment, self.kind)

    def as_json(self) -> dict:
        return {
            "automation": self.automation.slug,
            "segment": self.segment,
            "kind": self.kind,
            "value": self.value,
            "baseline": self.baseline,
            "threshold": self.threshold,
        }


def _reaches(value: float, threshold: float) -> bool:
    return value >= threshold - TOLERANCE


def _sums_by_scope(span: Span, ids: list[int]) -> dict:
    """{(automation id, segment or None): sums} over the span; None adds up every segment."""
    sums: dict = defaultdict(dict)
    for row in rollup_sums(span, automation_ids=ids, group_by=("automation_id", "segment")):
        numbers = {k: v for k, v in row.items() if k not in ("automation_id", "segment")}
        sums_add(sums[(row["automation_id"], row["segment"])], numbers)
        sums_add(sums[(row["automation_id"], None)], numbers)
    return sums


def _override(automation, segment, now: Figures, base: Figures) -> Finding | None:
    least = settings.HANDRAIL_DRIFT_MIN_REVIEWED
    if now.reviewed < least or base.reviewed < least:
        return None
    threshold = base.override_rate + settings.HANDRAIL_DRIFT_OVERRIDE_MARGIN
    if not _reaches(now.override_rate, threshold):
        return None
    details = {"reviewed": now.reviewed, "baseline_reviewed": base.reviewed}
    return Finding(
        automation, segment, AlertKind.OVERRIDE_RATE, now.override_rate,
        base.override_rate, threshold, details,
    )  # fmt: skip


def confidence_counts(figures: Figures) -> list[int]:
    return [figures.count(name) for name in CONFIDENCE_FIELDS]


def _psi(automation, segment, now: Figures, before: Figures) -> Finding | None:
    current, previous = confidence_counts(now), confidence_counts(before)
    least = settings.HANDRAIL_DRIFT_PSI_MIN_SAMPLE
    if sum(current) < least or sum(previous) < least:
        return None
    value = psi(previous, current)
    threshold = settings.HANDRAIL_DRIFT_PSI_THRESHOLD
    if not _reaches(value, threshold):
        return None
    details = {"sample": sum(current), "previous_sample": sum(previous)}
    return Finding(automation, segment, AlertKind.CONFIDENCE_PSI, value, 0.0, threshold, details)


def _latency(automation, recent: Figures, base: Figures) -> Finding | None:
    if recent.decisions < LATENCY_MIN_SAMPLE:
        return None
    p95 = recent.decision_latency_ms["p95"]
    budget = float(automation.latency_budget_ms)
    if p95 is None or not _reaches(p95, budget):
        return None
    details = {"decisions": recent.decisions, "hours": LATENCY_HOURS}
    baseline = base.decision_latency_ms["p95"]
    return Finding(automation, None, AlertKind.LATENCY_P95, p95, baseline, budget, details)


def _spend(automation, *, now: datetime) -> Finding | None:
    budget = float(automation.daily_budget_usd)
    if budget <= 0:
        return None
    spent = float(spend_today(automation_id=automation.pk, now=now))
    threshold = budget * settings.HANDRAIL_ALERT_SPEND_SHARE
    if not _reaches(spent, threshold):
        return None
    details = {"over_budget": spent >= budget}
    return Finding(automation, None, AlertKind.SPEND, spent, budget, threshold, details)


def drift_findings(*, now: datetime) -> list[Finding]:
    """Every condition that holds now, over every automation (reads rollups and today's spend)."""
    automations = list(Automation.objects.order_by("slug"))
    ids = [a.pk for a in automations]
    window = last_hours(settings.HANDRAIL_DRIFT_WINDOW_HOURS, now=now)
    current = _sums_by_scope(window, ids)
    previous = _sums_by_scope(window.before(window.hours), ids)
    baseline = _sums_by_scope(window.before(settings.HANDRAIL_DRIFT_BASELINE_DAYS * 24), ids)
    recent = _sums_by_scope(last_hours(LATENCY_HOURS, now=now), ids)
    findings = []
    for automation in automations:
        segments = sorted(s for a, s in current if a == automation.pk and s is not None)
        scopes = [None, *segments] if 2 <= len(segments) <= MAX_SEGMENTS else [None]
        for segment in scopes:
            key = (automation.pk, segment)
            now_figures = Figures(current.get(key, {}))
            checks = (
                _override(automation, segment, now_figures, Figures(baseline.get(key, {}))),
                _psi(automation, segment, now_figures, Figures(previous.get(key, {}))),
            )
            findings += [f for f in checks if f is not None]
        key = (automation.pk, None)
        checks = (
            _latency(automation, Figures(recent.get(key, {})), Figures(baseline.get(key, {}))),
            _spend(automation, now=now),
        )
        findings += [f for f in checks if f is not None]
    return findings


@dataclass(frozen=True)
class DriftResult:
    findings: list[Finding]  # every condition that holds
    raised: list[Alert]  # the alerts this run opened


def drift_check(*, now: datetime | None = None) -> DriftResult:
    """Keep one open alert per holding condition, resolve the others, notify the new ones."""
    now = now or timezone.now()
    findings = drift_findings(now=now)
    raised: list[tuple[Alert, Finding]] = []
    with transaction.atomic():
        cursor_locked(Source.DRIFT)  # one drift job at a time
        still_open = {
            (a.automation_id, a.segment, a.kind): a for a in Alert.objects.filter(resolved_at=None)
        }
        for finding in findings:
            figures = {
                "value": finding.value,
                "baseline": finding.baseline,
                "threshold": finding.threshold,
                "details": finding.details,
                "last_seen_at": now,
            }
            alert = still_open.pop(finding.key, None)
            if alert is not None:
                Alert.objects.filter(pk=alert.pk).update(**figures)
                continue
            alert = Alert.objects.create(
                automation=finding.automation,
                segment=finding.segment,
                kind=finding.kind,
                raised_at=now,
                **figures,
            )
            raised.append((alert, finding))
        Alert.objects.filter(pk__in=[a.pk for a in still_open.values()]).update(resolved_at=now)
    for alert, finding in raised:
        _notify(alert, finding)
    return DriftResult(findings, [alert for alert, _ in raised])


def _notify(alert: Alert, finding: Finding) -> None:
    """Post a new alert to the automation's notify_url, if it has one."""
    body = {
        "event": "metrics_alert",
        **finding.as_json(),
        "raised_at": alert.raised_at.isoformat(),
        "details": alert.details,
    }
    body.pop("automation")  # notify() names it
    if notify(automation=alert.automation, event_id=f"alert_{alert.pk}", body=body):
        Alert.objects.filter(pk=alert.pk).update(notified_at=timezone.now())
