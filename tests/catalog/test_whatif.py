"""The what-if preview's figures against ones worked out by hand (tests/catalog/whatif_support.py).

The same assertions run on SQLite and on PostgreSQL (DATABASE_URL): the
figures must not depend on the database.
"""

import pytest

from automations.matching import condition_matches, event_document
from automations.models import Event
from catalog.governance.event_sql import FieldRefused, events_matching, field_parts
from catalog.governance.whatif import Proposal, RuleProposal, whatif_preview
from catalog.governance.whatif_form import WhatIfForm
from tests.catalog.whatif_support import whatif_world

pytestmark = pytest.mark.django_db

# The current settings, worked out by hand in whatif_support's docstring.
CURRENT = {
    "person": 5,
    "acts": 4,
    "recorded": 0,
    "blocked": 1,
    "caught": 3,
    "let_through": 1,
    "stopped": 0,
}
ALL_RUNS = {f"r{n}" for n in range(1, 13)}


@pytest.fixture
def world():
    return whatif_world()


def side(figures) -> dict:
    return {name: getattr(figures, name) for name in CURRENT}


def preview(world, **proposal):
    return whatif_preview(automation=world["automation"], proposal=Proposal(**proposal))


def rule(field="payload.body", operator="matches", value="(?i)lawyer|lawsuit", effect="review"):
    return RuleProposal(field=field, operator=operator, value=value, effect=effect)


def test_no_change_judges_the_window_s_decided_runs_under_the_current_settings(world):
    result = preview(world)

    assert (result.runs, result.corrected) == (10, 4)
    assert side(result.before) == CURRENT
    assert side(result.after) == CURRENT
    assert result.changed == []


def test_raising_the_threshold_sends_more_runs_to_a_person_and_catches_the_let_through_case(world):
    result = preview(world, min_confidence=0.8)

    # r8 (0.72) and r12 (0.75) fall below 0.8; r2 (exactly 0.80) still acts.
    assert side(result.after) == {**CURRENT, "person": 7, "acts": 2, "caught": 4, "let_through": 0}
    assert side(result.before) == CURRENT
    assert (result.change("person"), result.change("acts"), result.change("caught")) == (2, -2, 1)
    assert result.changed == [("acts", "person", 2)]


def test_lowering_the_threshold_lets_corrected_cases_through(world):
    result = preview(world, min_confidence=0.6)

    # r3 (0.65) and r4 (exactly 0.60) now act; r5 still waits (intent risk), r6 and r7 are
    # enterprise runs on approve.
    assert side(result.after) == {**CURRENT, "person": 3, "acts": 6, "caught": 2, "let_through": 2}
    assert result.changed == [("person", "acts", 2)]


def test_switching_a_segment_to_approve_sends_its_runs_to_a_person(world):
    result = preview(world, mode="approve", segment="trial")

    assert side(result.after) == {**CURRENT, "person": 6, "acts": 3}
    assert result.changed == [("acts", "person", 1)]


def test_a_segment_without_a_policy_follows_the_proposed_mode_only_for_its_own_runs(world):
    result = preview(world, mode="approve", segment="smb")

    assert side(result.after) == CURRENT


def test_shadow_for_the_automation_records_everything_but_the_segments_own_modes(world):
    result = preview(world, mode="shadow")

    # enterprise keeps approve (r6, r7); r9 stays blocked; the rest are only recorded.
    assert side(result.after) == {
        "person": 2,
        "acts": 0,
        "recorded": 7,
        "blocked": 1,
        "caught": 1,
        "let_through": 0,
        "stopped": 3,
    }


def test_a_review_rule_sends_the_runs_it_matches_to_a_person(world):
    result = preview(world, rule=rule())

    # It matches r4, r7, r8 and r12 ("lawyers everywhere"); r4 and r7 went to a person already.
    assert side(result.after) == {**CURRENT, "person": 7, "acts": 2, "caught": 4, "let_through": 0}


def test_a_block_rule_blocks_the_runs_it_matches(world):
    result = preview(world, rule=rule(effect="block"))

    assert side(result.after) == {
        "person": 3,
        "acts": 2,
        "recorded": 0,
        "blocked": 5,
        "caught": 1,
        "let_through": 0,
        "stopped": 3,
    }


def test_a_rule_and_a_threshold_together(world):
    result = preview(world, rule=rule(value="(?i)invoice", effect="block"), min_confidence=0.5)

    # Blocks r1 and r2 (r9 was blocked already); at 0.5 nothing else waits but r5, r6, r7.
    assert side(result.after) == {
        "person": 3,
        "acts": 4,
        "recorded": 0,
        "blocked": 3,
        "caught": 2,
        "let_through": 2,
        "stopped": 0,
    }


