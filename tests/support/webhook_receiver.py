"""A real webhook receiver on 127.0.0.1 for tests: records deliveries, answers as scripted.

with WebhookReceiver() as receiver:
    receiver.enqueue(503)                 # first answer 503, then the default 200
    config = {"url": receiver.url("/hooks/route"), ...}
    ...
    [first, second] = receiver.wait_for(2)
    payload = verify(second, secret)      # raises WebhookVerificationError if forged
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


def new_webhook_secret() -> str:
    """A fresh secret in the `whsec_<base64>` form receivers and the adapter expect."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class ReceivedDelivery:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any  # the parsed body, or None when it is not JSON
    received_at: float  # time.time() when the request was read
    status: int  # what the receiver answered


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0
    body: bytes = b'{"ok": true}'


def verify(delivery: ReceivedDelivery, secret: str) -> Any:
    """The payload if the delivery's Standard Webhooks signature holds for `secret`; else raise."""
    return Webhook(secret).verify(delivery.body, delivery.headers)


@dataclass
class WebhookReceiver:
    """A threaded HTTP server on an ephemeral port of 127.0.0.1 (use it as a context manager)."""

    default: Answer = field(default_factory=Answer)
    deliveries: list[ReceivedDelivery] = field(default_factory=list)

    def __post_init__(self):
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns quickly
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._closing.set()  # wakes handlers sleeping on a scripted delay
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._server is not None, "start the receiver first"
        return self._server.server_address[1]

    def url(self, path: str = "/hooks") -> str:
        """The absolute URL of `path` on this receiver."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def enqueue(self, status: int, delay: float = 0.0, body: bytes | str = b"") -> None:
        """Script the next answer: wait `delay` seconds, then answer `status` with `body`."""
        raw = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._answers.append(Answer(status=status, delay=delay, body=raw))

    def wait_for(self, n: int, timeout: float = 5.0) -> list[ReceivedDelivery]:
        """The first `n` deliveries, waiting up to `timeout` seconds for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.deliveries) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {n} deliveries within {timeout} s, got {len(self.deliveries)}"
                    )
                self._arrived.wait(left)
            return list(self.deliveries[:n])

    def reset(self) -> None:
        """Forget deliveries and scripted answers."""
        with self._lock:
            self.deliveries.clear()
            self._answers.clear()

    def _take(self, delivery_of) -> Answer:
        with self._arrived:
            answer = self._answers.popleft() if self._answers else self.default
            delivery = delivery_of(answer.status)
            self.deliveries.append(delivery)
            self._arrived.notify_all()
        return answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that timed out and hung up is part of the script, not a failure.
        pass


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # lets the adapter reuse connections
        # One write per answer and no Nagle: headers and body sent apart on a kept-alive
        # connection meet the client's delayed ACK and every answer takes 40 ms.
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_POST(self):  # noqa: N802 (the http.server naming)
            self._receive()

        def do_PUT(self):  # noqa: N802
            self._receive()

        def do_GET(self):  # noqa: N802
            self._receive()

        def _receive(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None

            def delivery_of(status: int) -> ReceivedDelivery:
                return ReceivedDelivery(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    json=parsed,
                    received_at=time.time(),
                    status=status,
                )

            answer = receiver._take(delivery_of)
            if answer.delay and receiver._closing.wait(answer.delay):
                self.close_connection = True
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format, *args):  # noqa: A002
            pass  # keep test output clean

    return Handler
