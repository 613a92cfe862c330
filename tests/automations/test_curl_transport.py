"""The libcurl transport under the SDK and the webhook adapter, against a real local server.

The SDK's and the adapter's own tests (test_openai_provider, test_webhook_adapter)
run through it too; these pin what the transport itself promises.
"""

import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from automations.curl_transport import CurlTransport, _trusted_certificates
from automations.http_client import httpx
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


def client(max_response_bytes: int = 1 << 20, **options) -> httpx.Client:
    return httpx.Client(transport=CurlTransport(max_response_bytes=max_response_bytes), **options)


def test_the_request_arrives_whole_and_the_answer_comes_back(receiver):
    receiver.enqueue(201, body=b'{"created": true}')

    response = client().post(
        receiver.url("/hooks/a?x=1"), content=b'{"n": 1}', headers={"X-Trace": "abc"}
    )

    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.json() == {"created": True}
    [delivery] = receiver.wait_for(1)
    assert (delivery.method, delivery.path, delivery.body) == ("POST", "/hooks/a?x=1", b'{"n": 1}')
    assert delivery.headers["x-trace"] == "abc"
    assert delivery.headers["content-length"] == "8"


def test_a_large_body_goes_at_once_without_asking_to_continue(receiver):
    body = b"x" * 2_000_000  # libcurl would send "Expect: 100-continue" and wait up to 1 s

    response = client().post(receiver.url("/hooks"), content=body)

    assert response.status_code == 200
    [delivery] = receiver.wait_for(1)
    assert "expect" not in delivery.headers
    assert delivery.body == body


def test_a_body_past_the_cap_is_cut_and_the_handle_still_works(receiver):
    receiver.enqueue(200, body=b"x" * 1_000_000)
    http = client(max_response_bytes=100)

    cut = http.get(receiver.url("/big"))
    after = http.get(receiver.url("/small"))

    assert (cut.status_code, cut.content) == (200, b"x" * 100)
    assert (after.status_code, after.content) == (200, b'{"ok": true}')


def test_a_server_that_does_not_answer_in_time_is_a_read_timeout(receiver):
    receiver.enqueue(200, delay=2)

    with pytest.raises(httpx.ReadTimeout):
        client(timeout=0.2).get(receiver.url("/slow"))


def test_a_closed_port_is_a_connect_error(receiver):
    url = receiver.url("/gone")
    receiver.stop()

    with pytest.raises(httpx.ConnectError):
        client().get(url)


def test_only_http_and_https_are_spoken():
    with pytest.raises(httpx.UnsupportedProtocol):
        CurlTransport(max_response_bytes=100).handle_request(
            httpx.Request("GET", "file:///etc/hostname")
        )


def test_the_proxy_the_environment_names_is_used(receiver, monkeypatch):
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{receiver.port}")

    response = client().post("http://receiver.invalid/hooks/x", content=b"{}")

    assert response.status_code == 200
    [delivery] = receiver.wait_for(1)
    assert delivery.path == "http://receiver.invalid/hooks/x"  # the proxy's request line


def test_threads_share_a_client_without_mixing_their_requests(receiver):
    http = client()
    statuses = []

    def post(thread: int) -> None:
        for n in range(10):
            response = http.post(receiver.url("/hooks"), content=f"{thread}-{n}".encode())
            statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 40
    bodies = {d.body.decode() for d in receiver.wait_for(40)}
    assert bodies == {f"{t}-{n}" for t in range(4) for n in range(10)}


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate: (url, certificate file)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/", cert
    server.shutdown()
    server.server_close()


def test_a_certificate_nobody_trusts_is_refused(tls_server):
    url, _ = tls_server

    with pytest.raises(httpx.ConnectError, match="certificate"):
        client().get(url)


def test_the_certificates_python_trusts_are_trusted(tls_server, monkeypatch):
    url, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # as for Python's ssl and httpx
    _trusted_certificates.cache_clear()
    try:
        response = client().get(url)
    finally:
        _trusted_certificates.cache_clear()

    assert (response.status_code, response.content) == (200, b"ok")
