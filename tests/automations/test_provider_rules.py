"""The rules provider: the first matching rule decides, offline."""

import pytest

from automations.providers import PROVIDERS, provider_for
from tests.factories import AutomationFactory, IntentFactory

DOCUMENT = {
    "payload": {"subject": "Invoice", "body": "Where is my invoice? Card was charged twice."},
    "segment": "enterprise",
    "source": "zendesk",
    "idempotency_key": "ticket-4711",
}


def rule(field, operator, operand, team, confidence=0.9):
    return {
        "when": {"field": field, operator: operand},
        "intent": "route_ticket",
        "arguments": {"team": team, "priority": "p2"},
        "confidence": confidence,
    }


@pytest.fixture
def automation(db):
    automation = AutomationFactory(provider="rules")
    IntentFactory(automation=automation)
    return automation


def decide(automation):
    return provider_for(automation).decide(automation=automation, document=DOCUMENT)


def test_first_matching_rule_wins(automation):
    automation.rules = [
        rule("payload.subject", "equals", "Refund", "sales"),
        rule("payload.body", "matches", "(?i)invoice|charged", "billing", confidence=0.95),
        rule("segment", "in", ["enterprise"], "technical"),
    ]

    result = decide(automation)

    assert result.error == ""
    assert result.decision == {
        "intent": "route_ticket",
        "arguments": {"team": "billing", "priority": "p2"},
        "confidence": 0.95,
        "rationale": "matched rule 2",
    }
    assert result.call.provider == "rules"
    assert result.call.error == ""
    assert result.call.latency_ms >= 0


def test_no_matching_rule_goes_to_a_person(automation):
    automation.rules = [rule("payload.body", "contains", "lawsuit", "billing")]

    result = decide(automation)

    assert result.decision is None
    assert result.error == "no rule matched"
    assert result.call.error == "no rule matched"


def test_no_rules_at_all_goes_to_a_person(automation):
    automation.rules = []

    assert decide(automation).error == "no rule matched"


def test_rule_with_arguments_failing_the_schema_goes_to_a_person(automation):
    automation.rules = [rule("source", "equals", "zendesk", "marketing")]

    result = decide(automation)

    assert result.decision is None
    assert result.error == (
        "rule 1: arguments.team: 'marketing' is not one of ['billing', 'technical', 'sales']"
    )


def test_rule_naming_an_unknown_intent_goes_to_a_person(automation):
    automation.rules = [{**rule("source", "equals", "zendesk", "billing"), "intent": "refund"}]

    assert decide(automation).error == 'rule 1: unknown intent "refund"'


def test_malformed_rule_goes_to_a_person(automation):
    automation.rules = [{"when": {"field": "payload.body", "matches": "("}, "intent": "x"}]

    result = decide(automation)

    assert result.decision is None
    assert result.error.startswith("rule 1 is malformed: ")


def test_rule_without_confidence_is_certain(automation):
    automation.rules = [
        {k: v for k, v in rule("source", "equals", "zendesk", "sales").items() if k != "confidence"}
    ]

    assert decide(automation).decision["confidence"] == 1.0


def test_registry_knows_both_providers(automation):
    assert set(PROVIDERS) == {"openai", "rules"}
    automation.provider = "openai"
    assert provider_for(automation).name == "openai"
    automation.provider = "oracle"
    with pytest.raises(LookupError, match="unknown decision provider 'oracle'"):
        provider_for(automation)
