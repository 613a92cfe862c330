"""The decide step: provider, guardrails and routing, recorded in one place."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from automations.models import (
    Action,
    ActionAttempt,
    DailySpend,
    ModelCall,
    ReviewTask,
    Run,
)
from automations.providers.rules import RulesProvider
from automations.services.actions import IN_FLIGHT, AttemptOutcome
from automations.services.decisions import run_advance, run_decide
from automations.services.runs import run_transition
from automations.services.spend import model_call_record
from automations.tasks import decide_run, execute_run
from catalog.models import Automation, SegmentPolicy
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


def make_run(*, mode="autonomous", body="Where is my invoice?", segment="", rules=None, **kwargs):
    automation = AutomationFactory(
        mode=mode, rules=[BILLING_RULE] if rules is None else rules, **kwargs
    )
    IntentFactory(automation=automation)
    event = EventFactory(automation=automation, segment=segment, payload={"body": body})
    return RunFactory(event=event)


def decide(run, django_capture_on_commit_callbacks):
    """Advance the run as the decide task does; sending the reserved attempt is mocked."""
    with (
        mock.patch("automations.services.decisions.attempt_send") as attempt,
        mock.patch("automations.services.decisions.action_attempt") as carry_on,
        django_capture_on_commit_callbacks(execute=True),
    ):
        run_advance(run_id=run.pk, actor="worker:test")
    run.refresh_from_db()
    attempt.carry_on = carry_on
    return attempt


def held(worker: str) -> dict:
    """The fields of a run another worker holds for the next minute."""
    return {"held_by": worker, "due_at": timezone.now() + timedelta(minutes=1)}


def assert_attempted_once(attempt, run):
    """The decision reserved the first attempt (in flight, committed) and sent it once."""
    attempt.assert_called_once()
    assert attempt.call_args.kwargs["run"].pk == run.pk
    reserved = attempt.call_args.kwargs["reserved"]
    stored = ActionAttempt.objects.get(action__run=run)
    assert (stored.pk, stored.number, stored.error) == (reserved.attempt.pk, 1, IN_FLIGHT)
    assert reserved.action.idempotency_key == Action.objects.get(run=run).idempotency_key


def test_autonomous_match_is_approved_and_attempted_at_once(django_capture_on_commit_callbacks):
    run = make_run()
    attempt = decide(run, django_capture_on_commit_callbacks)
    assert run.state == "executing"
    assert run.final_intent["arguments"] == {"team": "billing", "priority": "p2"}
    assert run.decided_by == "model"
    assert_attempted_once(attempt, run)
    assert [t.to_state for t in run.transitions.all()] == ["deciding", "executing"]
    picked = run.transitions.first()
    assert (picked.from_state, picked.actor, picked.reason) == ("received", "worker:test", "")
    assert run.model_calls.get().provider == "rules"
    assert {v["check"] for v in run.verdicts} >= {"segment_policy", "confidence"}


def test_an_autonomous_decision_leaves_its_whole_trail(django_capture_on_commit_callbacks):
    run = make_run(segment="enterprise")
    decide(run, django_capture_on_commit_callbacks)

    trail = [(t.from_state, t.to_state, t.actor, t.reason) for t in run.transitions.all()]
    assert trail == [
        ("received", "deciding", "worker:test", ""),
        ("deciding", "executing", "worker:test", "delivering the action"),
    ]
    assert (run.state, run.reason) == ("executing", "delivering the action")
    assert (run.effective_mode, run.decided_by) == ("autonomous", "model")
    assert run.final_intent == run.proposed_intent and run.final_intent["intent"] == "route_ticket"
    verdicts = [
        tuple(v[k] for k in ("check", "verdict", "reason", "details")) for v in run.verdicts
    ]
    assert verdicts == [
        ("segment_policy", "pass", "no policy for segment enterprise: mode autonomous applies",
         {"effective_mode": "autonomous"}),
        ("do_not_automate", "pass", "no do-not-automate rule matched", {}),
        ("budget", "pass", "provider rules has no model cost", {}),
        ("pii_policy", "pass", "provider rules runs locally: no redaction needed", {}),
        ("intent_risk", "pass", 'intent "route_ticket" is low-risk', {"risk": "low"}),
        ("confidence", "pass", "confidence 0.90 meets 0.70",
         {"confidence": 0.9, "min_confidence": 0.7}),
    ]  # fmt: skip
    assert run.model_calls.get().cost_usd == 0
    assert not DailySpend.objects.exists()  # the rules provider costs nothing
    action = Action.objects.get(run=run)
    assert (action.state, action.attempt_count, action.adapter) == ("pending", 1, "webhook")
    assert action.attempts.get().error == IN_FLIGHT


def test_approve_mode_waits_for_a_person(django_capture_on_commit_callbacks):
    run = make_run(mode="approve")
    attempt = decide(run, django_capture_on_commit_callbacks)
    assert run.state == "awaiting_review"
    assert run.review_task.kind == "approve"
    assert run.proposed_intent["intent"] == "route_ticket"
    attempt.assert_not_called()


def test_suggest_mode_drafts_for_a_person(django_capture_on_commit_callbacks):
    run = make_run(mode="suggest")
    decide(run, django_capture_on_commit_callbacks)
    assert run.state == "awaiting_review"
    assert run.review_task.kind == "suggest"


def test_shadow_mode_records_and_never_acts(django_capture_on_commit_callbacks):
    run = make_run(mode="shadow")
    attempt = decide(run, django_capture_on_commit_callbacks)
    assert run.state == "recorded"
    assert not ReviewTask.objects.exists()
    attempt.assert_not_called()


def test_no_rule_matched_goes_to_review(django_capture_on_commit_callbacks):
    run = make_run(body="Hello there")
    decide(run, django_capture_on_commit_callbacks)
    assert run.state == "awaiting_review"
    assert "no rule matched" in run.review_task.reason


def test_switched_off_segment_blocks_without_calling_the_model(django_capture_on_commit_callbacks):
    run = make_run(segment="trial")
    SegmentPolicyFactory(automation=run.automation, key="trial", enabled=False)
    decide(run, django_capture_on_commit_callbacks)
    assert run.state == "blocked"
    assert "switched off" in run.reason
    assert not ModelCall.objects.exists()


def test_segment_mode_override_applies(django_capture_on_commit_callbacks):
    run = make_run(segment="enterprise")
    SegmentPolicyFactory(automation=run.automation, key="enterprise", mode="approve")
    decide(run, django_capture_on_commit_callbacks)
    assert run.state == "awaiting_review"
    assert run.effective_mode == "approve"


@pytest.mark.parametrize(("effect", "state"), [("review", "awaiting_review"), ("block", "blocked")])
def test_do_not_automate_rule_is_more_cautious(effect, state, django_capture_on_commit_callbacks):
    run = make_run(body="Invoice wrong, my lawyer will call")
    DoNotAutomateRuleFactory(automation=run.automation, effect=effect)
    decide(run, django_capture_on_commit_callbacks)
    assert run.state == state
    assert "legal threat" in run.reason


def test_low_confidence_goes_to_review(django_capture_on_commit_callbacks):
    run = make_run(min_confidence=0.95)
    decide(run, django_capture_on_commit_callbacks)
    assert run.state == "awaiting_review"
    assert "below" in run.review_task.reason


def test_high_risk_intent_needs_approval_even_when_autonomous(django_capture_on_commit_callbacks):
    run = make_run()
    run.automation.intents.update(risk="high")
    decide(run, django_capture_on_commit_callbacks)
    assert run.state == "awaiting_review"
    assert "high-risk" in run.review_task.reason


def test_deciding_twice_changes_nothing(django_capture_on_commit_callbacks):
    run = make_run()
    decide(run, django_capture_on_commit_callbacks)
    again = decide(run, django_capture_on_commit_callbacks)
    again.assert_not_called()
    # The decision stands; a redelivered task carries on with the attempt instead.
    again.carry_on.assert_called_once_with(run_id=run.pk, actor="worker:test")
    assert run.transitions.count() == 2  # deciding, executing
    assert ModelCall.objects.count() == 1


def decide_with_a_change_meanwhile(run, change, django_capture_on_commit_callbacks):
    """Decide the run as decide() does, with `change()` made while the model answers."""
    answer = RulesProvider.decide

    def answer_after_the_change(provider, **kwargs):
        change()
        return answer(provider, **kwargs)

    with mock.patch.object(RulesProvider, "decide", answer_after_the_change):
        return decide(run, django_capture_on_commit_callbacks)


def test_segment_switched_off_while_the_model_answers_blocks_before_anything_is_sent(
    django_capture_on_commit_callbacks,
):
    run = make_run(segment="enterprise")
    policy = SegmentPolicyFactory(automation=run.automation, key="enterprise", enabled=True)

    attempt = decide_with_a_change_meanwhile(
        run,
        lambda: SegmentPolicy.objects.filter(pk=policy.pk).update(enabled=False),
        django_capture_on_commit_callbacks,
    )

    # The guardrails passed before the model call; the record read the switch again. The run
    # was not decided yet: the kill switch blocks it (contracts section 6).
    attempt.assert_not_called()
    assert run.state == "blocked"
    assert run.reason == "segment enterprise is switched off (while deciding)"
    assert [t.to_state for t in run.transitions.all()] == ["deciding", "blocked"]
    assert not Action.objects.filter(run=run).exists()
    assert run.model_calls.count() == 1  # the call that was made is kept


def test_automation_switched_to_shadow_while_the_model_answers_only_records(
    django_capture_on_commit_callbacks,
):
    run = make_run()

    attempt = decide_with_a_change_meanwhile(
        run,
        lambda: Automation.objects.filter(pk=run.automation_id).update(mode="shadow"),
        django_capture_on_commit_callbacks,
    )

    attempt.assert_not_called()
    assert (run.state, run.effective_mode) == ("recorded", "shadow")
    assert [t.to_state for t in run.transitions.all()] == ["deciding", "recorded"]
    assert not Action.objects.filter(run=run).exists()


def test_a_run_moved_on_while_the_model_answers_gets_nothing_written(
    django_capture_on_commit_callbacks,
):
    run = make_run()

    attempt = decide_with_a_change_meanwhile(
        run,
        lambda: Run.objects.filter(pk=run.pk).update(state="awaiting_review"),
        django_capture_on_commit_callbacks,
    )

    attempt.assert_not_called()
    assert run.state == "awaiting_review"
    assert [t.to_state for t in run.transitions.all()] == ["deciding"]
    assert not ModelCall.objects.exists() and not DailySpend.objects.exists()
    assert run.verdicts == [] and not Action.objects.filter(run=run).exists()


def test_run_another_worker_is_deciding_is_left_to_it(django_capture_on_commit_callbacks):
    run = make_run(latency_budget_ms=2000)
    run_transition(run=run, to_state="deciding", actor="worker:other", fields=held("worker:other"))

    assert run_decide(run_id=run.pk, actor="worker:test") is None

    run.refresh_from_db()
    assert (run.state, run.held_by) == ("deciding", "worker:other")
    assert ModelCall.objects.count() == 0


def test_a_decision_holds_its_run_for_every_model_attempt_and_a_margin(
    django_capture_on_commit_callbacks,
):
    run = make_run(latency_budget_ms=2000)
    seen = {}
    answer = RulesProvider.decide

    def look(provider, **kwargs):
        seen.update(Run.objects.values("state", "held_by", "due_at").get(pk=run.pk))
        return answer(provider, **kwargs)

    with mock.patch.object(RulesProvider, "decide", look):
        before = timezone.now()
        decide(run, django_capture_on_commit_callbacks)

    # The rules provider makes one attempt at the 2 s budget, plus the 10 s margin.
    assert seen["state"] == "deciding" and seen["held_by"].startswith("worker:")
    assert 11 < (seen["due_at"] - before).total_seconds() <= 13


def test_run_left_deciding_by_a_lost_worker_is_taken_over(django_capture_on_commit_callbacks):
    run = make_run(latency_budget_ms=2000)
    run_transition(run=run, to_state="deciding", actor="worker:lost", fields=held("worker:lost"))
    Run.objects.filter(pk=run.pk).update(due_at=timezone.now() - timedelta(seconds=1))

    attempt = decide(run, django_capture_on_commit_callbacks)

    assert run.state == "executing"
    assert_attempted_once(attempt, run)
    assert [t.to_state for t in run.transitions.all()] == ["deciding", "executing"]


def test_twin_decide_task_leaves_the_run_to_its_holder():
    run = make_run()
    run_transition(run=run, to_state="deciding", actor="worker:other", fields=held("worker:other"))

    with mock.patch.object(decide_run, "apply_async") as again:
        decide_run.run(run.pk)

    # No message for later: if the holder dies, the sweep hands the run on once it is due.
    again.assert_not_called()
    run.refresh_from_db()
    assert (run.state, run.held_by) == ("deciding", "worker:other")


def test_budget_spent_sends_to_review_without_calling_the_model(django_capture_on_commit_callbacks):
    run = make_run(provider="openai", model="gpt-4.1-mini", daily_budget_usd=Decimal("1.00"))
    earlier = RunFactory(event=EventFactory(automation=run.automation))
    model_call_record(
        run=earlier, automation_id=run.automation_id, provider="openai", cost_usd=Decimal("1.20")
    )
    decide(run, django_capture_on_commit_callbacks)
    assert run.state == "awaiting_review"
    assert "budget" in run.review_task.reason
    assert ModelCall.objects.filter(run=run).count() == 0


def test_gone_run_is_ignored():
    assert run_decide(run_id=987654, actor="worker:test") is None
    assert not Run.objects.exists()


def test_decide_task_hands_a_retry_of_its_attempt_to_execute_run():
    run = make_run()
    retry = AttemptOutcome("retry", countdown=7.5, detail="receiver answered 503")
    with (
        mock.patch("automations.tasks.run_advance", return_value=retry),
        mock.patch.object(execute_run, "apply_async") as later,
    ):
        decide_run.run(run.pk)

    later.assert_called_once_with(args=[run.pk], countdown=7.5)
