"""GET /api/v1/runs/{run_id}: what a client learns about a run, and who may ask."""

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations.models import (
    Action,
    ActionAttempt,
    ModelCall,
    Run,
    RunTransition,
)
from automations.services.runs import run_transition
from catalog.tokens import token_issue
from tests.factories import AutomationFactory, ReviewTaskFactory, RunFactory, UserFactory
from tests.support.api_client import as_bytes, assert_error, event_body, post_event

SLUG = "support-triage"
INTENT = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.92,
    "rationale": "Invoice question.",
}


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def automation(db):
    return AutomationFactory(slug=SLUG)


@pytest.fixture
def token(automation):
    _, raw = token_issue(name="zendesk-bridge")
    return raw


def get_run(client, run_id, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(f"/api/v1/runs/{run_id}", headers=headers)


def executed_run(automation, *, verdicts: int = 3, attempts: int = 2) -> Run:
    """A run that went the whole way: decided, reviewed (edited), acted on after retries."""
    reviewer = UserFactory(username="rosa", roles=["reviewer"])
    task = ReviewTaskFactory(
        run__event__automation=automation,
        run__event__segment="enterprise",
        run__event__idempotency_key="ticket-4711",
        run__proposed_intent=INTENT,
        run__final_intent={**INTENT, "arguments": {"team": "billing", "priority": "p1"}},
        run__decided_by="reviewer",
        run__reason="approved by rosa",
        state="done",
        outcome="edited",
        claimed_by=reviewer,
        decided_by=reviewer,
        decided_at=timezone.now(),
        review_ms=5400,
        note="Raised the priority.",
    )
    run = task.run
    run.verdicts = [
        {
            "check": f"check_{position}",
            "verdict": "pass" if position else "review",
            "reason": "mode approve" if not position else "",
            "details": {"position": position},
        }
        for position in range(verdicts)
    ]
    run.save(update_fields=["verdicts"])
    ModelCall.objects.create(
        run=run,
        automation=automation,
        provider="openai",
        model="gpt-4.1-mini",
        prompt_version=3,
        request_id="req_123",
        input_tokens=812,
        output_tokens=64,
        cost_usd=Decimal("0.000427"),
        latency_ms=930,
    )
    action = Action.objects.create(
        run=run,
        automation=automation,
        adapter="webhook",
        idempotency_key=f"run-{run.pk}-route_ticket",
        state="succeeded",
        attempt_count=attempts,
    )
    started = timezone.now() - timedelta(minutes=1)
    for number in range(1, attempts + 1):
        last = number == attempts
        ActionAttempt.objects.create(
            action=action,
            number=number,
            started_at=started + timedelta(seconds=number),
            duration_ms=120,
            status_code=200 if last else 503,
            error="" if last else "HTTP 503",
        )
    for from_state, to_state in [
        ("", "received"),
        ("received", "deciding"),
        ("deciding", "awaiting_review"),
        ("awaiting_review", "approved"),
        ("approved", "executing"),
        ("executing", "executed"),
    ]:
        RunTransition.objects.create(
            run=run, from_state=from_state, to_state=to_state, actor="worker:test"
        )
    Run.objects.filter(pk=run.pk).update(state="executed")
    return run


def test_run_shows_intent_verdicts_review_action_and_transitions(client, automation, token):
    run = executed_run(automation)

    response = get_run(client, run.pk, token)

    assert response.status_code == 200
    body = response.json()
    assert body["run_id"] == str(run.pk)
    assert body["automation"] == SLUG
    assert body["segment"] == "enterprise"
    assert body["status"] == "executed"
    assert body["trace_id"] == run.trace_id
    assert body["created_at"] and body["updated_at"]
    assert body["event"]["idempotency_key"] == "ticket-4711"
    assert body["event"]["source"] == "test"
    assert body["event"]["body_sha256"] == run.event.body_sha256
    assert body["event"]["received_at"]
    assert body["intent"] == INTENT
    assert body["final_intent"]["arguments"]["priority"] == "p1"
    assert body["decided_by"] == "reviewer"
    assert body["reason"] == "approved by rosa"
    assert [v["check"] for v in body["verdicts"]] == ["check_0", "check_1", "check_2"]
    assert body["verdicts"][0] == {
        "check": "check_0",
        "verdict": "review",
        "reason": "mode approve",
        "details": {"position": 0},
    }
    assert body["model_calls"] == [
        {
            "provider": "openai",
            "model": "gpt-4.1-mini",
            "prompt_version": 3,
            "input_tokens": 812,
            "output_tokens": 64,
            "cost_usd": 0.000427,
            "latency_ms": 930,
            "error": "",
            "request_id": "req_123",
        }
    ]
    review = body["review"]
    assert review["state"] == "done"
    assert review["outcome"] == "edited"
    assert review["reviewer"] == "rosa"
    assert review["note"] == "Raised the priority."
    assert review["reject_reason"] == ""
    assert review["review_ms"] == 5400
    assert review["decided_at"]
    action = body["action"]
    assert action["adapter"] == "webhook"
    assert action["idempotency_key"] == f"run-{run.pk}-route_ticket"
    assert (action["state"], action["attempt_count"], action["last_error"]) == ("succeeded", 2, "")
    assert [(a["number"], a["status_code"], a["error"]) for a in action["attempts"]] == [
        (1, 503, "HTTP 503"),
        (2, 200, ""),
    ]
    assert all(a["duration_ms"] == 120 and a["started_at"] for a in action["attempts"])
    assert [(t["from"], t["to"]) for t in body["transitions"]] == [
        (None, "received"),
        ("received", "deciding"),
        ("deciding", "awaiting_review"),
        ("awaiting_review", "approved"),
        ("approved", "executing"),
        ("executing", "executed"),
    ]
    assert all(t["at"] and t["actor"] == "worker:test" for t in body["transitions"])


def test_freshly_ingested_run_has_no_review_or_action_yet(client, automation, token):
    raw = as_bytes(event_body())
    run_id = post_event(client, SLUG, raw, token=token).json()["run_id"]

    body = get_run(client, run_id, token).json()

    assert body["status"] == "received"
    assert body["intent"] is None
    assert body["final_intent"] is None
    assert body["review"] is None
    assert body["action"] is None
    assert body["verdicts"] == [] and body["model_calls"] == []
    assert body["event"]["body_sha256"] == hashlib.sha256(raw).hexdigest()
    assert body["event"]["source"] == "zendesk"
    assert [(t["from"], t["to"], t["actor"]) for t in body["transitions"]] == [
        (None, "received", "api:zendesk-bridge")
    ]


def test_status_follows_the_run(client, automation, token):
    run_id = post_event(client, SLUG, event_body(), token=token).json()["run_id"]
    run_transition(run=Run.objects.get(pk=run_id), to_state="blocked", actor="test", reason="x")

    body = get_run(client, run_id, token).json()

    assert body["status"] == "blocked"
    assert body["transitions"][-1]["reason"] == "x"


def test_queries_do_not_grow_with_verdicts_or_attempts(client, automation, token):
    small = executed_run(automation, verdicts=1, attempts=1)
    big = RunFactory(event__automation=automation)
    big.verdicts = [
        {"check": f"c{position}", "verdict": "pass", "reason": "", "details": {}}
        for position in range(8)
    ]
    big.save(update_fields=["verdicts"])
    action = Action.objects.create(
        run=big, automation=automation, adapter="webhook", idempotency_key="big"
    )
    for number in range(1, 7):
        ActionAttempt.objects.create(action=action, number=number, started_at=timezone.now())

    get_run(client, small.pk, token)  # the token's last_used_at write happens once
    with CaptureQueriesContext(connection) as small_queries:
        assert get_run(client, small.pk, token).status_code == 200
    with CaptureQueriesContext(connection) as big_queries:
        assert get_run(client, big.pk, token).status_code == 200

    assert len(big_queries) == len(small_queries)
    assert len(small_queries) <= 8


@pytest.mark.parametrize("run_id", ["999999", "abc", "1.5", "-1", "99999999999999999999999", "١"])
def test_unknown_or_malformed_run_id_is_404_json(client, automation, token, run_id):
    response = get_run(client, run_id, token)

    assert_error(response, 404, "not_found", None)


def test_token_limited_to_other_automations_gets_404_like_a_missing_run(client, automation, token):
    run = executed_run(automation)
    _, limited = token_issue(name="billing-only", automations=[AutomationFactory(slug="billing")])

    hidden = get_run(client, run.pk, limited)
    missing = get_run(client, 999_999, limited)

    assert_error(hidden, 404, "not_found", None)
    assert hidden.json() == missing.json()


def test_token_limited_to_this_automation_reads_its_runs(client, automation):
    run = executed_run(automation)
    _, limited = token_issue(name="triage-only", automations=[automation])

    assert get_run(client, run.pk, limited).status_code == 200


@pytest.mark.parametrize("token_value", [None, "hr_wrong"])
def test_reading_a_run_needs_a_valid_token(client, automation, token_value):
    run = executed_run(automation)

    assert_error(get_run(client, run.pk, token_value), 401, "unauthorized")


def test_revoked_token_cannot_read_runs(client, automation):
    run = executed_run(automation)
    api_token, raw = token_issue(name="old")
    api_token.revoked_at = timezone.now()
    api_token.save()

    assert_error(get_run(client, run.pk, raw), 401, "unauthorized")


def test_openapi_schema_documents_the_run_endpoint(client, db):
    schema = client.get("/api/v1/openapi.json").json()

    operation = schema["paths"]["/api/v1/runs/{run_id}"]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    detail = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {
        "run_id",
        "automation",
        "status",
        "trace_id",
        "intent",
        "verdicts",
        "review",
        "action",
        "transitions",
    } <= set(detail["properties"])
    assert {"401", "404"} <= set(operation["responses"])
