"""metrics_report (contracts section 9): the dashboard's figures of one automation as JSON."""

import io
import json
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.automations.metrics_support import history, model_call, reviewed_run
from tests.factories import AutomationFactory

pytestmark = pytest.mark.django_db

CONTRACT_KEYS = {
    "runs",
    "outcomes",
    "decision_latency_ms",
    "end_to_end_latency_ms",
    "override_rate",
    "needed_person_rate",
    "model_error_rate",
    "tokens",
    "cost_usd",
    "cost_per_1000_decisions_usd",
}
RATES = ("override_rate", "needed_person_rate", "model_error_rate")


def report(slug: str, window: str) -> dict:
    out = io.StringIO()
    call_command("metrics_report", "--automation", slug, "--window", window, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def triage():
    """Runs 1 hour, 3 days and 20 days ago; reviews and model calls among them."""
    automation = AutomationFactory(
        slug="support-triage", reviewer_hourly_usd=Decimal("60"), manual_minutes_per_case=6
    )
    now = timezone.now()
    hour_ago, days_ago_3, days_ago_20 = (now - timedelta(hours=h) for h in (1, 72, 480))
    for _ in range(3):
        run = history(automation, at=hour_ago, gaps_ms=[10, 90, 400])  # decided in 100 ms
        model_call(run, at=hour_ago, tokens=(100, 20), cost="0.01")
    reviewed_run(automation, at=hour_ago, outcome="edited", segment="enterprise", review_ms=120_000)
    reviewed_run(automation, at=days_ago_3, outcome="accepted", finish="executed")
    reviewed_run(automation, at=days_ago_20, outcome="rejected")
    history(automation, at=days_ago_20, steps=("blocked",), segment="enterprise")
    return automation


def test_the_json_has_every_figure_the_contract_names(triage):
    body = report("support-triage", "24h")

    assert set(body) >= CONTRACT_KEYS
    assert set(body["outcomes"]) == {"autonomous", "approved", "edited", "rejected", "blocked"}
    for key in ("decision_latency_ms", "end_to_end_latency_ms"):
        assert set(body[key]) == {"p50", "p95", "p99"}
        assert all(isinstance(v, int | float) for v in body[key].values())
    assert all(0 <= body[rate] <= 1 for rate in RATES)
    assert set(body["segments"]) == {"", "enterprise"}
    for figures in body["segments"].values():
        assert set(figures) >= CONTRACT_KEYS


def test_the_last_24_hours(triage):
    body = report("support-triage", "24h")

    assert body["runs"] == 4
    assert body["outcomes"] == {
        "autonomous": 3,
        "approved": 0,
        "edited": 0,  # decided, not finished: still approved, on its way
        "rejected": 0,
        "blocked": 0,
    }
    assert body["override_rate"] == 1.0  # the one review was an edit
    assert body["needed_person_rate"] == pytest.approx(0.25)
    assert (body["tokens"], body["cost_usd"]) == (360, 0.03)
    # $0.03 of model calls and 2 reviewer minutes at $60/h ($2) over 4 runs, per 1,000.
    assert body["cost_per_1000_decisions_usd"] == pytest.approx(507.5)
    # 3 decided between 50 and 100 ms (100 ms is the bucket's bound), one in 30 ms.
    assert body["decision_latency_ms"]["p50"] == pytest.approx(50 + 50 * 1 / 3, abs=1e-3)
    assert body["segments"]["enterprise"]["runs"] == 1
    assert body["segments"][""]["override_rate"] == 0.0


def test_longer_windows_take_in_older_runs(triage):
    week, month = report("support-triage", "7d"), report("support-triage", "30d")

    assert (week["runs"], month["runs"]) == (5, 7)
    assert week["outcomes"]["approved"] == 1
    assert month["outcomes"] == {
        "autonomous": 3,
        "approved": 1,
        "edited": 0,
        "rejected": 1,
        "blocked": 1,
    }
    assert month["reviewed"] == 3
    assert month["override_rate"] == pytest.approx(2 / 3)


def test_an_automation_without_runs_reports_zeroes(db):
    AutomationFactory(slug="quiet")

    body = report("quiet", "7d")

    assert (body["runs"], body["override_rate"], body["cost_per_1000_decisions_usd"]) == (0, 0, 0)
    assert body["segments"] == {}


def test_an_unknown_automation_is_an_error(db):
    with pytest.raises(CommandError, match="unknown automation 'nope'"):
        call_command("metrics_report", "--automation", "nope", "--window", "24h", "--json")


def test_a_window_outside_the_three_is_refused_with_exit_status_2():
    finished = subprocess.run(
        [sys.executable, "manage.py", "metrics_report", "--automation", "a", "--window", "5d"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 2
    assert "invalid choice: '5d'" in finished.stderr


def test_text_output_names_the_figures(triage):
    out = io.StringIO()

    call_command("metrics_report", "--automation", "support-triage", "--window", "24h", stdout=out)

    text = out.getvalue()
    assert "support-triage, last 24h" in text
    assert "override rate 100.0% of 1 reviewed" in text
    assert "segment enterprise" in text
