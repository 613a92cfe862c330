"""The standing audit queue: autonomous runs join their automation's sample at its rate."""

import io
from fractions import Fraction

import pytest
from django.conf import settings
from django.core.management import call_command

from catalog.audit.standing import standing_queue_run, taken
from catalog.models import AuditSample, AuditStratum
from catalog.tasks import audit_standing_queue
from tests.catalog.audit_support import runs_of
from tests.factories import AutomationFactory

pytestmark = pytest.mark.django_db


def standing(automation) -> AuditSample:
    return AuditSample.objects.get(kind="standing", automation=automation)


def test_autonomous_runs_join_the_standing_sample_by_the_hash_at_the_automations_rate():
    automation = AutomationFactory(slug="support", audit_sample_rate=0.25, mode="autonomous")
    enterprise = runs_of(automation, "autonomous", 60, segment="enterprise")
    trial = runs_of(automation, "autonomous", 20, segment="trial")
    runs_of(automation, "approved", 10)  # a person decided these: not the queue's business
    runs_of(automation, "blocked", 5)

    audit_standing_queue.delay()

    sample = standing(automation)
    expected = [
        run.pk
        for run in enterprise + trial
        if taken(seed=sample.seed, run_id=run.pk, rate=Fraction(1, 4))
    ]
    assert sorted(sample.items.values_list("run_id", flat=True)) == sorted(expected)
    assert 0 < len(expected) < 80
    assert [(s.key, s.population) for s in sample.strata.order_by("position")] == [
        ({"outcome": "autonomous", "segment": "enterprise"}, 60),
        ({"outcome": "autonomous", "segment": "trial"}, 20),
    ]
    assert list(sample.items.order_by("position").values_list("position", flat=True)) == list(
        range(len(expected))
    )


def test_the_queue_takes_each_run_once_and_new_runs_as_they_finish():
    automation = AutomationFactory(audit_sample_rate=1.0)
    runs_of(automation, "autonomous", 3)
    assert standing_queue_run() == 3
    assert standing_queue_run() == 0

    later = runs_of(automation, "autonomous", 2, segment="trial")

    assert standing_queue_run() == 2
    sample = standing(automation)
    assert set(sample.items.values_list("run_id", flat=True)) >= {r.pk for r in later}
    assert sum(AuditStratum.objects.filter(sample=sample).values_list("population", flat=True)) == 5


def test_a_run_still_on_its_way_holds_back_the_runs_after_it_until_it_finishes():
    automation = AutomationFactory(audit_sample_rate=1.0)
    before = runs_of(automation, "autonomous", 2)
    [moving] = runs_of(automation, "in_flight", 1)
    after = runs_of(automation, "autonomous", 2)

    standing_queue_run()
    sample = standing(automation)
    assert set(sample.items.values_list("run_id", flat=True)) == {r.pk for r in before}

    type(moving).objects.filter(pk=moving.pk).update(state="executed")
    standing_queue_run()

    taken_ids = set(sample.items.values_list("run_id", flat=True))
    assert taken_ids == {r.pk for r in before + [moving] + after}


def test_an_automation_sampled_at_rate_zero_has_no_standing_sample():
    automation = AutomationFactory(audit_sample_rate=0.0)
    runs_of(automation, "autonomous", 5)

    assert standing_queue_run() == 0
    assert not AuditSample.objects.filter(automation=automation).exists()


def test_celery_beat_runs_the_standing_queue():
    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "catalog.audit_standing_queue" in entries


def test_the_command_runs_the_standing_queue_once():
    automation = AutomationFactory(audit_sample_rate=1.0)
    runs_of(automation, "autonomous", 2)
    out = io.StringIO()

    call_command("audit_standing_queue", stdout=out)

    assert out.getvalue() == "standing audit queue: 2 run(s) added\n"
    assert standing(automation).items.count() == 2
