"""POST /api/v1/automations/{slug}/events: contracts section 3, every error row and more."""

import hashlib
import io
import json
import re
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory
from gunicorn.http.errors import InvalidChunkSize

from automations import ratelimit
from automations.api import request_body
from automations.api_errors import ApiError
from automations.models import Event, Run
from automations.services.runs import run_transition
from catalog.tokens import token_issue
from tests.factories import AutomationFactory
from tests.support.api_client import (
    as_bytes,
    assert_error,
    event_body,
    post_event,
    stored_counts,
)

SLUG = "support-triage"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def client():
    # CSRF checks on, as for a real client: the API must not need a CSRF token.
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def automation(db, settings):
    # The factories hash a password per user; the fast hasher keeps these tests quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return AutomationFactory(slug=SLUG)


@pytest.fixture
def token(automation):
    _, raw = token_issue(name="zendesk-bridge")
    return raw


def nested(depth: int) -> dict:
    """A payload whose body document is `depth` levels deep (the body object is level 1)."""
    inner: dict = {"leaf": "x"}
    for _ in range(depth - 2):
        inner = {"a": inner}
    return event_body(payload=inner)


# -- success, replay, conflict ----------------------------------------------------------


def test_new_event_is_accepted_with_its_run(client, automation, token):
    raw = as_bytes(event_body())

    response = post_event(client, SLUG, raw, token=token)

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"run_id", "trace_id", "status"}
    assert body["status"] == "received"
    assert re.fullmatch(r"[0-9a-f]{32}", body["trace_id"])
    run = Run.objects.select_related("event").get(pk=int(body["run_id"]))
    assert run.trace_id == body["trace_id"]
    event = run.event
    assert event.automation == automation
    assert event.idempotency_key == "ticket-4711"
    assert (event.segment, event.source) == ("enterprise", "zendesk")
    assert event.payload == {"subject": "Invoice", "body": "Where is my invoice?"}
    assert event.client == "api:zendesk-bridge"
    assert event.api_token.name == "zendesk-bridge"
    assert event.body_sha256 == hashlib.sha256(raw).hexdigest()


def test_optional_fields_may_be_left_out(client, automation, token):
    response = post_event(client, SLUG, {"idempotency_key": "k1", "payload": {}}, token=token)

    assert response.status_code == 202
    event = Event.objects.get()
    assert (event.segment, event.source) == ("", "")


def test_replayed_key_returns_the_same_run_with_its_current_status(client, automation, token):
    first = post_event(client, SLUG, event_body(), token=token).json()
    run = Run.objects.get(pk=int(first["run_id"]))
    run_transition(run=run, to_state="deciding", actor="test")

    # Same payload, keys in another order and other spacing: still the same event.
    replay = json.dumps(
        {"payload": {"body": "Where is my invoice?", "subject": "Invoice"}, **event_body()},
        indent=2,
    ).encode()
    response = post_event(client, SLUG, replay, token=token)

    assert response.status_code == 200
    assert response.json() == {
        "run_id": first["run_id"],
        "trace_id": first["trace_id"],
        "status": "deciding",
    }
    assert stored_counts() == (1, 1)


def test_different_payload_under_a_used_key_is_a_conflict(client, automation, token):
    post_event(client, SLUG, event_body(), token=token)

    changed = event_body(payload={"subject": "Invoice", "body": "Never mind."})
    response = post_event(client, SLUG, changed, token=token)

    assert_error(response, 409, "idempotency_conflict", "idempotency_key")
    assert stored_counts() == (1, 1)
    assert Event.objects.get().payload["body"] == "Where is my invoice?"


def test_same_key_on_another_automation_is_a_new_event(client, automation, token):
    AutomationFactory(slug="billing")
    post_event(client, SLUG, event_body(), token=token)

    response = post_event(client, "billing", event_body(), token=token)

    assert response.status_code == 202
    assert stored_counts() == (2, 2)


def test_idempotency_key_of_200_characters_is_accepted(client, automation, token):
    response = post_event(client, SLUG, event_body("k" * 200), token=token)

    assert response.status_code == 202


def test_nesting_of_exactly_32_levels_is_accepted(client, automation, token):
    response = post_event(client, SLUG, nested(32), token=token)

    assert response.status_code == 202


