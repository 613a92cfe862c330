"""Drift and alerts: each condition at and just below its edge, PSI calibrated, alerts kept,
resolved and posted, and spend over budget sending new cases to review."""

import io
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from automations.metrics.buckets import CONFIDENCE_BINS, confidence_bin, psi
from automations.metrics.drift import drift_check, drift_findings
from automations.metrics.models import Alert
from automations.metrics.rollup import Tally, tally_write
from automations.metrics.windows import hour_floor
from automations.models import DailySpend
from automations.services.decisions import run_decide
from automations.services.spend import spend_today
from tests.factories import AutomationFactory, EventFactory, IntentFactory, RunFactory
from tests.support.webhook_receiver import WebhookReceiver, new_webhook_secret, verify

NOW = datetime(2026, 11, 24, 15, 40, tzinfo=UTC)
CURRENT = NOW - timedelta(hours=1)  # in the drift window (the last 24 hours)
PREVIOUS = NOW - timedelta(hours=30)  # in the 24 hours before it
BASELINE = NOW - timedelta(days=3)  # in the 7 days before the window


def counted(automation, at: datetime, segment: str = "", **values) -> None:
    """Rollup rows as the job writes them: `values` counted in the hour of `at`."""
    tally = Tally()
    tally.add((automation.pk, segment, hour_floor(at)), **values)
    tally_write(tally)


def confidence(counts: list[int]) -> dict:
    return {f"confidence_b{i}": n for i, n in enumerate(counts) if n}


def kinds(findings) -> list[tuple]:
    return sorted(((f.automation.slug, f.segment, f.kind) for f in findings), key=str)


# -- PSI: calibration on stationary synthetic data ----------------------------------------

STATIONARY = {
    "uniform": lambda r: r.random(),
    "confident": lambda r: r.betavariate(8, 2),
    "middling": lambda r: r.betavariate(2, 2),
    "very confident": lambda r: r.betavariate(30, 3),
    # A rules provider's few fixed confidences, and a model's spread around them.
    "mixed": lambda r: r.choice([0.55, 0.72, 0.91, 0.99]) if r.random() < 0.7 else r.random(),
}
TRIALS = 1000


def binned(draw, rng, n: int) -> list[int]:
    counts = [0] * CONFIDENCE_BINS
    for _ in range(n):
        counts[confidence_bin(draw(rng))] += 1
    return counts


def false_alarm_rate(draw, *, n: int, threshold: float, seed: int) -> float:
    rng = random.Random(seed)
    alarms = sum(
        psi(binned(draw, rng, n), binned(draw, rng, n)) >= threshold for _ in range(TRIALS)
    )
    return alarms / TRIALS


@pytest.mark.parametrize("name", sorted(STATIONARY))
def test_psi_at_the_minimum_sample_raises_at_most_1_percent_false_alarms(settings, name):
    rate = false_alarm_rate(
        STATIONARY[name],
        n=settings.HANDRAIL_DRIFT_PSI_MIN_SAMPLE,
        threshold=settings.HANDRAIL_DRIFT_PSI_THRESHOLD,
        seed=sum(map(ord, name)),
    )

    assert rate <= 0.01


def test_without_the_minimum_sample_small_windows_would_alarm_often(settings):
    rate = false_alarm_rate(
        STATIONARY["uniform"], n=100, threshold=settings.HANDRAIL_DRIFT_PSI_THRESHOLD, seed=1
    )

    assert rate > 0.1


def test_a_real_shift_at_the_minimum_sample_is_seen(settings):
    rng = random.Random(5)
    n = settings.HANDRAIL_DRIFT_PSI_MIN_SAMPLE
    before = binned(STATIONARY["confident"], rng, n)
    after = binned(lambda r: r.betavariate(3, 3), rng, n)

    assert psi(before, after) >= settings.HANDRAIL_DRIFT_PSI_THRESHOLD


# -- each condition at and just below its edge ------------------------------------------


@pytest.fixture
def quiet(db):
    """Figures that raise nothing: no reviews, no decisions, no spend."""
    return AutomationFactory(slug="triage", latency_budget_ms=2425, daily_budget_usd=10)


