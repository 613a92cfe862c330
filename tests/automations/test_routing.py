import pytest

from automations.models import Verdict
from automations.routing import MODES, VERDICTS, Route, route_decide
from catalog.models import Mode

# (mode, verdict, has_decision) -> (state, review kind); every combination is listed.
TABLE = {
    ("shadow", "pass", True): ("recorded", None),
    ("shadow", "pass", False): ("recorded", None),
    ("shadow", "review", True): ("recorded", None),
    ("shadow", "review", False): ("recorded", None),
    ("shadow", "block", True): ("blocked", None),
    ("shadow", "block", False): ("blocked", None),
    ("suggest", "pass", True): ("awaiting_review", "suggest"),
    ("suggest", "pass", False): ("awaiting_review", "suggest"),
    ("suggest", "review", True): ("awaiting_review", "suggest"),
    ("suggest", "review", False): ("awaiting_review", "suggest"),
    ("suggest", "block", True): ("blocked", None),
    ("suggest", "block", False): ("blocked", None),
    ("approve", "pass", True): ("awaiting_review", "approve"),
    ("approve", "pass", False): ("awaiting_review", "approve"),
    ("approve", "review", True): ("awaiting_review", "approve"),
    ("approve", "review", False): ("awaiting_review", "approve"),
    ("approve", "block", True): ("blocked", None),
    ("approve", "block", False): ("blocked", None),
    ("autonomous", "pass", True): ("approved", None),
    ("autonomous", "pass", False): ("awaiting_review", "approve"),
    ("autonomous", "review", True): ("awaiting_review", "approve"),
    ("autonomous", "review", False): ("awaiting_review", "approve"),
    ("autonomous", "block", True): ("blocked", None),
    ("autonomous", "block", False): ("blocked", None),
}


def test_the_table_covers_every_mode_verdict_and_decision_outcome():
    assert set(TABLE) == {(m, v, d) for m in MODES for v in VERDICTS for d in (True, False)}


@pytest.mark.parametrize(("mode", "verdict", "has_decision"), sorted(TABLE))
def test_route_follows_the_table(mode, verdict, has_decision):
    route = route_decide(
        mode=mode,
        verdict=verdict,
        has_decision=has_decision,
        error="" if has_decision else "model timed out",
        reasons=[] if verdict == "pass" else ["some guardrail said so"],
    )
    assert (route.to_state, route.review_kind) == TABLE[(mode, verdict, has_decision)]
    assert route.reason


@pytest.mark.parametrize("mode", ["suggest", "approve", "autonomous"])
def test_a_missing_decision_goes_to_a_person_with_the_error_as_reason(mode):
    route = route_decide(
        mode=mode, verdict="pass", has_decision=False, error="output is not valid JSON"
    )
    assert route.to_state == "awaiting_review"
    assert route.reason == "output is not valid JSON"


def test_shadow_mode_never_acts_even_when_the_model_failed():
    route = route_decide(mode="shadow", verdict="pass", has_decision=False, error="HTTP 500")
    assert route == Route("recorded", None, "shadow mode: no decision (HTTP 500)")


def test_autonomous_review_shows_the_guardrail_reasons_to_the_reviewer():
    route = route_decide(
        mode="autonomous",
        verdict="review",
        has_decision=True,
        reasons=[
            "confidence 0.42 is below 0.70",
            'intent "refund" is high-risk: a person approves it',
        ],
    )
    assert route.reason == (
        'confidence 0.42 is below 0.70; intent "refund" is high-risk: a person approves it'
    )


def test_autonomous_with_every_guardrail_passing_is_approved():
    route = route_decide(mode="autonomous", verdict="pass", has_decision=True)
    assert route == Route("approved", None, "autonomous: every guardrail passed")


def test_a_block_names_what_blocked_it():
    route = route_decide(
        mode="autonomous",
        verdict="block",
        has_decision=True,
        reasons=["segment trial is switched off"],
    )
    assert route.reason == "segment trial is switched off"


def test_approve_mode_adds_guardrail_reasons_to_its_own():
    route = route_decide(
        mode="approve",
        verdict="review",
        has_decision=True,
        reasons=["confidence 0.42 is below 0.70"],
    )
    assert route.reason == (
        "approve mode: a person approves every action; confidence 0.42 is below 0.70"
    )


def test_unknown_mode_or_verdict_is_refused():
    with pytest.raises(ValueError, match="unknown mode"):
        route_decide(mode="yolo", verdict="pass", has_decision=True)
    with pytest.raises(ValueError, match="unknown verdict"):
        route_decide(mode="approve", verdict="maybe", has_decision=True)


def test_routing_names_the_same_modes_and_verdicts_as_the_models():
    assert set(MODES) == set(Mode.values)
    assert set(VERDICTS) == set(Verdict.values)
