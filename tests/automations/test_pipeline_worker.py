"""The decision pipeline through a real Celery worker on Redis and PostgreSQL.

Events enter through the HTTP API in this process; the decision (the openai
provider against the scripted model server) and the signed webhook action run
in the worker process. Both servers are real HTTP servers on 127.0.0.1.
Skipped without REDIS_URL and a PostgreSQL DATABASE_URL.
"""

import json
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone

from automations.models import (
    Action,
    ActionAttempt,
    ActionState,
    ModelCall,
    Run,
    RunTransition,
)
from automations.services.actions import LOST
from automations.services.decisions import run_decide
from automations.services.ingestion import event_ingest
from automations.services.runs import run_transition
from automations.tasks import decide_run, execute_run
from catalog.governance.changes import switch_set
from catalog.models import SegmentPolicy
from catalog.tokens import token_issue
from tests.factories import AutomationFactory, IntentFactory, SegmentPolicyFactory
from tests.support.api_client import event_body, post_event
from tests.support.celery_worker import TEST_WEBHOOK_SECRET_ENV
from tests.support.model_server import ModelServer, completion
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import Answer, WebhookReceiver, verify

pytestmark = pytest.mark.worker

SLUG = "support-triage"
DECISION = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.93,
    "rationale": "Invoice question.",
}
# Each path of a run through the pipeline, as recorded transitions.
EXECUTED_PATH = [
    ("", "received"),
    ("received", "deciding"),
    ("deciding", "executing"),
    ("executing", "executed"),
]
# A run a reviewer approved takes one more step.
APPROVED_PATH = [
    ("", "received"),
    ("received", "deciding"),
    ("deciding", "awaiting_review"),
    ("awaiting_review", "approved"),
    ("approved", "executing"),
    ("executing", "executed"),
]


@pytest.fixture
def model_server():
    with ModelServer(default=completion(DECISION)) as server:
        yield server


