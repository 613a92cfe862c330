"""Under a real gunicorn (the README's command): its own errors are JSON, chunked bodies are read.

Raw bytes over a socket, because HTTP clients refuse to send what these tests send.
"""

import hashlib
import json

import pytest
from django.db import connection

from automations.models import Event
from catalog.tokens import token_issue
from tests.factories import AutomationFactory
from tests.support.api_client import as_bytes, event_body
from tests.support.celery_worker import database_url
from tests.support.gunicorn_server import GunicornServer

SLUG = "support-triage"
LIMIT = 2000


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and body of one HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def assert_json_error(raw: bytes, status: int, code: str) -> dict:
    """The response is the contract's JSON error: exactly error, message, field (null)."""
    answered, headers, body = parse_response(raw)
    assert answered == status, raw[:500]
    assert headers["content-type"].startswith("application/json"), raw[:500]
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)
    assert set(error) == {"error", "message", "field"}
    assert error["error"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["field"] is None
    return error


def chunked(body: bytes, size: int = 100) -> bytes:
    """`body` in Transfer-Encoding: chunked framing, `size` bytes a chunk."""
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def chunked_post(token: str, framed: bytes) -> bytes:
    return (
        f"POST /api/v1/automations/{SLUG}/events HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
        "\r\n"
    ).encode() + framed


# -- gunicorn's own errors ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    """No database: gunicorn answers these requests before Django is reached."""
    with GunicornServer() as running:
        yield running


def test_malformed_request_line_is_a_json_400(server):
    raw = server.request(b"NOT AN HTTP REQUEST\r\n\r\n")

    assert_json_error(raw, 400, "bad_request")


def test_invalid_header_is_a_json_400(server):
    raw = server.request(b"GET /api/v1/runs/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n")

    assert_json_error(raw, 400, "bad_request")


def test_header_over_gunicorns_limit_is_a_json_431(server):
    big = b"x" * 9000  # gunicorn's limit_request_field_size is 8190 bytes
    raw = server.request(
        b"GET /api/v1/runs/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + big + b"\r\n\r\n"
    )

    assert_json_error(raw, 431, "headers_too_large")


def test_too_many_headers_is_a_json_431(server):
    headers = b"".join(b"X-H%d: 1\r\n" % n for n in range(150))  # the limit is 100 fields
    raw = server.request(b"GET /api/v1/runs/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")

    assert_json_error(raw, 431, "headers_too_large")


def test_request_line_over_gunicorns_limit_is_a_json_414(server):
    raw = server.request(b"GET /api/v1/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    assert_json_error(raw, 414, "uri_too_long")


def test_requests_gunicorn_passes_on_are_still_answered_by_django(server):
    raw = server.request(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    status, headers, body = parse_response(raw)
    assert status == 200
    assert json.loads(body)["info"]["title"] == "Handrail API"


# -- chunked bodies (PostgreSQL: the server process needs the test database) ---------------


@pytest.fixture(scope="module")
def db_server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        vendor = connection.vendor
        url = database_url() if vendor == "postgresql" else ""
    if not url:
        pytest.skip("needs PostgreSQL (set DATABASE_URL): the server shares the test database")
    env = {"DATABASE_URL": url, "HANDRAIL_MAX_EVENT_BYTES": str(LIMIT)}
    with GunicornServer(env=env) as running:
        yield running


@pytest.fixture
def token(db_server, transactional_db):
    AutomationFactory(slug=SLUG)
    _, raw = token_issue(name="chunked-client")
    return raw


@pytest.mark.postgres
def test_chunked_body_without_content_length_is_read_and_stored(db_server, token):
    body = as_bytes(event_body("chunked-1"))

    raw = db_server.request(chunked_post(token, chunked(body, size=7)))

    status, _, answer = parse_response(raw)
    assert status == 202, raw
    event = Event.objects.get(idempotency_key="chunked-1")
    assert str(event.run.pk) == json.loads(answer)["run_id"]
    assert event.payload == event_body()["payload"]
    assert event.body_sha256 == hashlib.sha256(body).hexdigest()


@pytest.mark.postgres
def test_chunked_body_of_exactly_the_limit_is_accepted(db_server, token):
    base = as_bytes(event_body("chunked-limit", payload={"pad": ""}))
    body = base.replace(b'"pad": ""', b'"pad": "' + b"x" * (LIMIT - len(base)) + b'"')
    assert len(body) == LIMIT

    raw = db_server.request(chunked_post(token, chunked(body, size=300)))

    assert parse_response(raw)[0] == 202, raw


@pytest.mark.postgres
def test_chunked_body_over_the_limit_is_a_json_413_and_nothing_is_stored(db_server, token):
    body = as_bytes(event_body("chunked-big", payload={"pad": "x" * LIMIT}))

    raw = db_server.request(chunked_post(token, chunked(body, size=500)))

    assert_json_error(raw, 413, "payload_too_large")
    assert not Event.objects.exists()


@pytest.mark.postgres
def test_malformed_chunk_is_a_json_400_and_nothing_is_stored(db_server, token):
    raw = db_server.request(chunked_post(token, b"zz\r\n{}\r\n0\r\n\r\n"))

    assert_json_error(raw, 400, "bad_request")
    assert not Event.objects.exists()