def test_new_event_enqueues_its_decision_once_committed(
    client, automation, token, django_capture_on_commit_callbacks
):
    with mock.patch("automations.services.ingestion.enqueue_decide") as enqueue:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            body = post_event(client, SLUG, event_body(), token=token).json()
        enqueue.assert_not_called()
        for callback in callbacks:
            callback()

    enqueue.assert_called_once_with(int(body["run_id"]))


def test_replay_enqueues_the_decision_again_only_while_the_run_waits(
    client, automation, token, django_capture_on_commit_callbacks
):
    body = post_event(client, SLUG, event_body(), token=token).json()
    run = Run.objects.get(pk=int(body["run_id"]))

    with (
        mock.patch("automations.services.ingestion.enqueue_decide") as enqueue,
        django_capture_on_commit_callbacks(execute=True),
    ):
        post_event(client, SLUG, event_body(), token=token)
        run_transition(run=run, to_state="deciding", actor="test")
        post_event(client, SLUG, event_body(), token=token)

    enqueue.assert_called_once_with(run.pk)


# -- trace context ----------------------------------------------------------------------


def test_valid_traceparent_keeps_the_callers_trace_id(client, automation, token):
    response = post_event(
        client, SLUG, event_body(), token=token, headers={"traceparent": TRACEPARENT}
    )

    assert response.status_code == 202
    assert response.json()["trace_id"] == TRACE_ID
    assert Run.objects.get().trace_id == TRACE_ID
    assert Event.objects.get().trace_id == TRACE_ID


@pytest.mark.parametrize(
    "traceparent",
    [
        TRACEPARENT.upper(),
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID[:-1]}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",
        "not a traceparent",
    ],
)
def test_invalid_traceparent_is_ignored_and_a_new_trace_id_made(
    client, automation, token, traceparent
):
    response = post_event(
        client, SLUG, event_body(), token=token, headers={"traceparent": traceparent}
    )

    assert response.status_code == 202
    trace_id = response.json()["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert trace_id not in (TRACE_ID, "0" * 32)


# -- 400 and 422: the body ----------------------------------------------------------------

BAD_BODIES = [
    # (id, raw body, status, code, field)
    ("not-json", b'{"idempotency_key": "k", "payload": {', 400, "invalid_json", None),
    ("empty-body", b"", 400, "invalid_json", None),
    ("invalid-utf8", b'{"idempotency_key": "k\xff\xfe", "payload": {}}', 400, "invalid_json", None),
    (
        "latin1-text",
        '{"idempotency_key": "caf\xe9", "payload": {}}'.encode("latin-1"),
        400,
        "invalid_json",
        None,
    ),
    ("nan", b'{"idempotency_key": "k", "payload": {"x": NaN}}', 400, "invalid_json", None),
    (
        "infinity",
        b'{"idempotency_key": "k", "payload": {"x": -Infinity}}',
        400,
        "invalid_json",
        None,
    ),
    ("array", b'[{"idempotency_key": "k", "payload": {}}]', 422, "validation_error", None),
    ("string", b'"hello"', 422, "validation_error", None),
    ("number", b"42", 422, "validation_error", None),
    ("null", b"null", 422, "validation_error", None),
    ("missing-key", as_bytes({"payload": {}}), 422, "validation_error", "idempotency_key"),
    ("key-not-string", as_bytes(event_body(4711)), 422, "validation_error", "idempotency_key"),
    ("key-empty", as_bytes(event_body("")), 422, "validation_error", "idempotency_key"),
    ("key-too-long", as_bytes(event_body("k" * 201)), 422, "validation_error", "idempotency_key"),
    ("key-with-nul", as_bytes(event_body("k\x00")), 422, "validation_error", "idempotency_key"),
    (
        "segment-not-slug",
        as_bytes(event_body(segment="Enterprise")),
        422,
        "validation_error",
        "segment",
    ),
    (
        "segment-too-long",
        as_bytes(event_body(segment="s" * 101)),
        422,
        "validation_error",
        "segment",
    ),
    (
        "source-not-string",
        as_bytes(event_body(source=["zendesk"])),
        422,
        "validation_error",
        "source",
    ),
    ("source-too-long", as_bytes(event_body(source="s" * 101)), 422, "validation_error", "source"),
    ("payload-missing", as_bytes({"idempotency_key": "k"}), 422, "validation_error", "payload"),
    ("payload-array", as_bytes(event_body(payload=[1, 2])), 422, "validation_error", "payload"),
    ("payload-string", as_bytes(event_body(payload="hi")), 422, "validation_error", "payload"),
    ("payload-null", as_bytes(event_body(payload=None)), 422, "validation_error", "payload"),
    ("unknown-field", as_bytes(event_body(priority="high")), 422, "validation_error", "priority"),
    (
        "nul-in-value",
        as_bytes(event_body(payload={"body": "a\x00b"})),
        422,
        "validation_error",
        "payload.body",
    ),
    (
        "nul-in-nested-key",
        as_bytes(event_body(payload={"list": [{"b\x00d": 1}]})),
        422,
        "validation_error",
        "payload.list[0].b\\u0000d",
    ),
    (
        "lone-surrogate",
        b'{"idempotency_key": "k", "payload": {"s": "\\ud800"}}',
        422,
        "validation_error",
        "payload.s",
    ),
    (
        "number-overflow",
        b'{"idempotency_key": "k", "payload": {"n": 1e400}}',
        422,
        "validation_error",
        "payload.n",
    ),
    ("nested-33-levels", as_bytes(nested(33)), 422, "validation_error", "payload" + ".a" * 31),
]


@pytest.mark.parametrize(
    ("raw", "status", "code", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_BODIES],
)
def test_bad_body_is_refused_and_nothing_is_stored(
    client, automation, token, raw, status, code, field
):
    response = post_event(client, SLUG, raw, token=token)

    assert_error(response, status, code, field)
    assert stored_counts() == (0, 0)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 100_000, id="100000-brackets"),
        pytest.param(
            b'{"idempotency_key": "k", "payload": {"a": ' + b"[" * 100_000, id="in-payload"
        ),
        pytest.param(
            b'{"idempotency_key": "k", "payload": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
            id="closed-5000",
        ),
    ],
)
def test_pathologically_deep_json_is_refused_without_a_server_error(client, automation, token, raw):
    response = post_event(client, SLUG, raw, token=token)

    assert response.status_code in (400, 422)
    assert_error(response, response.status_code, response.json()["error"])
    assert stored_counts() == (0, 0)


