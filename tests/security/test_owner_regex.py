"""Owner regexes run in linear time; what RE2 cannot run is refused, or fails safe (item 5)."""

import time
from pathlib import Path

import pytest

from automations.matching import PatternRefused, condition_matches, pattern_compile
from automations.services.decisions import run_decide
from catalog.loader import CatalogInvalid, load_catalog, parse_catalog
from catalog.models import Automation
from tests.factories import (
    AutomationFactory,
    DoNotAutomateRuleFactory,
    EventFactory,
    IntentFactory,
    RunFactory,
    UserFactory,
)

EXAMPLE = Path(__file__).parents[1] / "catalog" / "fixtures" / "support_triage.yaml"
CATASTROPHIC = "^(a+)+$"
ROUTE = {"team": "billing", "priority": "p2"}

pytestmark = pytest.mark.django_db


def rule(pattern: str) -> dict:
    return {
        "when": {"field": "payload.body", "matches": pattern},
        "intent": "route_ticket",
        "arguments": ROUTE,
        "confidence": 0.99,
    }


def decided(automation, body: str):
    IntentFactory(automation=automation, action_adapter="", action_config={})
    run = RunFactory(event=EventFactory(automation=automation, payload={"body": body}))
    run_decide(run_id=run.pk, actor="worker:test")
    run.refresh_from_db()
    return run


def test_catastrophic_pattern_decides_in_under_a_second():
    automation = AutomationFactory(mode="autonomous", rules=[rule(CATASTROPHIC)])
    DoNotAutomateRuleFactory(automation=automation, value=CATASTROPHIC)

    started = time.monotonic()
    run = decided(automation, "a" * 30 + "!")
    elapsed = time.monotonic() - started

    assert elapsed < 1.0
    assert run.state == "awaiting_review"
    assert run.review_task.reason == "no rule matched"


def test_case_insensitive_patterns_keep_working():
    assert condition_matches({"body": "My LAWYER"}, "body", "matches", "(?i)lawyer|lawsuit")
    assert not condition_matches({"body": "My LAWYER"}, "body", "matches", "lawyer")


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=lawyer)", "(?<!no )lawyer", "a{1001}"])
def test_patterns_re2_cannot_run_are_refused_with_its_reason(pattern):
    with pytest.raises(PatternRefused, match="pattern refused by RE2: "):
        pattern_compile(pattern)


@pytest.fixture
def people():
    for name in ("olivia", "ravi", "rosa"):
        UserFactory(username=name, password=None)


def errors_of(document) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        load_catalog(document, source="test.yaml")
    return caught.value.errors


def test_loader_refuses_a_backreference_in_a_do_not_automate_rule(people):
    document = parse_catalog(EXAMPLE.read_text())
    document["automations"][0]["do_not_automate"][0]["matches"] = r"(a)\1"

    assert errors_of(document) == [
        "automations[0].do_not_automate[0].matches: not supported by RE2, the linear-time "
        r"engine patterns run on (no backreferences or look-around): invalid escape sequence: \1"
    ]
    assert Automation.objects.count() == 0


def test_loader_refuses_look_around_in_a_rules_provider_condition(people):
    document = parse_catalog(EXAMPLE.read_text())
    decision = document["automations"][0]["decision"]
    decision.update(provider="rules", rules=[rule("(?=.*invoice)")])

    [error] = errors_of(document)

    assert error.startswith("automations[0].decision.rules[0].when.matches: not supported by RE2")
    assert "invalid perl operator: (?=" in error


def test_loader_still_reports_where_a_broken_pattern_goes_wrong(people):
    document = parse_catalog(EXAMPLE.read_text())
    document["automations"][0]["do_not_automate"][0]["matches"] = "(lawyer"

    assert errors_of(document) == [
        "automations[0].do_not_automate[0].matches: not a valid regular expression: "
        "missing ), unterminated subpattern at position 0"
    ]


def test_loader_accepts_what_re2_runs_including_the_catastrophic_pattern(people):
    document = parse_catalog(EXAMPLE.read_text())
    document["automations"][0]["do_not_automate"][0]["matches"] = CATASTROPHIC

    load_catalog(document, source="test.yaml")

    assert Automation.objects.get().do_not_automate.get().value == CATASTROPHIC


def test_stored_rule_re2_cannot_run_sends_the_run_to_a_person():
    # Python's re would match "aa" and act on it; RE2 cannot run the rule at all.
    automation = AutomationFactory(mode="autonomous", rules=[rule(r"(a)\1")])

    run = decided(automation, "aa")

    assert run.state == "awaiting_review"
    assert run.review_task.reason == (
        r"rule 1 is malformed: pattern refused by RE2: invalid escape sequence: \1"
    )


def test_stored_do_not_automate_rule_re2_cannot_run_sends_the_run_to_a_person():
    automation = AutomationFactory(mode="autonomous", rules=[rule("invoice")])
    DoNotAutomateRuleFactory(automation=automation, name="legal threat", value="(?=.*lawyer)")

    run = decided(automation, "Where is my invoice?")

    assert run.state == "awaiting_review"
    assert 'do-not-automate rule "legal threat" could not be evaluated' in run.review_task.reason