@pytest.mark.parametrize(
    ("field", "operator", "value", "matched"),
    [
        # Case-sensitive substring: "invoice" is in r1 and r9 only, "Invoice" in r2 only.
        ("payload.body", "contains", "invoice", {"r1", "r9"}),
        ("payload.body", "contains", "Invoice", {"r2"}),
        ("payload.body", "equals", "Invoice overdue", {"r2"}),
        ("payload.body", "equals", "invoice overdue", set()),
        ("payload.body", "matches", "(?i)lawyer|lawsuit", {"r4", "r7", "r8", "r12"}),
        # Word boundaries: "lawyer" alone, in any case, not "lawyers".
        ("payload.body", "matches", r"(?i)\blawyer\b", {"r4", "r8"}),
        ("payload.body", "matches", r"^[A-Z]+\b", {"r8"}),
        ("payload.body", "matches", r"[\]b]", set()),
        # A list's member (r1's tags), or a substring of a text (r5's tags are "vip").
        ("payload.tags", "contains", "vip", {"r1", "r5"}),
        ("payload.tags", "contains", "bill", set()),
        # Only a list's own members: not one nested deeper (r2), nor an object's values.
        ("payload.meta", "contains", "vip", set()),
        ("payload.tags", "equals", "vip", {"r5"}),
        # A number is not the text that spells it.
        ("payload.priority", "equals", "1", set()),
        ("payload.missing", "contains", "", set()),
        ("segment", "equals", "trial", {"r8"}),
        ("source", "contains", "", ALL_RUNS),
    ],
)
def test_rule_conditions_match_the_events_the_guardrail_matches(
    world, field, operator, value, matched
):
    events = Event.objects.filter(automation=world["automation"])
    by_event = {run.event_id: name for name, run in world["runs"].items()}

    found = events_matching(events=events, field=field, operator=operator, value=value)

    assert {by_event[event.pk] for event in found} == matched
    # What the do-not-automate guardrail itself decides, event by event.
    assert {
        by_event[event.pk]
        for event in events
        if condition_matches(event_document(event), field, operator, value)
    } == matched


@pytest.mark.parametrize("field", ["payload", "body", "payload.items.0", "payload..body"])
def test_fields_the_preview_cannot_read_are_refused(field):
    with pytest.raises(FieldRefused):
        field_parts(field)


def test_a_rule_on_the_segment_reaches_only_that_segment_s_runs(world):
    result = preview(world, rule=rule(field="segment", operator="equals", value="trial"))

    assert result.changed == [("acts", "person", 1)]


def test_only_runs_of_the_last_30_days_with_a_proposed_intent_are_judged(world):
    result = preview(world, min_confidence=0.99)

    assert result.runs == 10
    assert result.after.person == 9  # every one but the blocked r9


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"min_confidence": "1.5"}, "min_confidence", "less than or equal to 1.0"),
        ({"min_confidence": "nan"}, "min_confidence", "Enter a number"),
        ({"mode": "yolo"}, "mode", "not one of the available choices"),
        ({"segment": "trial"}, "mode", "choose the mode to preview for segment trial"),
        ({"mode": "approve", "segment": "Not A Slug"}, "segment", "lowercase letters"),
        ({"rule_field": "payload.body"}, "rule_operator", "a rule needs a field"),
        (
            {"rule_field": "body", "rule_operator": "equals", "rule_value": "x"},
            "rule_field",
            "must be segment, source, idempotency_key or a path into the payload",
        ),
        (
            {"rule_field": "payload.body", "rule_operator": "matches", "rule_value": "(a)\\1"},
            "rule_value",
            "not supported by RE2",
        ),
        # RE2 takes a flag group anywhere; neither PostgreSQL's engine nor Python's does.
        (
            {"rule_field": "payload.body", "rule_operator": "matches", "rule_value": "a(?i)b"},
            "rule_value",
            "the database cannot run this pattern",
        ),
        ({"rule_field": "payload.body", "rule_value": "a\x00b"}, "rule_value", "Null characters"),
    ],
)
def test_what_cannot_be_previewed_is_refused_with_the_field_and_why(db, params, field, message):
    params = {"rule_effect": "review", **params} if "rule_field" in params else params

    form = WhatIfForm(params)

    assert not form.is_valid()
    assert any(message in error for error in form.errors[field]), form.errors


def test_a_refused_pattern_leaves_the_connection_usable(world):
    form = WhatIfForm(
        {
            "rule_field": "payload.body",
            "rule_operator": "matches",
            "rule_value": "a(?i)b",
            "rule_effect": "review",
        }
    )

    assert not form.is_valid()
    assert preview(world).runs == 10
