"""The actions service: one signed delivery attempt at a time, retried, halted, compensated."""

import os
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from automations.adapters import adapter_for
from automations.models import Action, ActionAttempt, Run
from automations.services import actions
from automations.services.actions import (
    IN_FLIGHT,
    LOST,
    action_attempt,
    action_compensate,
    attempt_first,
    intent_for,
    retry_countdown,
)
from automations.states import IllegalTransition
from catalog.policy import policy_now
from tests.factories import (
    AutomationFactory,
    EventFactory,
    IntentFactory,
    ReviewTaskFactory,
    RunFactory,
    SegmentPolicyFactory,
    UserFactory,
)
from tests.support.webhook_receiver import WebhookReceiver, new_webhook_secret, verify

SECRET_ENV = "TEST_WEBHOOK_SECRET"
ACTOR = "worker:test"
FINAL_INTENT = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.92,
    "rationale": "Invoice question.",
}
CONTRACT_FIELDS = {
    "run_id",
    "automation",
    "segment",
    "intent",
    "arguments",
    "trace_id",
    "idempotency_key",
    "decided_by",
    "reviewer",
}


@pytest.fixture
def receiver():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def secret(monkeypatch):
    value = new_webhook_secret()
    monkeypatch.setenv(SECRET_ENV, value)
    return value


def approved_run(receiver, *, segment="", mode="approve", decided_by="model", **config):
    automation = AutomationFactory(mode=mode)
    IntentFactory(
        automation=automation,
        action_config={"url": receiver.url("/hooks/route"), "secret_env": SECRET_ENV, **config},
    )
    event = EventFactory(automation=automation, segment=segment)
    return RunFactory(
        event=event, state="approved", final_intent=dict(FINAL_INTENT), decided_by=decided_by
    )


def attempt(run):
    """One execute task, arriving once the run is due (as a retry's message does)."""
    Run.objects.filter(pk=run.pk, held_by="").update(due_at=timezone.now())
    outcome = action_attempt(run_id=run.pk, actor=ACTOR)
    run.refresh_from_db()
    return outcome


def transitions(run):
    return [(t.from_state, t.to_state) for t in run.transitions.all()]


@pytest.mark.django_db
class TestDelivery:
    def test_approved_run_is_delivered_signed_with_exactly_the_contract_body(
        self, receiver, secret
    ):
        run = approved_run(receiver, segment="enterprise")

        outcome = attempt(run)

        assert outcome.kind == "done"
        [received] = receiver.wait_for(1)
        body = verify(received, secret)
        action = Action.objects.get(run=run)
        assert set(body) == CONTRACT_FIELDS
        assert body == {
            "run_id": str(run.pk),
            "automation": run.automation.slug,
            "segment": "enterprise",
            "intent": "route_ticket",
            "arguments": {"team": "billing", "priority": "p2"},
            "trace_id": run.trace_id,
            "idempotency_key": action.idempotency_key,
            "decided_by": "model",
            "reviewer": None,
        }
        assert received.headers["webhook-id"] == action.idempotency_key
        assert received.headers["idempotency-key"] == action.idempotency_key
        assert received.headers["traceparent"].split("-")[1] == run.trace_id

    def test_success_executes_the_run_and_records_the_attempt(self, receiver, secret):
        run = approved_run(receiver)
        Run.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(hours=1))
        receiver.enqueue(201, body='{"ticket": "T-1"}')

        attempt(run)

        assert run.state == "executed"
        assert abs(run.updated_at - run.transitions.last().at) < timedelta(seconds=1)
        assert transitions(run) == [("approved", "executing"), ("executing", "executed")]
        assert {t.actor for t in run.transitions.all()} == {ACTOR}
        action = Action.objects.get(run=run)
        assert (action.state, action.attempt_count, action.adapter) == ("succeeded", 1, "webhook")
        assert action.completed_at is not None
        [recorded] = action.attempts.all()
        assert (recorded.number, recorded.status_code, recorded.error) == (1, 201, "")
        assert recorded.response_excerpt == '{"ticket": "T-1"}'

    def test_reviewer_decision_names_the_reviewer(self, receiver, secret):
        run = approved_run(receiver, decided_by="reviewer")
        ReviewTaskFactory(run=run, state="done", decided_by=UserFactory(username="rosa"))

        attempt(run)

        body = verify(receiver.wait_for(1)[0], secret)
        assert (body["decided_by"], body["reviewer"]) == ("reviewer", "rosa")

    def test_attempt_after_success_sends_nothing(self, receiver, secret):
        run = approved_run(receiver)
        attempt(run)

        outcome = attempt(run)

        assert outcome.kind == "skip"
        assert len(receiver.deliveries) == 1
        assert ActionAttempt.objects.filter(action__run=run).count() == 1

    @pytest.mark.parametrize("state", ["awaiting_review", "rejected", "blocked", "recorded"])
    def test_runs_that_were_not_approved_are_never_delivered(self, receiver, secret, state):
        run = approved_run(receiver)
        Run.objects.filter(pk=run.pk).update(state=state)

        assert attempt(run).kind == "skip"
        assert receiver.deliveries == []
        assert not Action.objects.filter(run=run).exists()

    def test_gone_run_is_skipped_quietly(self, db):
        assert action_attempt(run_id=987654, actor=ACTOR).kind == "skip"


