"""The webhook adapter against a real receiver: Standard Webhooks signing, headers, outcomes."""

import json
import logging
import socket

import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from automations.adapters import ADAPTERS, UnknownAdapter, adapter_for
from automations.adapters.webhook import WebhookAdapter
from automations.models import Action, Run
from tests.support.webhook_receiver import WebhookReceiver, new_webhook_secret, verify

SECRET_ENV = "TEST_WEBHOOK_SECRET"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
BODY = {"run_id": "7", "intent": "route_ticket", "arguments": {"team": "billing", "note": "café"}}

pytestmark = pytest.mark.usefixtures("http_transport")


@pytest.fixture
def receiver():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def secret(monkeypatch):
    value = new_webhook_secret()
    monkeypatch.setenv(SECRET_ENV, value)
    return value


def deliver(receiver, *, body=BODY, trace_id=TRACE_ID, **config):
    action = Action(idempotency_key="act_0123456789abcdef")
    run = Run(trace_id=trace_id)
    config = {"url": receiver.url("/hooks/route"), "secret_env": SECRET_ENV, **config}
    return WebhookAdapter().deliver(action=action, run=run, config=config, body=body)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_registry_finds_the_webhook_adapter_and_refuses_unknown_names():
    assert adapter_for("webhook") is ADAPTERS["webhook"]
    with pytest.raises(UnknownAdapter, match="'carrier-pigeon'"):
        adapter_for("carrier-pigeon")


def test_a_delivery_leaves_its_url_out_of_the_logs(receiver, secret, caplog):
    # A receiver's URL may carry a token in its query string.
    caplog.set_level(logging.DEBUG)

    delivery = deliver(receiver, url=receiver.url("/hooks/route?token=s3cret-query-token"))

    assert delivery.ok
    assert "s3cret-query-token" not in caplog.text


def test_delivery_signature_verifies_with_the_standardwebhooks_library(receiver, secret):
    delivery = deliver(receiver)

    assert delivery.ok and delivery.status_code == 200 and delivery.error == ""
    [received] = receiver.wait_for(1)
    assert received.method == "POST" and received.path == "/hooks/route"
    assert verify(received, secret) == BODY
    with pytest.raises(WebhookVerificationError):
        verify(received, new_webhook_secret())


def test_delivery_headers_follow_the_contract(receiver, secret):
    deliver(receiver)

    [received] = receiver.wait_for(1)
    headers = received.headers
    assert headers["webhook-id"] == "act_0123456789abcdef"
    assert headers["idempotency-key"] == "act_0123456789abcdef"
    assert abs(int(headers["webhook-timestamp"]) - received.received_at) < 5
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"
    version, trace_id, parent_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert len(parent_id) == 16 and int(parent_id, 16) > 0
    assert json.loads(received.body) == BODY


def test_tampered_body_fails_verification(receiver, secret):
    deliver(receiver)

    [received] = receiver.wait_for(1)
    received.body = received.body.replace(b"billing", b"sales")
    with pytest.raises(WebhookVerificationError):
        verify(received, secret)


def test_each_attempt_gets_a_new_span_in_the_same_trace(receiver, secret):
    deliver(receiver)
    deliver(receiver)

    first, second = (d.headers["traceparent"] for d in receiver.wait_for(2))
    assert first.split("-")[1] == second.split("-")[1] == TRACE_ID
    assert first != second


@pytest.mark.parametrize("trace_id", ["", "0" * 32, "4BF92F3577B34DA6A3CE929D0E0E4736", "abc"])
def test_a_run_without_a_valid_trace_id_sends_no_traceparent(receiver, secret, trace_id):
    assert deliver(receiver, trace_id=trace_id).ok

    [received] = receiver.wait_for(1)
    assert "traceparent" not in received.headers


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_transient_answers_are_retryable(receiver, secret, status):
    receiver.enqueue(status, body='{"error": "busy"}')

    delivery = deliver(receiver)

    assert not delivery.ok and delivery.retryable
    assert delivery.status_code == status
    assert delivery.error == f"receiver answered {status}"
    assert delivery.response_excerpt == '{"error": "busy"}'


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_client_errors_are_permanent(receiver, secret, status):
    receiver.enqueue(status)

    delivery = deliver(receiver)

    assert not delivery.ok and not delivery.retryable
    assert delivery.error == f"receiver answered {status}"


