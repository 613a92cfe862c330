"""Automation.config_version moves on with every configuration write; decisions reuse it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automations.services.decisions import run_advance
from catalog.models import Automation, DoNotAutomateRule, Intent, SegmentPolicy
from tests.factories import (
    BILLING_RULE,
    AutomationFactory,
    DoNotAutomateRuleFactory,
    EventFactory,
    IntentFactory,
    RunFactory,
    SegmentPolicyFactory,
)

pytestmark = pytest.mark.django_db


def version(automation) -> int:
    return Automation.objects.values_list("config_version", flat=True).get(pk=automation.pk)


@pytest.fixture
def automation():
    automation = AutomationFactory(mode="autonomous", rules=[BILLING_RULE])
    IntentFactory(automation=automation, action_adapter="")  # nothing to send
    return automation


def test_every_kind_of_configuration_write_moves_the_version_on(automation):
    seen = [version(automation)]

    def moved():
        seen.append(version(automation))
        return seen[-1] > seen[-2]

    automation.name = "Renamed"
    automation.save()
    assert moved()
    stale = Automation.objects.get(pk=automation.pk)
    Automation.objects.filter(pk=automation.pk).update(min_confidence=0.5)
    assert moved()
    stale.save()  # writes back the version it read, which is behind
    assert moved()
    policy = SegmentPolicyFactory(automation=automation, key="trial")
    assert moved()
    SegmentPolicy.objects.filter(pk=policy.pk).update(enabled=False)  # a kill switch
    assert moved()
    rule = DoNotAutomateRuleFactory(automation=automation)
    assert moved()
    DoNotAutomateRule.objects.filter(pk=rule.pk).delete()
    assert moved()
    Intent.objects.filter(automation=automation).update(risk="high")
    assert moved()


def test_other_automations_keep_their_version(automation):
    other = AutomationFactory()
    before = version(other)

    IntentFactory(automation=automation, name="close_ticket")

    assert version(other) == before


def decide(automation, *, segment="", body="Where is my invoice?"):
    event = EventFactory(automation=automation, segment=segment, payload={"body": body})
    run = RunFactory(event=event)
    with CaptureQueriesContext(connection) as queries:
        run_advance(run_id=run.pk, actor="worker:test")
    run.refresh_from_db()
    return run, len(queries)


def test_a_second_decision_reuses_the_configuration_it_loaded(automation):
    first, first_queries = decide(automation)
    second, second_queries = decide(automation)

    assert first.state == second.state == "executed"
    # The intents, do-not-automate rules and segment policies: one query each, once.
    assert second_queries == first_queries - 3


def test_a_kill_switch_holds_for_the_very_next_decision(automation):
    SegmentPolicyFactory(automation=automation, key="trial", enabled=True)
    before, _ = decide(automation, segment="trial")
    assert before.state == "executed"

    SegmentPolicy.objects.filter(automation=automation, key="trial").update(enabled=False)
    after, _ = decide(automation, segment="trial")

    assert after.state == "blocked"
    assert "switched off" in after.reason


def test_a_new_do_not_automate_rule_applies_to_the_very_next_decision(automation):
    decide(automation, body="Invoice wrong, my lawyer will call")
    DoNotAutomateRuleFactory(automation=automation, effect="block")

    run, _ = decide(automation, body="Invoice wrong, my lawyer will call")

    assert run.state == "blocked"
    assert "legal threat" in run.reason
