"""A scripted OpenAI-compatible Chat Completions server on 127.0.0.1 for tests and benchmarks.

    with ModelServer() as server:
        server.enqueue(error(429, "slow down"), completion({"intent": "route_ticket", ...}))
        ...  # point a client at server.base_url
        assert len(server.requests) == 2

Scripted responses are consumed in order; when the script is empty the server
answers with `server.default` (a Response, or a callable taking the recorded
request and returning one). Every answer carries an `x-request-id` header.
"""

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODEL = "gpt-4.1-mini"


@dataclass
class Response:
    """One scripted answer: status, JSON body (or raw text), a delay before answering, headers."""

    status: int = 200
    body: Any = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    """What a client sent: method, path, headers (lower-case names) and the parsed JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def completion(
    content: str | dict,
    *,
    model: str = DEFAULT_MODEL,
    prompt_tokens: int = 120,
    completion_tokens: int = 30,
    finish_reason: str = "stop",
    delay: float = 0.0,
) -> Response:
    """A Chat Completion whose first choice says `content` (a dict is sent as its JSON text)."""
    text = content if isinstance(content, str) else json.dumps(content)
    message = {"role": "assistant", "content": text, "refusal": None}
    return Response(
        body=_completion_body(message, model, prompt_tokens, completion_tokens, finish_reason),
        delay=delay,
    )


def refusal(text: str, *, model: str = DEFAULT_MODEL) -> Response:
    """A Chat Completion in which the model refuses with `text`."""
    message = {"role": "assistant", "content": None, "refusal": text}
    return Response(body=_completion_body(message, model, 50, 10, "stop"))


def error(status: int, message: str = "", *, headers: dict[str, str] | None = None) -> Response:
    """An OpenAI-style error answer."""
    body = {
        "error": {
            "message": message or f"error {status}",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    return Response(status=status, body=body, headers=dict(headers or {}))


def _completion_body(
    message: dict, model: str, prompt_tokens: int, completion_tokens: int, finish_reason: str
) -> dict:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ModelServer:
    """A real threaded HTTP server bound to 127.0.0.1 on an ephemeral port."""

    def __init__(self, *, default: Response | Callable[[RecordedRequest], Response] | None = None):
        self.default = default or error(500, "the model server has no scripted response left")
        self.requests: list[RecordedRequest] = []
        self._script: deque[Response] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def enqueue(self, *responses: Response) -> None:
        """Answer the next requests with `responses`, in order."""
        with self._lock:
            self._script.extend(responses)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self.requests.clear()

    def start(self) -> "ModelServer":
        # A short poll interval makes stop() quick; the default makes it wait 0.5 s.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _respond(self, request: RecordedRequest) -> tuple[Response, str]:
        with self._lock:
            self.requests.append(request)
            scripted = self._script.popleft() if self._script else None
            request_id = f"req_{next(self._ids):06d}"
        response = scripted or self.default
        if callable(response):
            response = response(request)
        return response, request_id


def _handler_for(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses connections
        # One write per answer and no Nagle: headers and body sent apart on a kept-alive
        # connection meet the client's delayed ACK and every answer takes 40 ms.
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            request = RecordedRequest(
                method="POST",
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            self._send(*server._respond(request))

        def do_GET(self):
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = RecordedRequest("GET", self.path, headers, None)
            self._send(*server._respond(request))

        def _send(self, response: Response, request_id: str):
            if response.delay:
                time.sleep(response.delay)
            body = response.body
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            headers = {
                "Content-Type": "application/json",
                "x-request-id": request_id,
                **response.headers,
            }
            try:
                self.send_response(response.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (a timeout test); nothing is listening any more.
                self.close_connection = True

        def log_message(self, format, *args):
            pass  # keep test output quiet

    return Handler