@pytest.mark.django_db
class TestRetries:
    def test_retry_reuses_the_key_with_a_fresh_timestamp(self, receiver, secret):
        run = approved_run(receiver)
        receiver.enqueue(503)

        first = attempt(run)
        state_between = run.state
        time.sleep(1.05)  # timestamps are whole seconds
        second = attempt(run)

        assert first.kind == "retry" and first.countdown > 0
        assert first.detail == "receiver answered 503"
        assert state_between == "executing"
        assert second.kind == "done" and run.state == "executed"
        one, two = receiver.wait_for(2)
        assert one.headers["webhook-id"] == two.headers["webhook-id"]
        assert one.headers["idempotency-key"] == two.headers["idempotency-key"]
        assert int(two.headers["webhook-timestamp"]) > int(one.headers["webhook-timestamp"])
        assert verify(one, secret) == verify(two, secret)
        numbers = list(
            ActionAttempt.objects.filter(action__run=run).values_list("number", "status_code")
        )
        assert numbers == [(1, 503), (2, 200)]

    def test_run_stays_executing_between_retries(self, receiver, secret):
        run = approved_run(receiver)
        receiver.enqueue(429)
        before = timezone.now()

        outcome = attempt(run)

        assert outcome.kind == "retry"
        assert run.state == "executing"
        # Nobody holds it while it waits; the sweep would hand it on once the retry is due.
        assert run.held_by == ""
        assert abs((run.due_at - before).total_seconds() - outcome.countdown) < 1
        action = Action.objects.get(run=run)
        assert (action.state, action.last_error) == ("pending", "receiver answered 429")

    def test_a_retry_message_that_comes_early_sends_nothing(self, receiver, secret):
        run = approved_run(receiver)
        receiver.enqueue(503)
        attempt(run)
        Run.objects.filter(pk=run.pk).update(due_at=timezone.now() + timedelta(minutes=5))

        outcome = action_attempt(run_id=run.pk, actor=ACTOR)

        assert outcome.kind == "skip" and "due at" in outcome.detail
        assert len(receiver.deliveries) == 1

    @pytest.mark.parametrize("status", [400, 404, 410, 422])
    def test_permanent_client_error_fails_the_run_at_once(self, receiver, secret, status):
        run = approved_run(receiver)
        receiver.enqueue(status)

        outcome = attempt(run)

        assert outcome.kind == "failed"
        assert run.state == "failed"
        assert run.reason == f"receiver answered {status}"
        action = Action.objects.get(run=run)
        assert (action.state, action.attempt_count) == ("failed", 1)
        assert len(receiver.deliveries) == 1

    @pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 503])
    def test_transient_answers_are_retried(self, receiver, secret, status):
        run = approved_run(receiver)
        receiver.enqueue(status)

        assert attempt(run).kind == "retry"
        assert attempt(run).kind == "done"
        assert len(receiver.deliveries) == 2

    def test_timeout_is_retried_and_recorded(self, receiver, secret):
        run = approved_run(receiver, timeout_seconds=0.3)
        receiver.enqueue(200, delay=2)

        outcome = attempt(run)

        assert outcome.kind == "retry"
        [recorded] = ActionAttempt.objects.filter(action__run=run)
        assert recorded.error == "timed out after 0.3 s"
        assert recorded.retryable and recorded.status_code is None
        assert recorded.duration_ms >= 250

    def test_exhausted_attempts_fail_the_run_with_every_attempt_recorded(self, receiver, secret):
        run = approved_run(receiver, max_attempts=3)
        for _ in range(3):
            receiver.enqueue(500)

        kinds = [attempt(run).kind for _ in range(3)]

        assert kinds == ["retry", "retry", "failed"]
        assert run.state == "failed"
        assert run.reason == "gave up after 3 attempts: receiver answered 500"
        recorded = ActionAttempt.objects.filter(action__run=run)
        assert [(a.number, a.status_code, a.retryable) for a in recorded] == [
            (1, 500, True),
            (2, 500, True),
            (3, 500, True),
        ]
        assert Action.objects.get(run=run).attempt_count == 3
        assert attempt(run).kind == "skip"
        assert len(receiver.deliveries) == 3

    def test_default_limit_is_six_attempts(self, receiver, secret):
        run = approved_run(receiver)
        for _ in range(10):
            receiver.enqueue(502)

        kinds = [attempt(run).kind for _ in range(7)]

        assert kinds == ["retry"] * 5 + ["failed", "skip"]
        assert len(receiver.deliveries) == 6

    def test_missing_secret_fails_permanently_without_sending(self, receiver, monkeypatch):
        monkeypatch.delenv(SECRET_ENV, raising=False)
        run = approved_run(receiver)

        outcome = attempt(run)

        assert outcome.kind == "failed"
        assert run.state == "failed"
        assert SECRET_ENV in run.reason and "not set" in run.reason
        assert receiver.deliveries == []

    def test_intent_removed_after_approval_fails_without_sending(self, receiver, secret):
        run = approved_run(receiver)
        run.automation.intents.all().delete()

        outcome = attempt(run)

        assert outcome.kind == "failed"
        assert run.reason == "intent route_ticket no longer exists"
        assert receiver.deliveries == []


