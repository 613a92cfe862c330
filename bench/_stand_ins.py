"""Lean stand-ins for what the platform talks to: the model API and a webhook receiver.

In production both run on other machines. Here they share the benchmark's 2
cores with the platform, so they must cost as little as they can: the test
servers in tests/support (http.server, a thread and a parsed message per
request) took about 0.3 ms of CPU per request, which the benchmark would
otherwise charge to the platform. This is a minimal HTTP/1.1 keep-alive server
on asyncio that answers every request from a function, with the same bytes on
the wire as the test servers send.

It understands what the openai SDK and the webhook adapter send: requests with
a Content-Length body (no chunked bodies) on kept-alive connections.
"""

import asyncio
import json
import threading
from collections.abc import Callable
from http import HTTPStatus

# (status, body bytes, extra headers) for (request line, lower-case headers, body).
Handler = Callable[[str, dict[str, str], bytes], tuple[int, bytes, dict[str, str]]]
HEAD_END = b"\r\n\r\n"


class _Connection(asyncio.Protocol):
    def __init__(self, handler: Handler):
        self.handler = handler
        self.buffer = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(HEAD_END)
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", ""):
                self.transport.close()  # nothing the benchmark runs sends one
                return
            length = int(headers.get("content-length") or 0)
            start = end + len(HEAD_END)
            if len(self.buffer) < start + length:
                return
            body, self.buffer = self.buffer[start : start + length], self.buffer[start + length :]
            status, payload, extra = self.handler(lines[0], headers, body)
            head = [
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
                "Content-Type: application/json",
                f"Content-Length: {len(payload)}",
                *(f"{name}: {value}" for name, value in extra.items()),
            ]
            self.transport.write("\r\n".join(head).encode("latin-1") + HEAD_END + payload)


class LeanServer:
    """An HTTP server on an ephemeral port of 127.0.0.1, its event loop in a thread of its own."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            self.loop.create_server(lambda: _Connection(self.handler), "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"


class ScriptedModel:
    """Answers every Chat Completions request at once with the same completion body."""

    def __init__(self, completion: dict):
        self.body = json.dumps(completion).encode()
        self.requests = 0
        self.server = LeanServer(self.answer)
        self.base_url = self.server.url("/v1")

    def answer(self, request_line: str, headers: dict, body: bytes):
        self.requests += 1
        return 200, self.body, {"x-request-id": f"req_{self.requests}"}


class Receiver:
    """Answers 200 to every delivery and keeps each one's headers and body for verifying later."""

    def __init__(self):
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.server = LeanServer(self.answer)

    def answer(self, request_line: str, headers: dict, body: bytes):
        self.deliveries.append((headers, body))  # list.append is atomic under the GIL
        return 200, b'{"ok": true}', {}
