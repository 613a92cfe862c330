"""Local validation of a decision (contracts section 4)."""

import pytest

from automations.providers.validation import decision_validate
from tests.factories import AutomationFactory, IntentFactory

GOOD = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.92,
    "rationale": "Invoice question.",
}
REFUND_SCHEMA = {
    "type": "object",
    "properties": {
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "amount": {"type": "number"}},
                "required": ["sku", "amount"],
            },
        }
    },
    "required": ["lines"],
}


@pytest.fixture
def automation(db):
    automation = AutomationFactory()
    IntentFactory(automation=automation)
    IntentFactory(automation=automation, name="refund", position=1, arguments_schema=REFUND_SCHEMA)
    return automation


def validate(automation, data):
    return decision_validate(automation=automation, data=data)


def test_valid_decision_passes_unchanged(automation):
    assert validate(automation, GOOD) == (GOOD, "")


def test_missing_rationale_becomes_empty_and_integer_confidence_a_float(automation):
    data = {"intent": "route_ticket", "arguments": GOOD["arguments"], "confidence": 1}

    decision, error = validate(automation, data)

    assert error == ""
    assert decision["rationale"] == ""
    assert decision["confidence"] == 1.0
    assert isinstance(decision["confidence"], float)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ([GOOD], "model output is not a JSON object"),
        ("route_ticket", "model output is not a JSON object"),
        ({"intent": "route_ticket"}, 'model output is missing "arguments", "confidence"'),
        (
            {**GOOD, "team": "billing", "extra": 1},
            'model output has unexpected keys "extra", "team"',
        ),
        ({**GOOD, "intent": "escalate"}, 'unknown intent "escalate"'),
        ({**GOOD, "intent": ["route_ticket"]}, "intent is not a string"),
        ({**GOOD, "arguments": ["billing"]}, "arguments is not a JSON object"),
        (
            {**GOOD, "arguments": {"team": "marketing", "priority": "p2"}},
            "arguments.team: 'marketing' is not one of ['billing', 'technical', 'sales']",
        ),
        (
            {**GOOD, "arguments": {"team": "billing"}},
            "arguments: 'priority' is a required property",
        ),
        ({**GOOD, "confidence": 1.7}, "confidence 1.7 is outside [0, 1]"),
        ({**GOOD, "confidence": -0.1}, "confidence -0.1 is outside [0, 1]"),
        ({**GOOD, "confidence": float("nan")}, "confidence nan is outside [0, 1]"),
        ({**GOOD, "confidence": True}, "confidence is not a number"),
        ({**GOOD, "confidence": "0.9"}, "confidence is not a number"),
        ({**GOOD, "rationale": ["why"]}, "rationale is not a string"),
    ],
)
def test_invalid_decision_is_refused_with_a_readable_reason(automation, data, error):
    assert validate(automation, data) == (None, error)


def test_nested_argument_error_names_its_path(automation):
    data = {**GOOD, "intent": "refund", "arguments": {"lines": [{"sku": "A1", "amount": "ten"}]}}

    assert validate(automation, data) == (
        None,
        "arguments.lines[0].amount: 'ten' is not of type 'number'",
    )


def test_boundary_confidences_are_valid(automation):
    assert validate(automation, {**GOOD, "confidence": 0})[1] == ""
    assert validate(automation, {**GOOD, "confidence": 1.0})[1] == ""


def test_invalid_arguments_schema_is_reported_not_raised(db):
    automation = AutomationFactory()
    IntentFactory(automation=automation, arguments_schema={"type": "no-such-type"})

    decision, error = validate(automation, GOOD)

    assert decision is None
    assert error.startswith("the intent's arguments schema is invalid: ")


def test_prefetched_intents_need_no_query(automation, django_assert_num_queries):
    intents = list(automation.intents.all())

    with django_assert_num_queries(0):
        assert decision_validate(automation=automation, data=GOOD, intents=intents)[1] == ""