# -- 413: size --------------------------------------------------------------------------


def padded_body(size: int) -> bytes:
    """A valid body of exactly `size` bytes."""
    base = as_bytes(event_body(payload={"pad": ""}))
    return base.replace(b'"pad": ""', b'"pad": "' + b"x" * (size - len(base)) + b'"')


def test_body_of_exactly_the_limit_is_accepted(client, automation, token, settings):
    settings.HANDRAIL_MAX_EVENT_BYTES = 2000

    response = post_event(client, SLUG, padded_body(2000), token=token)

    assert response.status_code == 202


def test_body_over_the_limit_is_413(client, automation, token, settings):
    settings.HANDRAIL_MAX_EVENT_BYTES = 2000

    response = post_event(client, SLUG, padded_body(2001), token=token)

    assert_error(response, 413, "payload_too_large", None)
    assert stored_counts() == (0, 0)


def test_default_limit_of_262144_bytes_applies(client, automation, token):
    response = post_event(client, SLUG, padded_body(262_145), token=token)

    assert_error(response, 413, "payload_too_large")
    assert stored_counts() == (0, 0)


def test_announced_length_over_the_limit_is_413_without_reading_the_body(
    client, automation, token, settings
):
    settings.HANDRAIL_MAX_EVENT_BYTES = 2000

    # Content-Length lies: the body is small, the header says it is not.
    response = post_event(client, SLUG, event_body(), token=token, CONTENT_LENGTH="999999999")

    assert_error(response, 413, "payload_too_large")
    assert stored_counts() == (0, 0)


def test_actual_body_over_the_limit_is_413_even_without_content_length(settings):
    settings.HANDRAIL_MAX_EVENT_BYTES = 2000
    request = RequestFactory().post("/api/v1/automations/x/events", b"", "application/json")
    request.META.pop("CONTENT_LENGTH", None)
    request._body = padded_body(2001)  # as a chunked ASGI body arrives: no length announced

    with pytest.raises(ApiError) as raised:
        request_body(request)

    assert raised.value.status == 413


def unannounced_request(stream, *, terminated: bool = True):
    """A request without Content-Length (chunked), its body in `stream`, as gunicorn passes it."""
    request = RequestFactory().post("/api/v1/automations/x/events", b"", "application/json")
    request.META.pop("CONTENT_LENGTH", None)
    request.META["wsgi.input"] = stream
    if terminated:
        request.META["wsgi.input_terminated"] = True
    return request


