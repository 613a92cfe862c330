"""An httpx transport on libcurl (pycurl), for the openai SDK and the webhook adapter.

Opt-in (HANDRAIL_HTTP_TRANSPORT=curl): httpx's own transport (httpcore and h11,
pure Python) costs about 0.4 ms of CPU per request more than libcurl does, which
counts when a worker sends many requests, not when it waits on a model.
libcurl does the HTTP: keep-alive connections, TLS, proxies, timeouts. This
module maps an httpx.Request onto a curl handle, the answer back onto an
httpx.Response, and libcurl's errors onto httpx's exceptions, so the SDK and
the adapter above see what httpx's transport would give them. It keeps to the
address policy of automations/outbound.py: Python chooses the proxy (curl is
told, so both transports agree), and every socket curl opens goes through a
callback that refuses an address the policy does not allow.
"""

import io
import os
import socket
import ssl
import threading
from functools import cache

import pycurl

from automations import outbound
from automations.http_client import httpx

# Headers curl must write itself, from the body it sends.
_SKIPPED_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"expect"})
_CONNECT_FAILED = {
    pycurl.E_COULDNT_CONNECT,
    pycurl.E_COULDNT_RESOLVE_HOST,
    pycurl.E_COULDNT_RESOLVE_PROXY,
    pycurl.E_SSL_CONNECT_ERROR,
    pycurl.E_PEER_FAILED_VERIFICATION,
}
_BAD_URL = {pycurl.E_UNSUPPORTED_PROTOCOL, pycurl.E_URL_MALFORMAT}


class CurlTransport(httpx.BaseTransport):
    """Sends each request on this thread's curl handle; reads at most `max_response_bytes`.

    A longer body is cut there, and the answer still stands: the callers need
    its status and, at most, its beginning (a webhook receiver's excerpt) or a
    completion far smaller than the cap.
    """

    def __init__(self, *, max_response_bytes: int):
        self.max_response_bytes = max_response_bytes
        # A curl handle is not thread-safe, and a forked child must not share its sockets.
        self._local = threading.local()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        curl = self._curl()
        body = io.BytesIO()
        head: list[bytes] = []
        cut = False

        def write(chunk: bytes):
            nonlocal cut
            room = self.max_response_bytes - body.tell()
            body.write(chunk[: max(room, 0)])
            if len(chunk) > room:
                cut = True
                return 0  # stops the transfer (E_WRITE_ERROR), handled below
            return None

        def header(line: bytes) -> None:
            if line.startswith(b"HTTP/"):
                head.clear()  # a 1xx answer came first: keep the final one only
            head.append(line)

        verdicts: list[str] = []  # per socket curl asked for: "" opened, else why refused
        _request_set(curl, request)
        _connection_guard(curl, request, verdicts)
        curl.setopt(pycurl.WRITEFUNCTION, write)
        curl.setopt(pycurl.HEADERFUNCTION, header)
        try:
            curl.perform()
        except pycurl.error as exc:
            code, message = exc.args
            if verdicts and all(verdicts) and code in _CONNECT_FAILED:
                raise outbound.OutboundRefused(verdicts[0], request=request) from None
            if not (code == pycurl.E_WRITE_ERROR and cut):
                raise _httpx_error(curl, code, message, request) from None
        status_line, headers = _head_parse(head)
        version, _, rest = status_line.partition(b" ")
        reason = rest.partition(b" ")[2]
        return httpx.Response(
            curl.getinfo(pycurl.RESPONSE_CODE),
            headers=headers,
            stream=httpx.ByteStream(body.getvalue()),
            extensions={"http_version": version, "reason_phrase": reason},
            request=request,
        )

    def close(self) -> None:
        curl = getattr(self._local, "curl", None)
        if curl is not None:
            curl.close()
            self._local.curl = None

    def _curl(self) -> pycurl.Curl:
        local = self._local
        if getattr(local, "curl", None) is None or local.pid != os.getpid():
            local.curl, local.pid = pycurl.Curl(), os.getpid()
        else:
            local.curl.reset()  # options only: live connections and caches stay
        return local.curl


