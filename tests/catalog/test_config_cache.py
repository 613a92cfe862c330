"""A worker keeps an automation's intents, rules and policies a few seconds; switches never wait."""

from unittest import mock

import pytest

from automations.services.decisions import run_advance
from catalog.config_cache import automation_config
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


@pytest.fixture
def cached(settings):
    settings.HANDRAIL_CONFIG_CACHE_SECONDS = 5


def decided(automation, *, body="Where is my invoice?", segment=""):
    run = RunFactory(
        event=EventFactory(automation=automation, segment=segment, payload={"body": body})
    )
    with mock.patch("automations.services.decisions.attempt_send"):
        run_advance(run_id=run.pk, actor="worker:test")
    run.refresh_from_db()
    return run


def test_the_rows_are_read_once_while_fresh(cached, django_assert_num_queries):
    automation = AutomationFactory()
    IntentFactory(automation=automation)
    first = automation_config(automation.pk)

    with django_assert_num_queries(0):
        again = automation_config(automation.pk)
        names = [i.name for i in again.intents.all()]
    assert again is first
    assert names == [i.name for i in automation.intents.all()]


def test_a_rule_reaches_decisions_once_the_copy_is_old(cached):
    automation = AutomationFactory(mode="approve", rules=[BILLING_RULE])
    IntentFactory(automation=automation)
    decided(automation)  # the copy is made
    DoNotAutomateRuleFactory(automation=automation, effect="block", value="(?i)invoice")

    within = decided(automation)  # the copy is still fresh: the rule is not seen yet
    with mock.patch("catalog.config_cache.time.monotonic", return_value=10**9):
        later = decided(automation)  # long after: the rows are read again

    assert (within.state, later.state) == ("awaiting_review", "blocked")


def test_a_segment_switched_off_holds_at_once_whatever_the_copy_says(cached):
    automation = AutomationFactory(mode="autonomous", rules=[BILLING_RULE])
    IntentFactory(automation=automation)
    policy = SegmentPolicyFactory(automation=automation, key="enterprise", enabled=True)
    decided(automation, segment="enterprise")  # the copy says: on
    policy.enabled = False
    policy.save()

    run = decided(automation, segment="enterprise")

    # The guardrail saw the copy; the decision's record read the switch afresh.
    assert run.state == "blocked"
    assert run.reason == "segment enterprise is switched off (while deciding)"