def test_backoff_grows_is_capped_and_never_zero():
    first = [retry_countdown(1) for _ in range(200)]
    fifth = [retry_countdown(5) for _ in range(200)]
    late = [retry_countdown(40) for _ in range(200)]

    assert all(1 <= c <= 4 for c in first)
    assert all(1 <= c <= 64 for c in fifth) and max(fifth) > 4
    assert all(1 <= c <= 900 for c in late) and max(late) > 64
    assert len(set(fifth)) > 100  # jittered, so retries spread out


@pytest.mark.django_db
class TestKillSwitch:
    def test_segment_switched_off_after_approval_halts_without_sending(self, receiver, secret):
        run = approved_run(receiver, segment="enterprise")
        policy = SegmentPolicyFactory(automation=run.automation, key="enterprise")
        policy.enabled = False
        policy.save()

        outcome = attempt(run)

        assert outcome.kind == "halted"
        assert run.state == "halted"
        assert run.reason == "segment enterprise switched off after approval"
        assert not Action.objects.filter(run=run).exists()  # nothing was ever attempted
        assert receiver.deliveries == []
        assert not ActionAttempt.objects.filter(action__run=run).exists()

    def test_automation_switched_to_shadow_halts_without_sending(self, receiver, secret):
        run = approved_run(receiver)
        run.automation.mode = "shadow"
        run.automation.save()

        outcome = attempt(run)

        assert outcome.kind == "halted"
        assert run.state == "halted"
        assert "shadow" in run.reason
        assert receiver.deliveries == []

    def test_segment_mode_switched_to_shadow_halts_without_sending(self, receiver, secret):
        run = approved_run(receiver, segment="smb")
        SegmentPolicyFactory(automation=run.automation, key="smb", mode="shadow")

        assert attempt(run).kind == "halted"
        assert run.reason == "segment smb switched to shadow mode after approval"
        assert receiver.deliveries == []

    def test_other_segments_keep_running(self, receiver, secret):
        run = approved_run(receiver, segment="smb")
        SegmentPolicyFactory(automation=run.automation, key="enterprise", enabled=False)

        assert attempt(run).kind == "done"
        assert len(receiver.deliveries) == 1

    def test_switch_flipped_between_retries_halts_the_next_attempt(self, receiver, secret):
        run = approved_run(receiver, segment="enterprise")
        policy = SegmentPolicyFactory(automation=run.automation, key="enterprise")
        receiver.enqueue(503)
        assert attempt(run).kind == "retry"

        policy.enabled = False
        policy.save()
        outcome = attempt(run)

        assert outcome.kind == "halted"
        assert transitions(run)[-1] == ("executing", "halted")
        assert len(receiver.deliveries) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("automation_mode", "policy", "block"),
    [
        ("approve", None, ""),
        ("autonomous", None, ""),
        ("shadow", None, "the automation switched to shadow mode after approval"),
        ("suggest", None, "the automation switched to suggest mode after approval"),
        ("autonomous", {"key": "smb", "enabled": True, "mode": ""}, ""),
        ("shadow", {"key": "smb", "enabled": True, "mode": "autonomous"}, ""),
        (
            "autonomous",
            {"key": "smb", "enabled": True, "mode": "suggest"},
            "segment smb switched to suggest mode after approval",
        ),
        (
            "autonomous",
            {"key": "smb", "enabled": False, "mode": "autonomous"},
            "segment smb switched off after approval",
        ),
        ("autonomous", {"key": "enterprise", "enabled": False, "mode": ""}, ""),
    ],
)
def test_the_kill_switch_rule_reads_segment_then_automation(
    receiver, automation_mode, policy, block
):
    run = approved_run(receiver, segment="smb", mode=automation_mode)
    if policy:
        SegmentPolicyFactory(automation=run.automation, **policy)

    why_not = policy_now(automation_id=run.automation_id, segment=run.segment).why_not()
    assert (f"{why_not} after approval" if why_not else "") == block