def _request_set(curl: pycurl.Curl, request: httpx.Request) -> None:
    """The request's URL, method, headers, body and timeouts, as curl options."""
    curl.setopt(pycurl.URL, str(request.url))
    curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)  # as httpx: no ftp://
    for option, value in _trusted_certificates():
        curl.setopt(option, value)
    curl.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM, safe in threads
    content = request.read()
    if request.method == "GET" and not content:
        curl.setopt(pycurl.HTTPGET, 1)
    elif request.method == "HEAD":
        curl.setopt(pycurl.NOBODY, 1)
    else:
        curl.setopt(pycurl.CUSTOMREQUEST, request.method)
        curl.setopt(pycurl.POSTFIELDS, content)
    headers = [
        f"{name.decode('latin-1')}: {value.decode('latin-1')}"
        for name, value in request.headers.raw
        if name.lower() not in _SKIPPED_HEADERS
    ]
    # No "Expect: 100-continue" (libcurl's, above 1 MB) and its wait of up to a second.
    curl.setopt(pycurl.HTTPHEADER, [*headers, "Expect:"])
    timeouts = request.extensions.get("timeout", {})
    connect, read = timeouts.get("connect"), timeouts.get("read")
    if connect is not None:
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(connect * 1000)))
    if read is not None:
        # curl bounds the whole exchange where httpx bounded each read: never longer.
        curl.setopt(pycurl.TIMEOUT_MS, max(1, int(read * 1000)))


def _connection_guard(curl: pycurl.Curl, request: httpx.Request, verdicts: list[str]) -> None:
    """The proxy outbound.proxy_for chose, and a socket callback that keeps to the policy.

    Each socket's verdict goes to `verdicts`; after a refused address curl tries the next.
    """
    proxy = outbound.proxy_for(request.url)
    if proxy:
        outbound.target_check(request)
    curl.setopt(pycurl.PROXY, proxy or "")  # "": no proxy, whatever the environment says
    curl.setopt(pycurl.NOPROXY, "")  # no_proxy was read already, by proxy_for
    host = httpx.URL(proxy).host if proxy else request.url.host

    def socket_open(purpose, address):
        refusal = outbound.connection_refusal(host=host, address=address.addr[0])
        verdicts.append(refusal or "")
        if refusal:
            return pycurl.SOCKET_BAD
        # pycurl hands curl a duplicate of this socket's descriptor.
        return socket.socket(address.family, address.socktype, address.protocol)

    curl.setopt(pycurl.OPENSOCKETFUNCTION, socket_open)


@cache
def _trusted_certificates() -> list[tuple[int, str]]:
    """The system's CA certificates, as Python's ssl (and so httpx) finds them.

    The wheel's own libcurl was built elsewhere and may look in another place.
    """
    paths = ssl.get_default_verify_paths()
    options = [(pycurl.CAINFO, paths.cafile)] if paths.cafile else []
    return options + ([(pycurl.CAPATH, paths.capath)] if paths.capath else [])


def _head_parse(lines: list[bytes]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(status line, [(name, value)]) from the raw header lines of the final answer."""
    status_line = lines[0].strip() if lines else b"HTTP/1.1"
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            headers.append((name.strip(), value.strip()))
    return status_line, headers


def _httpx_error(curl: pycurl.Curl, code: int, message: str, request: httpx.Request):
    """The httpx exception httpx's own transport raises for the same failure."""
    if code == pycurl.E_OPERATION_TIMEDOUT:
        connected = curl.getinfo(pycurl.CONNECT_TIME) > 0
        kind = httpx.ReadTimeout if connected else httpx.ConnectTimeout
    elif code in _CONNECT_FAILED:
        kind = httpx.ConnectError
    elif code in _BAD_URL:
        kind = httpx.UnsupportedProtocol
    elif code == pycurl.E_SEND_ERROR:
        kind = httpx.WriteError
    elif code == pycurl.E_GOT_NOTHING:
        kind = httpx.RemoteProtocolError
    else:
        kind = httpx.ReadError
    return kind(message, request=request)
