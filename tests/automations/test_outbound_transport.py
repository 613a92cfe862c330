"""Both outbound transports against real local servers: caps, proxies, TLS under the policy.

test_curl_transport pins what libcurl's transport promises on its own; these run
through outbound.transport_for, as the adapter and the provider do, on each transport.
"""

import os
import shutil
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from automations import outbound
from automations.curl_transport import _trusted_certificates
from automations.http_client import httpx
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
HINT = "list the host in HANDRAIL_ALLOWED_PRIVATE_HOSTS to allow it"


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def no_proxy_variables(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def client(max_response_bytes: int = 1 << 20, **options) -> httpx.Client:
    transport = outbound.transport_for(max_response_bytes=max_response_bytes)
    return httpx.Client(transport=transport, **options)


def test_a_body_past_the_cap_is_cut_and_the_client_still_works(http_transport, receiver):
    receiver.enqueue(200, body=b"x" * 1_000_000)
    http = client(max_response_bytes=100)

    cut = http.get(receiver.url("/big"))
    after = http.get(receiver.url("/small"))

    assert (cut.status_code, cut.content) == (200, b"x" * 100)
    assert (after.status_code, after.content) == (200, b'{"ok": true}')


def test_the_proxy_the_environment_names_is_used(
    http_transport, receiver, monkeypatch, no_proxy_variables
):
    monkeypatch.setenv("http_proxy", f"127.0.0.1:{receiver.port}")

    response = client().post("http://receiver.invalid/hooks/x", content=b"{}")

    assert response.status_code == 200
    [delivery] = receiver.wait_for(1)
    assert delivery.path == "http://receiver.invalid/hooks/x"  # the proxy's request line


def test_no_proxy_sends_directly(http_transport, receiver, monkeypatch, no_proxy_variables):
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    response = client().post(receiver.url("/hooks/x"), content=b"{}")

    assert response.status_code == 200
    assert receiver.wait_for(1)[0].path == "/hooks/x"


def test_a_proxied_target_that_is_internal_as_written_is_refused(
    http_transport, receiver, monkeypatch, no_proxy_variables
):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{receiver.port}")

    with pytest.raises(outbound.OutboundRefused) as refused:
        client().get("http://169.254.169.254/latest/meta-data/")

    assert str(refused.value) == f"refused: 169.254.169.254 is a private address; {HINT}"
    assert receiver.deliveries == []


def test_a_proxy_on_an_unlisted_private_address_is_refused(
    http_transport, receiver, monkeypatch, settings, no_proxy_variables
):
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = []
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{receiver.port}")

    with pytest.raises(outbound.OutboundRefused, match="^refused: 127.0.0.1 is a private"):
        client().get("http://receiver.invalid/hooks/x")

    assert receiver.deliveries == []


def test_an_unknown_transport_name_is_a_configuration_error(settings):
    settings.HANDRAIL_HTTP_TRANSPORT = "carrier-pigeon"

    with pytest.raises(ImproperlyConfigured, match="must be one of httpx, curl"):
        outbound.transport_for(max_response_bytes=100)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("HANDRAIL_HTTP_TRANSPORT", "pycurl", "HANDRAIL_HTTP_TRANSPORT must be httpx or curl"),
        ("HANDRAIL_ALLOWED_PRIVATE_HOSTS", "10.0.0.0/33", "'10.0.0.0/33' is not an IP network"),
    ],
)
def test_bad_outbound_settings_stop_start_up(variable, value, message, tmp_path):
    env = {**os.environ, variable: value, "HANDRAIL_VAR_DIR": str(tmp_path)}

    result = subprocess.run(
        [sys.executable, "-c", "import reviewapp.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """An HTTPS server on 127.0.0.1 whose certificate names only `localhost`, trusted."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost"],
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
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    _trusted_certificates.cache_clear()
    outbound._ssl_context.cache_clear()
    yield server.server_address[1]
    _trusted_certificates.cache_clear()
    outbound._ssl_context.cache_clear()
    server.shutdown()
    server.server_close()


def test_tls_verifies_the_host_name_on_the_checked_address(http_transport, tls_server, settings):
    # The address is listed, the name is not: the connection goes to the checked
    # address and the certificate must still name the host.
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1", "::1"]
    http = client()

    response = http.get(f"https://localhost:{tls_server}/")
    with pytest.raises(httpx.ConnectError, match="certificate|IP address mismatch"):
        http.get(f"https://127.0.0.1:{tls_server}/")

    assert (response.status_code, response.content) == (200, b"ok")