@pytest.mark.django_db
class TestInFlight:
    def test_a_first_attempt_is_reserved_in_flight_before_anything_is_sent(self, receiver, secret):
        run = approved_run(receiver)
        intent = intent_for(run)

        with transaction.atomic():
            reserved = attempt_first(
                run=run, intent=intent, adapter=adapter_for("webhook"), actor=ACTOR
            )

        run.refresh_from_db()
        assert (run.state, run.reason) == ("executing", "delivering the action")
        assert run.held_by.startswith("worker:") and run.due_at > timezone.now()
        assert transitions(run)[-1] == ("approved", "executing")
        assert run.transitions.last().actor == ACTOR
        action = Action.objects.get(run=run)
        assert action.pk == reserved.action.pk and reserved.attempt.action_id == action.pk
        assert (action.state, action.attempt_count, action.adapter) == ("pending", 1, "webhook")
        assert action.idempotency_key == reserved.action.idempotency_key
        assert action.idempotency_key.startswith("act_")
        [stored] = action.attempts.all()
        assert stored.pk == reserved.attempt.pk
        assert (stored.number, stored.status_code, stored.error) == (1, None, IN_FLIGHT)
        assert receiver.deliveries == []

    def test_a_reservation_for_a_run_that_moved_on_writes_nothing(self, receiver, secret):
        run = approved_run(receiver)
        Run.objects.filter(pk=run.pk).update(state="halted")  # after this worker read it
        before = transitions(run)

        with pytest.raises(IllegalTransition), transaction.atomic():
            attempt_first(
                run=run, intent=intent_for(run), adapter=adapter_for("webhook"), actor=ACTOR
            )

        assert not Action.objects.filter(run=run).exists()
        assert not ActionAttempt.objects.filter(action__run=run).exists()
        assert transitions(run) == before
        assert Run.objects.get(pk=run.pk).state == "halted"

    def test_a_run_another_worker_is_sending_is_left_to_it(self, receiver, secret):
        run = approved_run(receiver)
        receiver.enqueue(503)
        attempt(run)
        Run.objects.filter(pk=run.pk).update(
            held_by="worker:other", due_at=timezone.now() + timedelta(seconds=20)
        )

        outcome = action_attempt(run_id=run.pk, actor=ACTOR)

        assert (outcome.kind, outcome.detail) == ("skip", "another worker is sending it")
        assert len(receiver.deliveries) == 1

    def test_attempt_lost_with_its_worker_is_taken_over(self, receiver, secret):
        run = approved_run(receiver)
        receiver.enqueue(503)
        attempt(run)
        action = Action.objects.get(run=run)
        ActionAttempt.objects.create(
            action=action, number=2, started_at=timezone.now(), error=IN_FLIGHT
        )
        Action.objects.filter(pk=action.pk).update(attempt_count=2)
        Run.objects.filter(pk=run.pk).update(
            held_by="worker:lost", due_at=timezone.now() - timedelta(seconds=1)
        )

        outcome = action_attempt(run_id=run.pk, actor=ACTOR)

        assert outcome.kind == "done"
        recorded = ActionAttempt.objects.filter(action=action)
        assert [(a.number, a.error) for a in recorded] == [
            (1, "receiver answered 503"),
            (2, LOST),
            (3, ""),
        ]