@pytest.mark.django_db
@pytest.mark.parametrize(("overridden", "raised"), [(6, True), (5, False)])
def test_override_rate_at_its_baseline_plus_the_margin_raises(quiet, overridden, raised):
    counted(quiet, BASELINE, reviewed=100, overridden=10)  # baseline 0.10, +0.10: 0.20
    counted(quiet, CURRENT, reviewed=30, overridden=overridden)  # 0.20 or 0.1667

    findings = drift_findings(now=NOW)

    assert kinds(findings) == ([("triage", None, "override_rate")] if raised else [])
    if raised:
        found = findings[0].as_json()
        assert found == {
            "automation": "triage",
            "segment": None,
            "kind": "override_rate",
            "value": pytest.approx(0.2),
            "baseline": pytest.approx(0.1),
            "threshold": pytest.approx(0.2),
        }


@pytest.mark.django_db
@pytest.mark.parametrize(("reviewed", "raised"), [(30, True), (29, False)])
def test_override_rate_needs_its_minimum_of_reviews(quiet, reviewed, raised):
    counted(quiet, BASELINE, reviewed=100, overridden=10)
    counted(quiet, CURRENT, reviewed=reviewed, overridden=reviewed)  # every one overridden

    assert bool(drift_findings(now=NOW)) is raised


SHIFTED = ([0] * 5 + [50, 50, 100, 50, 50], [0] * 5 + [10, 20, 50, 100, 120])


@pytest.mark.django_db
@pytest.mark.parametrize(("above", "raised"), [(0.0, True), (1e-6, False)])
def test_confidence_psi_at_the_threshold_raises(quiet, settings, above, raised):
    before, now = SHIFTED
    counted(quiet, PREVIOUS, **confidence(before))
    counted(quiet, CURRENT, **confidence(now))
    settings.HANDRAIL_DRIFT_PSI_THRESHOLD = psi(before, now) + above

    findings = drift_findings(now=NOW)

    assert kinds(findings) == ([("triage", None, "confidence_psi")] if raised else [])
    if raised:
        assert findings[0].value == pytest.approx(psi(before, now))


@pytest.mark.django_db
@pytest.mark.parametrize(("least", "raised"), [(300, True), (301, False)])
def test_confidence_psi_needs_its_minimum_sample_in_both_windows(quiet, settings, least, raised):
    before, now = SHIFTED  # 300 decisions in each window
    counted(quiet, PREVIOUS, **confidence(before))
    counted(quiet, CURRENT, **confidence(now))
    settings.HANDRAIL_DRIFT_PSI_MIN_SAMPLE = least

    assert bool(drift_findings(now=NOW)) is raised


@pytest.mark.django_db
@pytest.mark.parametrize(("budget_ms", "decisions", "raised"), [(2425, 20, True),
                         (2426, 20, False), (2425, 19, False)])  # fmt: skip
def test_latency_p95_at_the_budget_raises(quiet, budget_ms, decisions, raised):
    quiet.latency_budget_ms = budget_ms
    quiet.save()
    # All in (1000, 2500] ms: p95 is 1000 + 1500 * 19/20 = 2425 ms with 20 decisions.
    counted(quiet, NOW - timedelta(minutes=30), decisions=decisions, decision_b5=decisions)

    findings = drift_findings(now=NOW)

    assert kinds(findings) == ([("triage", None, "latency_p95")] if raised else [])
    if raised:
        assert (findings[0].value, findings[0].threshold) == (pytest.approx(2425), 2425)


@pytest.mark.django_db
@pytest.mark.parametrize(("spent", "raised"), [("8.000000", True), ("7.999999", False)])
def test_spend_at_its_share_of_the_daily_budget_raises(quiet, spent, raised):
    DailySpend.objects.create(automation=quiet, day=NOW.date(), cost_usd=Decimal(spent))

    findings = drift_findings(now=NOW)

    assert kinds(findings) == ([("triage", None, "spend")] if raised else [])
    if raised:
        assert (findings[0].value, findings[0].baseline, findings[0].threshold) == (8.0, 10.0, 8.0)


@pytest.mark.django_db
def test_segments_are_judged_apart_while_there_are_two_to_fifty(quiet):
    counted(quiet, BASELINE, segment="smb", reviewed=100, overridden=10)
    counted(quiet, BASELINE, segment="vip", reviewed=100, overridden=10)
    counted(quiet, CURRENT, segment="smb", reviewed=90, overridden=0)
    counted(quiet, CURRENT, segment="vip", reviewed=30, overridden=15)  # overall 15 of 120

    assert kinds(drift_findings(now=NOW)) == [("triage", "vip", "override_rate")]