@pytest.fixture
def receiver():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def automation(celery_worker, model_server, receiver, settings, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")  # the worker has it too
    automation = AutomationFactory(
        slug=SLUG,
        mode="autonomous",
        provider="openai",
        model="gpt-4.1-mini",
        base_url=model_server.base_url,
        api_key_env="OPENAI_API_KEY",
        latency_budget_ms=5000,
    )
    IntentFactory(
        automation=automation,
        action_config={
            "url": receiver.url("/hooks/route"),
            "secret_env": TEST_WEBHOOK_SECRET_ENV,
            "timeout_seconds": 5,
        },
    )
    SegmentPolicyFactory(automation=automation, key="enterprise", enabled=True)
    return automation


@pytest.fixture
def token(automation):
    cache.clear()  # rate-limit counters of earlier tests
    _, raw = token_issue(name="worker-test")
    return raw


def worker_log(worker):
    return lambda: "worker log tail:\n" + worker.log_tail()


def received_run(automation, key: str) -> Run:
    """A run in `received`, stored without enqueueing its decision."""
    body = event_body(key)
    result = event_ingest(
        automation_id=automation.pk,
        idempotency_key=key,
        payload=body["payload"],
        raw_body=json.dumps(body).encode(),
        segment=body["segment"],
        source=body["source"],
        client="test",
    )
    return result.run


def approve_by_hand(run: Run) -> None:
    """Take a received run to approved as a reviewer's approval does, without sending anything."""
    run_transition(run=run, to_state="deciding", actor="test")
    run_transition(
        run=run, to_state="awaiting_review", actor="test", fields={"proposed_intent": DECISION}
    )
    run_transition(
        run=run,
        to_state="approved",
        actor="user:test",
        fields={"final_intent": DECISION, "decided_by": "reviewer"},
    )


def transitions(run: Run) -> list[tuple[str, str]]:
    return list(run.transitions.order_by("at", "id").values_list("from_state", "to_state"))


def test_events_flow_end_to_end_and_each_action_is_delivered_once(
    automation, token, model_server, receiver, celery_worker, test_webhook_secret
):
    client = Client()
    run_ids = []
    for number in range(200):
        # Half in a segment with its own (enabled) policy, half without a segment.
        body = event_body(f"ticket-{number}", segment="enterprise" if number % 2 else "")
        response = post_event(client, SLUG, body, token=token)
        assert response.status_code == 202, response.content
        run_ids.append(int(response.json()["run_id"]))

    executed = Run.objects.filter(pk__in=run_ids, state="executed")
    wait_until(
        lambda: executed.count() == 200 or None,
        timeout=120,
        interval=0.2,
        describe=lambda: (
            f"{Counter(Run.objects.values_list('state', flat=True))}\n"
            + worker_log(celery_worker)()
        ),
    )

    keys = set(Action.objects.filter(run_id__in=run_ids).values_list("idempotency_key", flat=True))
    deliveries = receiver.wait_for(200, timeout=5)
    successes = Counter(d.headers["webhook-id"] for d in deliveries if 200 <= d.status < 300)
    assert set(successes) == keys and len(keys) == 200
    assert set(successes.values()) == {1}
    assert len(receiver.deliveries) == 200  # nothing was retried either
    for delivery in deliveries:
        payload = verify(delivery, test_webhook_secret)
        assert payload["decided_by"] == "model"
        assert payload["intent"] == "route_ticket"
    assert {d.json["run_id"] for d in deliveries} == {str(pk) for pk in run_ids}
    assert len(model_server.requests) == 200
    assert ModelCall.objects.filter(run_id__in=run_ids, error="").count() == 200
    assert set(ActionAttempt.objects.values_list("number", "status_code")) == {(1, 200)}
    sample = Run.objects.get(pk=run_ids[0])
    assert transitions(sample) == EXECUTED_PATH


def test_tasks_delivered_twice_change_nothing(automation, model_server, receiver, celery_worker):
    # The receiver and the model answer slowly, so each pair of twins overlaps in the two
    # worker processes instead of running one after the other.
    decided = received_run(automation, "decide-twice")
    approved = received_run(automation, "execute-twice")
    approve_by_hand(approved)
    model_server.reset()
    executed = Run.objects.filter(state="executed")
    log = worker_log(celery_worker)

    receiver.enqueue(200, delay=0.3)
    execute_run.apply_async(args=[approved.pk])
    execute_run.apply_async(args=[approved.pk])
    wait_until(executed.filter(pk=approved.pk).exists, timeout=30, describe=log)

    model_server.default = completion(DECISION, delay=0.3)
    decide_run.apply_async(args=[decided.pk])
    decide_run.apply_async(args=[decided.pk])
    wait_until(executed.filter(pk=decided.pk).exists, timeout=30, describe=log)

    time.sleep(0.3)  # a second delivery or model call, if any, would have arrived by now
    assert ModelCall.objects.filter(run=decided).count() == 1
    assert len(model_server.requests) == 1  # the twin did not ask the model again
    decided.refresh_from_db()
    checks = [verdict["check"] for verdict in decided.verdicts]
    assert len(checks) == len(set(checks)) == 6
    for run, path in ((decided, EXECUTED_PATH), (approved, APPROVED_PATH)):
        action = Action.objects.get(run=run)
        assert action.state == ActionState.SUCCEEDED
        assert action.attempts.count() == 1
        assert transitions(run) == path
    ids = Counter(d.headers["webhook-id"] for d in receiver.deliveries)
    assert len(ids) == 2 and set(ids.values()) == {1}
    assert RunTransition.objects.filter(run__in=[decided, approved]).count() == 10  # 4 + 6


def test_kill_switch_flipped_after_approval_sends_nothing(automation, receiver, celery_worker):
    run = received_run(automation, "switched-off")
    approve_by_hand(run)

    execute_run.apply_async(args=[run.pk], countdown=1)
    policy = SegmentPolicy.objects.get(automation=automation, key="enterprise")
    policy.enabled = False
    policy.save()

    halted = Run.objects.filter(pk=run.pk, state="halted")
    wait_until(halted.exists, timeout=30, describe=worker_log(celery_worker))
    run.refresh_from_db()
    assert run.reason == "segment enterprise switched off after approval"
    assert transitions(run)[-1] == ("approved", "halted")
    assert not Action.objects.filter(run=run).exists()  # nothing was ever attempted
    assert receiver.deliveries == []


def test_redelivered_decide_task_after_a_lost_worker_delivers_once(
    automation, model_server, receiver, celery_worker, test_webhook_secret
):
    # As if the worker died right after the decision committed: its first attempt reserved,
    # nothing sent, and its hold on the run over.
    run = received_run(automation, "decided-then-lost")
    run_decide(run_id=run.pk, actor="test")
    Run.objects.filter(pk=run.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    model_server.reset()
    log = worker_log(celery_worker)

    decide_run.apply_async(args=[run.pk])  # the broker delivers the decide task again
    decide_run.apply_async(args=[run.pk])  # and once more, as a twin
    executed = Run.objects.filter(pk=run.pk, state="executed")
    wait_until(executed.exists, timeout=30, describe=log)

    time.sleep(0.3)  # a second delivery, if any, would have arrived by now
    assert model_server.requests == []  # decided once, not again
    assert ModelCall.objects.filter(run=run).count() == 1
    action = Action.objects.get(run=run)
    assert action.state == ActionState.SUCCEEDED
    assert list(action.attempts.values_list("number", "error")) == [(1, LOST), (2, "")]
    [delivery] = receiver.deliveries
    assert delivery.headers["webhook-id"] == action.idempotency_key
    assert verify(delivery, test_webhook_secret)["decided_by"] == "model"
    assert transitions(run) == EXECUTED_PATH


def test_kill_switch_is_checked_when_the_decide_task_acts(automation, receiver, celery_worker):
    run = received_run(automation, "switched-off-before-acting")
    approve_by_hand(run)
    SegmentPolicy.objects.filter(automation=automation, key="enterprise").update(enabled=False)

    decide_run.apply_async(args=[run.pk])

    halted = Run.objects.filter(pk=run.pk, state="halted")
    wait_until(halted.exists, timeout=30, describe=worker_log(celery_worker))
    assert transitions(run)[-2:] == [("awaiting_review", "approved"), ("approved", "halted")]
    assert not Action.objects.filter(run=run).exists()
    assert receiver.deliveries == []


def test_a_segment_switched_off_sends_nothing_that_starts_after_the_switch_commits(
    automation, receiver, celery_worker, capsys
):
    # A slow receiver keeps deliveries in flight while the switch is flipped.
    receiver.default = Answer(status=200, delay=0.2)
    runs = []
    for n in range(30):
        with transaction.atomic():
            body = event_body(f"switch-{n}")
            runs.append(
                event_ingest(
                    automation_id=automation.pk,
                    idempotency_key=body["idempotency_key"],
                    payload=body["payload"],
                    raw_body=json.dumps(body).encode(),
                    segment="enterprise",
                    client="test",
                    decide=True,
                ).run
            )
    wait_until(
        lambda: len(receiver.deliveries) >= 3, timeout=30, describe=worker_log(celery_worker)
    )

    committed = []
    clicked = time.time()
    with transaction.atomic():
        switch_set(
            automation=automation, on=False, reason="incident", by=None, segment="enterprise"
        )
        transaction.on_commit(lambda: committed.append(timezone.now()))
    settled = Run.objects.filter(pk__in=[r.pk for r in runs]).exclude(
        state__in=["received", "deciding", "approved", "executing"]
    )
    wait_until(lambda: settled.count() == len(runs), timeout=60, describe=worker_log(celery_worker))

    attempts = ActionAttempt.objects.filter(action__run__in=runs)
    assert attempts.exists() and all(a.started_at < committed[0] for a in attempts)
    states = Counter(
        Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("state", flat=True)
    )
    assert states["blocked"] + states["halted"] > 0  # the switch stopped what was not yet sent
    assert states["executed"] == attempts.count() == len(receiver.deliveries)
    last_sent = max(d.received_at for d in receiver.deliveries)
    with capsys.disabled():
        print(
            f"\nkill switch: {states['executed']} sent before the commit, "
            f"{states['blocked']} blocked, {states['halted']} halted; "
            f"switch clicked to commit {committed[0].timestamp() - clicked:.3f} s, "
            f"last delivery arrived {last_sent - committed[0].timestamp():+.3f} s after the commit"
        )