@pytest.fixture
def database_lost_once(monkeypatch):
    """Recording the first answer fails at COMMIT, PostgreSQL gone; the next try works."""
    record = actions.attempt_record
    failures = []

    def flaky(**kwargs):
        if len(failures) < 1:
            failures.append(kwargs["reserved"].attempt.number)
            kwargs["run"].state = "executed"  # moved in memory by the statements rolled back
            raise OperationalError("server closed the connection unexpectedly")
        return record(**kwargs)

    monkeypatch.setattr(actions, "attempt_record", flaky)
    monkeypatch.setattr(actions, "RECORD_RETRY_SECONDS", 0)
    return failures


@pytest.mark.django_db
class TestDatabaseLostWhileSending:
    def test_the_answer_is_recorded_once_the_database_is_back(
        self, receiver, secret, database_lost_once
    ):
        run = approved_run(receiver)

        outcome = attempt(run)

        # Not left in flight for the sweep, whose worker would send it again.
        assert database_lost_once == [1]
        assert (outcome.kind, run.state) == ("done", "executed")
        recorded = ActionAttempt.objects.filter(action__run=run)
        assert list(recorded.values_list("number", "status_code", "error")) == [(1, 200, "")]
        assert len(receiver.deliveries) == 1

    def test_past_its_patience_the_worker_leaves_the_attempt_to_the_sweep(
        self, receiver, secret, database_lost_once, monkeypatch
    ):
        monkeypatch.setattr(actions, "RECORD_PATIENCE_SECONDS", 0)  # over at the first failure
        run = approved_run(receiver)

        with pytest.raises(OperationalError):
            attempt(run)

        recorded = ActionAttempt.objects.filter(action__run=run)
        assert list(recorded.values_list("number", "error")) == [(1, IN_FLIGHT)]