def test_body_without_content_length_is_read_when_the_server_ends_the_stream_there(settings):
    settings.HANDRAIL_MAX_EVENT_BYTES = 2000
    body = padded_body(2000)

    assert request_body(unannounced_request(io.BytesIO(body))) == body


def test_body_without_content_length_over_the_limit_is_413_after_reading_one_byte_more(settings):
    settings.HANDRAIL_MAX_EVENT_BYTES = 2000
    stream = io.BytesIO(padded_body(10_000))

    with pytest.raises(ApiError) as raised:
        request_body(unannounced_request(stream))

    assert raised.value.status == 413
    assert stream.tell() == 2001


def test_body_without_content_length_is_not_read_from_a_server_that_does_not_end_it():
    # Such a stream may block until the client closes the connection: read nothing.
    stream = io.BytesIO(as_bytes(event_body()))

    assert request_body(unannounced_request(stream, terminated=False)) == b""
    assert stream.tell() == 0


def test_malformed_chunk_is_400_bad_request():
    class MalformedChunks(io.RawIOBase):
        def read(self, size=-1):
            raise InvalidChunkSize(b"zz")

    with pytest.raises(ApiError) as raised:
        request_body(unannounced_request(MalformedChunks()))

    assert (raised.value.status, raised.value.code) == (400, "bad_request")


def test_content_length_that_is_not_a_number_is_400(client, automation, token):
    response = post_event(client, SLUG, event_body(), token=token, CONTENT_LENGTH="lots")

    assert_error(response, 400, "bad_request")
    assert stored_counts() == (0, 0)


def test_oversized_body_is_413_before_the_token_is_checked(client, automation, settings):
    settings.HANDRAIL_MAX_EVENT_BYTES = 2000

    response = post_event(client, SLUG, padded_body(3000))

    assert_error(response, 413, "payload_too_large")


# -- 401, 403, 404 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer hr_not-a-real-token", "Basic dXNlcjpwYXNz", "hr_no-scheme"],
)
def test_missing_or_bad_token_is_401(client, automation, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}

    response = post_event(client, SLUG, event_body(), headers=headers)

    assert_error(response, 401, "unauthorized", None)
    assert response["WWW-Authenticate"] == "Bearer"
    assert stored_counts() == (0, 0)


def test_revoked_token_is_401(client, automation):
    api_token, raw = token_issue(name="old")
    api_token.revoked_at = api_token.created_at
    api_token.save()

    response = post_event(client, SLUG, event_body(), token=raw)

    assert_error(response, 401, "unauthorized")
    assert stored_counts() == (0, 0)


def test_token_limited_to_another_automation_is_403(client, automation):
    other = AutomationFactory(slug="billing")
    _, raw = token_issue(name="billing-only", automations=[other])

    response = post_event(client, SLUG, event_body(), token=raw)

    assert_error(response, 403, "forbidden", None)
    assert stored_counts() == (0, 0)


def test_token_limited_to_this_automation_is_accepted(client, automation):
    _, raw = token_issue(name="triage-only", automations=[automation])

    response = post_event(client, SLUG, event_body(), token=raw)

    assert response.status_code == 202


@pytest.mark.parametrize("slug", ["no-such-automation", "Support-Triage", "x%00y", "a" * 300])
def test_unknown_automation_is_404(client, automation, token, slug):
    response = post_event(client, slug, event_body(), token=token)

    assert_error(response, 404, "not_found", None)
    assert stored_counts() == (0, 0)


# -- order of checks ---------------------------------------------------------------------


def test_bad_token_is_401_before_the_automation_is_looked_up(client, automation):
    response = post_event(client, "no-such-automation", event_body(), token="hr_wrong")

    assert_error(response, 401, "unauthorized")


def test_unknown_automation_is_404_before_the_token_scope(client, automation):
    _, raw = token_issue(name="triage-only", automations=[automation])

    response = post_event(client, "no-such-automation", b"not json", token=raw)

    assert_error(response, 404, "not_found")


def test_forbidden_is_403_before_the_body_is_read(client, automation):
    _, raw = token_issue(name="billing-only", automations=[AutomationFactory(slug="billing")])

    response = post_event(client, SLUG, b"not json", token=raw)

    assert_error(response, 403, "forbidden")


