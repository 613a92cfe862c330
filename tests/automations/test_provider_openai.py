"""The openai provider through the real SDK against a scripted server on 127.0.0.1."""

import json
import time
from decimal import Decimal

import pytest

from automations.models import DailySpend, Run
from automations.providers import provider_for
from automations.providers.prompt import decision_schema
from automations.providers.strict import nulls_drop, schema_strict
from automations.services.decisions import run_decide
from tests.factories import AutomationFactory, EventFactory, IntentFactory, RunFactory
from tests.support.model_server import ModelServer, Response, completion, error, refusal

KEY_ENV = "HANDRAIL_TEST_MODEL_API_KEY"
DOCUMENT = {
    "payload": {"subject": "Invoice", "body": "Where is my invoice?"},
    "segment": "enterprise",
    "source": "zendesk",
    "idempotency_key": "ticket-4711",
}
GOOD = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.92,
    "rationale": "Invoice question.",
}
REPLY_SCHEMA = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "minLength": 1},
        "tone": {"type": "string", "enum": ["formal", "friendly"]},
    },
    "required": ["text"],
    "additionalProperties": False,
}


@pytest.fixture
def server():
    with ModelServer() as running:
        yield running


@pytest.fixture
def automation(db, server, monkeypatch, http_transport):
    monkeypatch.setenv(KEY_ENV, "sk-test-key")
    automation = AutomationFactory(
        slug="support-triage",
        provider="openai",
        model="gpt-4.1-mini",
        base_url=server.base_url,
        api_key_env=KEY_ENV,
        instructions="You triage customer support tickets. Pick exactly one intent.",
        latency_budget_ms=5000,
    )
    IntentFactory(automation=automation, position=0)
    IntentFactory(
        automation=automation,
        position=1,
        name="draft_reply",
        description="Draft a first reply.",
        arguments_schema=REPLY_SCHEMA,
    )
    return automation


def decide(automation):
    return provider_for(automation).decide(automation=automation, document=DOCUMENT)


def test_valid_output_becomes_a_decision_with_its_cost_and_request_id(automation, server):
    server.enqueue(completion(GOOD, prompt_tokens=1000, completion_tokens=500))

    result = decide(automation)

    assert result.error == ""
    assert result.decision == GOOD
    call = result.call
    assert call.provider == "openai"
    assert call.model == "gpt-4.1-mini"
    assert call.base_url == server.base_url
    assert call.request_id == "req_000001"
    assert (call.input_tokens, call.output_tokens) == (1000, 500)
    # gpt-4.1-mini: 0.40 in, 1.60 out per 1M tokens.
    assert call.cost_usd == Decimal("0.001200")
    assert json.loads(call.raw_output) == GOOD
    assert call.error == ""
    assert 0 <= call.latency_ms < 5000