@pytest.mark.django_db
class TestCompensation:
    def test_failed_run_is_compensated_at_the_compensation_url(self, receiver, secret):
        run = approved_run(receiver, compensation_url=receiver.url("/hooks/undo"))
        receiver.enqueue(404)
        attempt(run)

        outcome = action_compensate(run_id=run.pk, actor=ACTOR)
        run.refresh_from_db()

        assert outcome.kind == "done"
        assert run.state == "compensated"
        assert Action.objects.get(run=run).state == "compensated"
        _, undo = receiver.wait_for(2)
        key = Action.objects.get(run=run).idempotency_key
        assert undo.path == "/hooks/undo"
        assert undo.headers["webhook-id"] == f"{key}:compensate"
        assert undo.headers["idempotency-key"] == f"{key}:compensate"
        body = verify(undo, secret)
        assert (body["run_id"], body["idempotency_key"]) == (str(run.pk), key)

    def test_a_failed_delivery_is_compensated_once_the_failure_commits(
        self, receiver, secret, django_capture_on_commit_callbacks
    ):
        run = approved_run(receiver, compensation_url=receiver.url("/hooks/undo"), max_attempts=2)
        receiver.enqueue(503)
        receiver.enqueue(504)
        attempt(run)

        with django_capture_on_commit_callbacks(execute=True):
            outcome = attempt(run)

        assert outcome.kind == "failed"
        run.refresh_from_db()
        assert [to for _, to in transitions(run)][-2:] == ["failed", "compensated"]
        route, again, undo = receiver.wait_for(3)
        assert [d.path for d in (route, again, undo)] == ["/hooks/route"] * 2 + ["/hooks/undo"]

    def test_a_run_failed_before_any_attempt_is_not_compensated(
        self, receiver, secret, django_capture_on_commit_callbacks
    ):
        run = approved_run(receiver, compensation_url=receiver.url("/hooks/undo"))
        run.automation.intents.all().delete()

        with django_capture_on_commit_callbacks(execute=True):
            assert attempt(run).kind == "failed"

        assert Run.objects.get(pk=run.pk).state == "failed"
        assert receiver.deliveries == []

    def test_executed_run_can_be_compensated(self, receiver, secret):
        run = approved_run(receiver, compensation_url=receiver.url("/hooks/undo"))
        attempt(run)

        assert action_compensate(run_id=run.pk, actor=ACTOR).kind == "done"
        run.refresh_from_db()
        assert transitions(run)[-1] == ("executed", "compensated")

    def test_without_compensation_url_nothing_changes(self, receiver, secret):
        run = approved_run(receiver)
        receiver.enqueue(404)
        attempt(run)

        outcome = action_compensate(run_id=run.pk, actor=ACTOR)
        run.refresh_from_db()

        assert outcome.kind == "skip"
        assert run.state == "failed"
        assert len(receiver.deliveries) == 1

    def test_failed_compensation_leaves_the_run_failed(self, receiver, secret):
        run = approved_run(receiver, compensation_url=receiver.url("/hooks/undo"))
        receiver.enqueue(404)
        receiver.enqueue(400)
        attempt(run)

        outcome = action_compensate(run_id=run.pk, actor=ACTOR)
        run.refresh_from_db()

        assert outcome.kind == "failed"
        assert run.state == "failed"
        assert Action.objects.get(run=run).last_error == "compensation: receiver answered 400"

    def test_runs_still_running_are_not_compensated(self, receiver, secret):
        run = approved_run(receiver, compensation_url=receiver.url("/hooks/undo"))

        assert action_compensate(run_id=run.pk, actor=ACTOR).kind == "skip"
        assert receiver.deliveries == []


on_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL (DATABASE_URL)",
)


@pytest.mark.postgres
@on_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("delay", [0, 0.3])
def test_concurrent_attempts_on_one_run_deliver_once(receiver, secret, delay):
    run = approved_run(receiver)
    receiver.enqueue(200, delay=delay)
    start = threading.Barrier(2)
    outcomes = []

    def worker():
        try:
            start.wait()
            outcomes.append(action_attempt(run_id=run.pk, actor=ACTOR).kind)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    time.sleep(0.2)  # a second delivery, if any, would have arrived by now
    assert len(receiver.deliveries) == 1
    assert "done" in outcomes and len(outcomes) == 2
    run.refresh_from_db()
    assert run.state == "executed"
    assert ActionAttempt.objects.filter(action__run=run).count() == 1
