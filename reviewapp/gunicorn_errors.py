"""gunicorn's own error responses as the API's JSON error, `{"error", "message", "field"}`.

gunicorn answers a request it cannot parse (bad request line, header too large,
malformed chunk...) itself, before Django sees it, with an HTML page written by
gunicorn.util.write_error. reviewapp/gunicorn.conf.py swaps in write_json_error, which
keeps gunicorn's status and message and only changes the body. Plain Python: this runs
in gunicorn's worker, outside Django.
"""

import json

from gunicorn import util

CODES_BY_STATUS = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def error_response_bytes(*, status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying the JSON error; the connection closes after it."""
    code = CODES_BY_STATUS.get(status) or reason.lower().replace(" ", "_") or "error"
    body = json.dumps({"error": code, "message": message or reason, "field": None}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error's signature, with the JSON body instead of an HTML one."""
    util.write_nonblock(sock, error_response_bytes(status=status_int, reason=reason, message=mesg))


def json_errors_install() -> None:
    """Make this process's gunicorn workers write their own errors as JSON."""
    util.write_error = write_json_error
