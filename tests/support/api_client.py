"""Helpers for the ingestion API tests: a token, raw-byte posts, error-body checks."""

import json

from automations.models import Event, Run

EVENTS_URL = "/api/v1/automations/{slug}/events"


def event_body(key: str = "ticket-4711", **overrides) -> dict:
    body = {
        "idempotency_key": key,
        "segment": "enterprise",
        "source": "zendesk",
        "payload": {"subject": "Invoice", "body": "Where is my invoice?"},
    }
    body.update(overrides)
    return body


def as_bytes(body) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


def post_event(client, slug: str, body, *, token: str | None = None, headers=None, **extra):
    """POST raw bytes (or a dict, dumped) to the events endpoint."""
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.generic(
        "POST",
        EVENTS_URL.format(slug=slug),
        as_bytes(body),
        content_type="application/json",
        headers=headers,
        **extra,
    )


def stored_counts() -> tuple[int, int]:
    return Event.objects.count(), Run.objects.count()


def assert_error(response, status: int, code: str, field=...):
    """The response is the contract's JSON error: exactly error, message, field."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message", "field"}
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    if field is not ...:
        assert body["field"] == field
    return body
