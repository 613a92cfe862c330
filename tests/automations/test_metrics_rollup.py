"""The rollup job: every fact counted once, in its hour, incrementally, and again on a rebuild."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from automations.metrics import rollup as rollup_module
from automations.metrics.figures import automation_report
from automations.metrics.models import Rollup, RollupCursor, RollupKey, RollupRebuild
from automations.metrics.rollup import rollup_rebuild, rollup_run, rollup_step
from automations.models import RunTransition
from catalog.audit.outcomes import finished_runs
from tests.automations.metrics_support import history, model_call, review, reviewed_run
from tests.factories import AutomationFactory

pytestmark = pytest.mark.django_db

HOUR = datetime(2026, 11, 24, 10, tzinfo=UTC)


def hour_row(automation, start=HOUR, segment=""):
    return Rollup.objects.get(automation=automation, period="h", start=start, segment=segment)


def day_row(automation, segment=""):
    start = HOUR.replace(hour=0)
    return Rollup.objects.get(automation=automation, period="d", start=start, segment=segment)


def columns(row, *names):
    return {name: getattr(row, name) for name in names}


def test_an_autonomous_run_counts_its_arrival_decision_and_finish():
    automation = AutomationFactory()
    history(automation, at=HOUR + timedelta(minutes=5), gaps_ms=[40, 700, 1_200])

    rollup_run()

    row = hour_row(automation)
    assert columns(row, "runs", "decisions", "finished", "autonomous", "needed_person") == {
        "runs": 1,
        "decisions": 1,
        "finished": 1,
        "autonomous": 1,
        "needed_person": 0,
    }
    # Decided 740 ms after arrival: the (500, 1000] bucket; done after 1,940 ms: (1000, 5000].
    assert (row.decision_ms_sum, row.decision_b4) == (740, 1)
    assert (row.e2e_ms_sum, row.e2e_b2) == (1940, 1)
    assert row.confidence_b9 == 1  # the model said 0.9
    assert columns(day_row(automation), "runs", "decisions", "autonomous") == {
        "runs": 1,
        "decisions": 1,
        "autonomous": 1,
    }


def test_each_fact_lands_in_the_hour_it_happened():
    automation = AutomationFactory()
    arrival = HOUR + timedelta(minutes=59, seconds=59)
    history(automation, at=arrival, steps=("deciding", "awaiting_review"), gaps_ms=[500, 800])

    rollup_run()

    assert (hour_row(automation).runs, hour_row(automation).decisions) == (1, 0)
    later = hour_row(automation, HOUR + timedelta(hours=1))
    assert (later.runs, later.decisions, later.needed_person) == (0, 1, 1)


def test_outcomes_are_named_as_section_7_and_agree_with_a_scan_of_the_runs():
    automation = AutomationFactory()
    at = HOUR + timedelta(minutes=1)
    history(automation, at=at)  # autonomous
    history(automation, at=at, steps=("blocked",))  # switched off before deciding
    history(automation, at=at, steps=("deciding", "blocked"))
    history(automation, at=at, steps=("deciding", "recorded"))  # shadow: no outcome
    reviewed_run(automation, at=at, outcome="accepted", finish="executed")
    reviewed_run(automation, at=at, outcome="edited", finish="executed", diff=["arguments.team"])
    reviewed_run(automation, at=at, outcome="rejected")
    compensated = history(automation, at=at, steps=("deciding", "executing", "executed"))
    RunTransition.objects.create(
        run=compensated, from_state="executed", to_state="compensated", actor="test"
    )

    rollup_run()

    row = hour_row(automation)
    scanned = Counter(
        finished_runs().filter(automation=automation).values_list("outcome", flat=True)
    )
    counted = columns(row, "autonomous", "approved", "edited", "rejected", "blocked")
    assert counted == {name: scanned[name] for name in counted}
    assert counted == {"autonomous": 2, "approved": 1, "edited": 1, "rejected": 1, "blocked": 2}
    assert row.finished == 8  # the shadow run finished too, with no outcome to name
    assert (row.reviewed, row.overridden) == (3, 2)


def test_reviews_model_calls_and_guardrails_are_counted_with_their_keys():
    automation = AutomationFactory()
    at = HOUR + timedelta(minutes=3)
    verdicts = [
        {"check": "confidence", "verdict": "review"},
        {"check": "budget", "verdict": "pass"},
        {"check": "pii_policy", "verdict": "block"},
    ]
    run = history(automation, at=at, steps=("deciding", "awaiting_review"), verdicts=verdicts)
    model_call(run, at=at, tokens=(120, 30), cost="0.0025")
    model_call(run, at=at, tokens=(0, 0), cost="0", error="model timed out after 8000 ms")
    review(run, at=at, outcome="edited", review_ms=90_000, diff=["arguments.team", "intent"])

    rollup_run()

    row = hour_row(automation)
    assert columns(row, "model_calls", "model_errors", "model_timeouts") == {
        "model_calls": 2,
        "model_errors": 1,
        "model_timeouts": 1,
    }
    assert (row.input_tokens, row.output_tokens, str(row.cost_usd)) == (120, 30, "0.002500")
    assert (row.guardrail_triggered, row.needed_person) == (1, 1)
    assert (row.reviewed, row.overridden, row.review_ms_sum) == (1, 1, 90_000)
    keys = {
        (k.kind, k.key): k.count
        for k in RollupKey.objects.filter(automation=automation, period="h")
    }
    assert keys == {
        ("check", "confidence"): 1,
        ("check", "pii_policy"): 1,
        ("field", "arguments.team"): 1,
        ("field", "intent"): 1,
    }


def test_running_again_adds_only_what_is_new():
    automation = AutomationFactory()
    history(automation, at=HOUR)
    rollup_run()

    assert rollup_run() == 0
    assert hour_row(automation).runs == 1
    history(automation, at=HOUR + timedelta(minutes=30))
    rollup_run()
    assert hour_row(automation).runs == 2
    assert day_row(automation).runs == 2


def test_small_batches_add_up_to_the_same_as_one(monkeypatch):
    automation = AutomationFactory()
    for minute in range(7):
        history(automation, at=HOUR + timedelta(minutes=minute), segment="abc"[minute % 3])
    monkeypatch.setattr(rollup_module, "BATCH", 3)

    rollup_run()

    rows = Rollup.objects.filter(automation=automation, period="h")
    assert sum(row.runs for row in rows) == 7
    assert sum(row.autonomous for row in rows) == 7
    assert {row.segment: row.runs for row in rows} == {"a": 3, "b": 2, "c": 2}


def test_a_row_that_commits_after_the_job_read_past_its_id_is_counted_when_it_shows_up():
    automation = AutomationFactory()
    history(automation, at=HOUR)
    late = history(automation, at=HOUR + timedelta(minutes=1))
    history(automation, at=HOUR + timedelta(minutes=2))
    # Its arrival is still in flight when the job runs: inserted (id taken), not committed.
    arrival = late.transitions.get(to_state="received")
    arrival_id = arrival.pk
    fields = {"run": late, "from_state": "", "to_state": "received", "actor": "test"}
    arrival.delete()

    rollup_run()

    cursor = RollupCursor.objects.get(source="transition")
    assert [pk for pk, _ in cursor.pending] == [arrival_id]
    assert hour_row(automation).runs == 2
    RunTransition.objects.create(pk=arrival_id, **fields)
    RunTransition.objects.filter(pk=arrival_id).update(at=HOUR + timedelta(minutes=1))
    rollup_run()
    assert hour_row(automation).runs == 3
    assert RollupCursor.objects.get(source="transition").pending == []


def test_an_id_that_never_shows_up_is_given_up_on():
    automation = AutomationFactory()
    run = history(automation, at=HOUR)
    run.transitions.get(to_state="deciding").delete()  # a rolled-back insert
    rollup_run()
    assert len(RollupCursor.objects.get(source="transition").pending) == 1

    later = timezone.now() + timedelta(seconds=rollup_module.GAP_SECONDS + 1)
    rollup_step("transition", now=later)

    assert RollupCursor.objects.get(source="transition").pending == []


def test_a_rebuild_gives_what_the_increments_gave(monkeypatch):
    automation = AutomationFactory()
    for minute in range(4):
        reviewed_run(automation, at=HOUR + timedelta(minutes=minute), outcome="edited")
        history(automation, at=HOUR + timedelta(hours=5, minutes=minute), segment="vip")
    rollup_run()
    before = sorted(Rollup.objects.values_list("period", "start", "segment", "runs", "edited"))
    monkeypatch.setattr(rollup_module, "BATCH", 5)
    seen = []

    rollup_rebuild(progress=lambda done, total: seen.append((done, total)))

    after = sorted(Rollup.objects.values_list("period", "start", "segment", "runs", "edited"))
    assert after == before
    assert seen and seen[-1][0] == seen[-1][1]  # the last report: everything read


def test_rebuild_command_prints_its_progress_and_records_it(capsys, monkeypatch):
    automation = AutomationFactory()
    history(automation, at=HOUR)
    monkeypatch.setattr("automations.management.commands.rollup_metrics.PROGRESS_EVERY_SECONDS", 0)

    call_command("rollup_metrics", "--rebuild")

    out = capsys.readouterr().out
    assert "rebuilding: " in out and "source rows (" in out
    assert out.strip().endswith("rollups rebuilt from 4 source rows")
    record = RollupRebuild.objects.get()
    assert (record.done, record.total, record.finished_at is not None) == (4, 4, True)
    assert hour_row(automation).runs == 1


def test_the_report_reads_only_the_rollups():
    automation = AutomationFactory()
    now = timezone.now()
    history(automation, at=now - timedelta(minutes=5))

    assert automation_report(automation, window="24h", now=now).overall.runs == 0
    rollup_run()
    assert automation_report(automation, window="24h", now=now).overall.runs == 1
