"""Under a real gunicorn (the README's command), its own errors are JSON too.

Raw bytes over a socket, because HTTP clients refuse to send what these tests send.
"""

import json

import pytest

from tests.support.gunicorn_server import GunicornServer


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