def test_request_carries_a_strict_schema_of_the_intents_and_the_model(automation, server):
    server.enqueue(completion(GOOD))

    decide(automation)

    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-key"
    body = request.body
    assert body["model"] == "gpt-4.1-mini"
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "support-triage"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["required"] == ["intent", "arguments", "confidence", "rationale"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["intent"]["enum"] == ["route_ticket", "draft_reply"]
    branches = schema["properties"]["arguments"]["anyOf"]
    assert [branch["title"] for branch in branches] == ["route_ticket", "draft_reply"]
    assert branches[0]["properties"]["team"]["enum"] == ["billing", "technical", "sales"]


def test_messages_hold_instructions_intents_and_the_event(automation, server):
    server.enqueue(completion(GOOD))

    decide(automation)

    system, user = server.requests[0].body["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("You triage customer support tickets.")
    assert "- route_ticket: Send the ticket to a team queue." in system["content"]
    assert "- draft_reply: Draft a first reply." in system["content"]
    assert user["role"] == "user"
    assert json.loads(user["content"]) == DOCUMENT


def test_output_that_is_not_json_goes_to_a_person(automation, server):
    server.enqueue(completion("Sure! I would route this to billing."))

    result = decide(automation)

    assert result.decision is None
    assert result.error == "model output is not JSON"
    assert result.call.error == "model output is not JSON"
    assert result.call.raw_output == "Sure! I would route this to billing."
    assert result.call.input_tokens == 120  # the call still cost money


def test_output_of_the_wrong_shape_goes_to_a_person(automation, server):
    server.enqueue(completion({"intent": "route_ticket", "arguments": {}, "score": 0.9}))

    result = decide(automation)

    assert result.decision is None
    assert result.error == 'model output is missing "confidence"'


def test_unknown_intent_goes_to_a_person(automation, server):
    server.enqueue(completion({**GOOD, "intent": "refund"}))

    result = decide(automation)

    assert result.decision is None
    assert result.error == 'unknown intent "refund"'


def test_arguments_failing_the_schema_go_to_a_person(automation, server):
    server.enqueue(completion({**GOOD, "arguments": {"team": "marketing", "priority": "p2"}}))

    result = decide(automation)

    assert result.decision is None
    assert result.error == (
        "arguments.team: 'marketing' is not one of ['billing', 'technical', 'sales']"
    )


def test_arguments_of_another_intent_go_to_a_person(automation, server):
    server.enqueue(completion({**GOOD, "arguments": {"text": "Hello", "tone": None}}))

    result = decide(automation)

    assert result.decision is None
    assert result.error.startswith("arguments: ")


def test_confidence_out_of_range_goes_to_a_person(automation, server):
    server.enqueue(completion({**GOOD, "confidence": 1.7}))

    result = decide(automation)

    assert result.decision is None
    assert result.error == "confidence 1.7 is outside [0, 1]"


def test_refusal_goes_to_a_person_with_the_models_words(automation, server):
    server.enqueue(refusal("I can't help with that."))

    result = decide(automation)

    assert result.decision is None
    assert result.error == "model refused: I can't help with that."
    assert result.call.raw_output == "I can't help with that."


def test_output_cut_off_at_the_token_limit_goes_to_a_person(automation, server):
    server.enqueue(completion('{"intent": "route_ti', finish_reason="length"))

    result = decide(automation)

    assert result.error == "model output was cut off at the token limit"


def test_slow_model_times_out_at_the_latency_budget_without_retrying(automation, server):
    automation.latency_budget_ms = 300
    server.enqueue(completion(GOOD, delay=1.5))

    started = time.monotonic()
    result = decide(automation)
    elapsed = time.monotonic() - started

    assert result.decision is None
    assert result.error == "model timed out after 300 ms"
    assert result.call.error == result.error
    assert 290 <= result.call.latency_ms < 1000
    assert elapsed < 1.0
    assert len(server.requests) == 1


def test_rate_limit_is_retried_and_the_second_answer_counts(automation, server):
    server.enqueue(error(429, "Rate limit reached"), completion(GOOD))

    result = decide(automation)

    assert result.decision == GOOD
    assert result.error == ""
    assert result.call.request_id == "req_000002"
    assert len(server.requests) == 2


def test_server_error_every_time_gives_up_after_three_attempts(automation, server):
    server.default = error(500, "The server had an error")

    result = decide(automation)

    assert result.decision is None
    assert result.error == ("model endpoint answered 500 after 3 attempts: The server had an error")
    assert result.call.request_id == "req_000003"
    assert len(server.requests) == 3


def test_client_error_is_not_retried(automation, server):
    server.enqueue(error(400, "Invalid schema for response_format"))

    result = decide(automation)

    assert result.error == "model endpoint answered 400: Invalid schema for response_format"
    assert len(server.requests) == 1


def test_long_retry_after_gives_up_at_once(automation, server):
    server.enqueue(error(429, "Slow down", headers={"retry-after": "120"}))

    result = decide(automation)

    assert result.error == "model endpoint answered 429: Slow down"
    assert len(server.requests) == 1


def test_body_that_is_not_a_chat_completion_goes_to_a_person(automation, server):
    server.enqueue(Response(body="<html>gateway</html>", headers={"Content-Type": "text/html"}))

    result = decide(automation)

    assert result.decision is None
    assert result.error == "model endpoint answered without a chat completion"


def test_unreachable_endpoint_goes_to_a_person(automation, server, monkeypatch):
    server.stop()
    monkeypatch.setattr("automations.providers.openai.BACKOFF_SECONDS", 0.01)

    result = decide(automation)

    assert result.decision is None
    assert result.error.startswith("could not reach the model endpoint after 3 attempts")


def test_optional_properties_are_sent_nullable_and_their_nulls_dropped(automation, server):
    answer = {
        "intent": "draft_reply",
        "arguments": {"text": "We are on it.", "tone": None},
        "confidence": 0.8,
        "rationale": "Needs a reply.",
    }
    server.enqueue(completion(answer))

    result = decide(automation)

    sent = server.requests[0].body["response_format"]["json_schema"]["schema"]
    reply = sent["properties"]["arguments"]["anyOf"][1]
    assert reply["required"] == ["text", "tone"]
    assert reply["properties"]["tone"] == {
        "type": ["string", "null"],
        "enum": ["formal", "friendly", None],
    }
    assert result.error == ""
    assert result.decision["arguments"] == {"text": "We are on it."}


def test_keywords_strict_mode_refuses_are_left_out_but_still_enforced(automation, server):
    answer = {
        "intent": "draft_reply",
        "arguments": {"text": "", "tone": "formal"},
        "confidence": 0.8,
        "rationale": "",
    }
    server.enqueue(completion(answer))

    result = decide(automation)

    sent = server.requests[0].body["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["arguments"]["anyOf"][1]["properties"]["text"] == {"type": "string"}
    assert result.decision is None
    assert result.error == "arguments.text: '' should be non-empty"


def test_missing_api_key_variable_makes_no_call(automation, server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)

    result = decide(automation)

    assert result.decision is None
    assert result.error == f"API key variable {KEY_ENV} is not set"
    assert result.call.error == result.error
    assert server.requests == []


def test_default_key_variable_is_openai_api_key(automation, server, monkeypatch):
    automation.api_key_env = ""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    result = decide(automation)

    assert result.error == "API key variable OPENAI_API_KEY is not set"


def test_unknown_model_is_priced_at_the_default_row(automation, server):
    automation.model = "llama-3.1-8b-instruct"
    server.enqueue(
        completion(
            GOOD, model="llama-3.1-8b-instruct", prompt_tokens=1_000_000, completion_tokens=0
        )
    )

    result = decide(automation)

    assert result.call.cost_usd == Decimal("1.000000")
    assert server.requests[0].body["model"] == "llama-3.1-8b-instruct"


def test_strict_copy_makes_nested_optional_properties_nullable():
    schema = {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                    "required": ["sku"],
                },
            },
            "address": {"$ref": "#/$defs/address"},
        },
        "required": ["lines"],
        "$defs": {"address": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }

    strict = schema_strict(schema)

    item = strict["properties"]["lines"]["items"]
    assert item["required"] == ["sku", "qty"]
    assert item["additionalProperties"] is False
    assert item["properties"]["qty"] == {"type": ["integer", "null"]}
    assert strict["properties"]["address"] == {
        "anyOf": [{"$ref": "#/$defs/address"}, {"type": "null"}]
    }
    assert strict["$defs"]["address"]["required"] == ["city"]
    assert "additionalProperties" not in schema  # the original is untouched

    answer = {"lines": [{"sku": "A1", "qty": None}], "address": {"city": None}}
    assert nulls_drop(schema=schema, value=answer) == {"lines": [{"sku": "A1"}], "address": {}}


def test_required_nullable_property_keeps_its_null():
    schema = {
        "type": "object",
        "properties": {"note": {"type": ["string", "null"]}},
        "required": ["note"],
    }

    assert nulls_drop(schema=schema, value={"note": None}) == {"note": None}


@pytest.mark.django_db
def test_intent_definitions_move_to_the_root_of_the_decision_schema():
    intent = IntentFactory(
        arguments_schema={
            "type": "object",
            "properties": {"item": {"$ref": "#/$defs/item"}},
            "required": ["item"],
            "$defs": {"item": {"type": "string"}},
        }
    )

    schema = decision_schema([intent])

    assert schema["properties"]["arguments"]["properties"]["item"] == {
        "$ref": "#/$defs/route_ticket__item"
    }
    assert schema["$defs"] == {"route_ticket__item": {"type": "string"}}


def test_decisions_add_their_cost_to_the_day_and_a_spent_budget_stops_the_next_call(
    automation, server
):
    # gpt-4.1-mini at 1000 + 500 tokens: $0.0012 a call; two calls spend the budget.
    automation.daily_budget_usd = Decimal("0.002")
    automation.save()
    runs = [
        RunFactory(event=EventFactory(automation=automation, payload=DOCUMENT["payload"]))
        for _ in range(3)
    ]
    for _ in range(2):
        server.enqueue(completion(GOOD, prompt_tokens=1000, completion_tokens=500))

    for run in runs:
        run_decide(run_id=run.pk, actor="worker:test")

    today = DailySpend.objects.get(automation=automation)
    assert (today.cost_usd, today.calls) == (Decimal("0.002400"), 2)
    assert len(server.requests) == 2
    last = Run.objects.get(pk=runs[2].pk)
    assert last.state == "awaiting_review"
    assert "daily model budget spent" in last.reason