def test_json_error_is_400_before_field_errors_and_422_before_conflicts(client, automation, token):
    post_event(client, SLUG, event_body(), token=token)

    assert_error(post_event(client, SLUG, b"{", token=token), 400, "invalid_json")
    changed_and_invalid = event_body(payload={"body": "other"}, extra=1)
    assert_error(
        post_event(client, SLUG, changed_and_invalid, token=token), 422, "validation_error"
    )


# -- 429 ---------------------------------------------------------------------------------


@pytest.fixture
def frozen_clock(monkeypatch):
    """Pin the rate limiter's clock mid-minute, so a window boundary cannot split a test."""
    now = {"t": 1_800_000_030.0}
    monkeypatch.setattr(ratelimit, "clock", lambda: now["t"])
    return now


def test_requests_over_the_rate_limit_are_429_with_retry_after(
    client, automation, token, settings, frozen_clock
):
    settings.HANDRAIL_RATE_LIMIT_PER_MINUTE = 2
    assert post_event(client, SLUG, event_body("a"), token=token).status_code == 202
    assert post_event(client, SLUG, event_body("b"), token=token).status_code == 202

    response = post_event(client, SLUG, event_body("c"), token=token)

    assert_error(response, 429, "rate_limited", None)
    assert response["Retry-After"] == "30"
    assert stored_counts() == (2, 2)
    assert not Event.objects.filter(idempotency_key="c").exists()


def test_rate_limit_is_per_token_and_per_minute(client, automation, token, settings, frozen_clock):
    settings.HANDRAIL_RATE_LIMIT_PER_MINUTE = 1
    _, other = token_issue(name="other")
    assert post_event(client, SLUG, event_body("a"), token=token).status_code == 202
    assert post_event(client, SLUG, event_body("b"), token=token).status_code == 429

    assert post_event(client, SLUG, event_body("c"), token=other).status_code == 202
    frozen_clock["t"] += 60
    assert post_event(client, SLUG, event_body("d"), token=token).status_code == 202


def test_rate_limit_comes_before_body_errors(client, automation, token, settings, frozen_clock):
    settings.HANDRAIL_RATE_LIMIT_PER_MINUTE = 1
    post_event(client, SLUG, event_body("a"), token=token)

    response = post_event(client, SLUG, b"not json", token=token)

    assert_error(response, 429, "rate_limited")


# -- everything answers JSON ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_wrong_method_is_405_json(client, automation, token, method):
    response = client.generic(
        method, f"/api/v1/automations/{SLUG}/events", headers={"Authorization": f"Bearer {token}"}
    )

    assert_error(response, 405, "method_not_allowed", None)
    assert "POST" in response["Allow"]


@pytest.mark.parametrize(
    "path", ["/api/v1/", "/api/v1/nope", "/api/v1/automations/", "/api/v1/runs/1/extra"]
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_api_path_is_404_json(client, db, path, method):
    response = client.generic(method, path, b"{}", content_type="application/json")

    assert_error(response, 404, "not_found", None)


def test_unexpected_failure_is_a_json_500_and_stores_nothing(
    client, automation, token, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("automations.api.event_ingest", broken)

    response = post_event(client, SLUG, event_body(), token=token)

    body = assert_error(response, 500, "internal_error", None)
    assert "fire" not in body["message"]
    assert stored_counts() == (0, 0)


# -- OpenAPI -------------------------------------------------------------------------------


def test_openapi_schema_documents_the_events_endpoint(client, db):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"]["/api/v1/automations/{slug}/events"]["post"]
    body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body_schema["properties"]) == {"idempotency_key", "segment", "source", "payload"}
    assert body_schema["required"] == ["idempotency_key", "payload"]
    assert set(operation["responses"]) == {
        "200",
        "202",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "422",
        "429",
    }
    error_ref = operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    error_schema = schema["components"]["schemas"][error_ref.rsplit("/", 1)[-1]]
    assert set(error_schema["properties"]) == {"error", "message", "field"}
    accepted_ref = operation["responses"]["202"]["content"]["application/json"]["schema"]["$ref"]
    accepted = schema["components"]["schemas"][accepted_ref.rsplit("/", 1)[-1]]
    assert set(accepted["properties"]) == {"run_id", "trace_id", "status"}
    assert operation["security"] == [{"TokenAuth": []}]
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    assert "/api/v1/runs/{run_id}" in schema["paths"]