@pytest.mark.django_db
def test_a_single_segment_is_the_whole_automation(quiet):
    counted(quiet, BASELINE, segment="vip", reviewed=100, overridden=10)
    counted(quiet, CURRENT, segment="vip", reviewed=30, overridden=15)

    assert kinds(drift_findings(now=NOW)) == [("triage", None, "override_rate")]


# -- alerts: stored, kept, resolved, posted ---------------------------------------------


def raise_override(automation):
    counted(automation, BASELINE, reviewed=100, overridden=10)
    counted(automation, CURRENT, reviewed=30, overridden=15)


@pytest.mark.django_db
def test_an_alert_stays_open_while_its_condition_holds_then_is_resolved(quiet):
    raise_override(quiet)

    first = drift_check(now=NOW)
    again = drift_check(now=NOW + timedelta(minutes=5))

    assert [a.kind for a in first.raised] == ["override_rate"]
    assert again.raised == [] and len(again.findings) == 1
    alert = Alert.objects.get()
    assert (alert.resolved_at, alert.last_seen_at) == (None, NOW + timedelta(minutes=5))
    later = NOW + timedelta(days=2)  # the window moved past the overrides
    assert drift_check(now=later).findings == []
    alert.refresh_from_db()
    assert alert.resolved_at == later


@pytest.mark.django_db
def test_a_new_alert_is_posted_signed_to_the_notify_url(quiet, monkeypatch):
    monkeypatch.setenv("TEST_NOTIFY_SECRET", secret := new_webhook_secret())
    raise_override(quiet)
    with WebhookReceiver() as receiver:
        quiet.notify_url = receiver.url("/hooks/alerts")
        quiet.notify_secret_env = "TEST_NOTIFY_SECRET"
        quiet.save()

        drift_check(now=NOW)
        drift_check(now=NOW + timedelta(minutes=5))  # still open: not posted again
        [message] = receiver.wait_for(1)

    body = verify(message, secret)
    alert = Alert.objects.get()
    assert message.headers["webhook-id"] == f"alert_{alert.pk}"
    assert {k: body[k] for k in ("event", "automation", "segment", "kind")} == {
        "event": "metrics_alert",
        "automation": "triage",
        "segment": None,
        "kind": "override_rate",
    }
    assert (body["value"], body["threshold"]) == (pytest.approx(0.5), pytest.approx(0.2))
    assert alert.notified_at is not None


@pytest.mark.django_db
def test_check_drift_prints_one_json_object_per_alert(quiet, monkeypatch):
    raise_override(quiet)
    DailySpend.objects.create(automation=quiet, day=NOW.date(), cost_usd=Decimal(9))
    monkeypatch.setattr("automations.metrics.drift.timezone.now", lambda: NOW)
    out = io.StringIO()

    call_command("check_drift", "--json", stdout=out)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {line["kind"] for line in lines} == {"override_rate", "spend"}
    for line in lines:
        assert set(line) == {
            "automation", "segment", "kind", "value", "baseline", "threshold", "new"
        }  # fmt: skip
        assert line["new"] is True


@pytest.mark.django_db
def test_check_drift_says_when_nothing_holds(quiet):
    out = io.StringIO()

    call_command("check_drift", stdout=out)

    assert out.getvalue().strip() == "no alerts"


# -- spend: the alert and the budget guardrail read one figure ---------------------------


@pytest.mark.django_db
def test_spend_over_the_budget_alerts_and_sends_new_cases_to_review(
    django_capture_on_commit_callbacks,
):
    automation = AutomationFactory(
        slug="billed", provider="openai", mode="autonomous", daily_budget_usd=Decimal("2")
    )
    IntentFactory(automation=automation)
    now = timezone.now()
    DailySpend.objects.create(automation=automation, day=now.date(), cost_usd=Decimal("2.5"))
    run = RunFactory(event=EventFactory(automation=automation))

    [finding] = drift_findings(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        run_decide(run_id=run.pk, actor="worker:test")

    run.refresh_from_db()
    budget = next(v for v in run.verdicts if v["check"] == "budget")
    assert (finding.kind, finding.value) == ("spend", 2.5)
    assert finding.value == float(spend_today(automation_id=automation.pk, now=now))
    assert (budget["verdict"], Decimal(budget["details"]["spent_usd"])) == (
        "review",
        Decimal("2.5"),
    )
    assert run.state == "awaiting_review"
    assert not run.model_calls.exists()  # over budget: the model is not even asked