def test_redirects_are_not_followed(receiver, secret):
    receiver.enqueue(302)

    delivery = deliver(receiver)

    assert not delivery.ok and not delivery.retryable
    assert "redirects are not followed" in delivery.error
    assert len(receiver.deliveries) == 1


def test_timeout_is_retryable_and_says_how_long_it_waited(receiver, secret):
    receiver.enqueue(200, delay=2)

    delivery = deliver(receiver, timeout_seconds=0.3)

    assert not delivery.ok and delivery.retryable
    assert delivery.status_code is None
    assert delivery.error == "timed out after 0.3 s"


def test_unreachable_receiver_is_retryable(secret):
    url = f"http://127.0.0.1:{closed_port()}/hooks"
    action = Action(idempotency_key="act_x")
    config = {"url": url, "secret_env": SECRET_ENV}

    delivery = WebhookAdapter().deliver(
        action=action, run=Run(trace_id=TRACE_ID), config=config, body=BODY
    )

    assert not delivery.ok and delivery.retryable
    assert delivery.error.startswith("could not reach the receiver")


def test_response_excerpt_keeps_the_first_200_characters(receiver, secret):
    receiver.enqueue(500, body="é" * 5000)

    delivery = deliver(receiver)

    assert delivery.response_excerpt == "é" * 200


def test_response_excerpt_drops_control_characters_and_folds_whitespace(receiver, secret):
    # Terminal escapes, a bidirectional override and NULs must not reach whoever reads it.
    answer = "\x1b[31mdenied\x1b[0m\r\n\tretry\x00 later \u202egnp.exe\x07" + "x" * 1000
    receiver.enqueue(400, body=answer)

    delivery = deliver(receiver)

    assert delivery.response_excerpt == ("[31mdenied[0m retry later gnp.exe" + "x" * 1000)[:200]
    assert len(delivery.response_excerpt) == 200


def test_missing_secret_is_a_permanent_failure_and_nothing_is_sent(receiver, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)

    delivery = deliver(receiver)

    assert not delivery.ok and not delivery.retryable
    assert delivery.error == f"environment variable {SECRET_ENV} (the webhook secret) is not set"
    assert receiver.deliveries == []


def test_secret_not_in_whsec_form_is_refused_without_echoing_it(receiver, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "hunter2-plain-password")

    delivery = deliver(receiver)

    assert not delivery.ok and not delivery.retryable
    assert "whsec_<base64" in delivery.error
    assert "hunter2" not in delivery.error
    assert receiver.deliveries == []


def test_url_that_is_not_http_is_a_permanent_failure(secret):
    config = {"url": "ftp://127.0.0.1/hooks", "secret_env": SECRET_ENV}

    delivery = WebhookAdapter().deliver(
        action=Action(idempotency_key="act_x"), run=Run(trace_id=TRACE_ID), config=config, body={}
    )

    assert not delivery.ok and not delivery.retryable
    assert "not a valid http(s) URL" in delivery.error


def test_compensation_is_signed_under_its_own_id(receiver, secret):
    action = Action(idempotency_key="act_abc")
    config = {
        "url": receiver.url("/hooks/route"),
        "compensation_url": receiver.url("/hooks/undo"),
        "secret_env": SECRET_ENV,
    }

    delivery = WebhookAdapter().compensate(
        action=action, run=Run(trace_id=TRACE_ID), config=config, body=BODY
    )

    assert delivery.ok
    [received] = receiver.wait_for(1)
    assert received.path == "/hooks/undo"
    assert received.headers["webhook-id"] == "act_abc:compensate"
    assert received.headers["idempotency-key"] == "act_abc:compensate"
    assert verify(received, secret) == {**BODY, "compensation": True}


def test_no_compensation_url_means_nothing_to_undo(receiver, secret):
    config = {"url": receiver.url("/hooks/route"), "secret_env": SECRET_ENV}

    result = WebhookAdapter().compensate(
        action=Action(idempotency_key="act_abc"), run=Run(trace_id=TRACE_ID), config=config, body={}
    )

    assert result is None
    assert receiver.deliveries == []
