"""Where model calls and webhook deliveries may connect: the address policy, and its transport.

Refused unless listed in HANDRAIL_ALLOWED_PRIVATE_HOSTS: loopback, private (10/8,
172.16/12, 192.168/16, fc00::/7), shared (100.64/10), link-local (169.254/16 with the
cloud metadata address 169.254.169.254, fe80::/10), unspecified, multicast and reserved
addresses (fd00:ec2::254 is private), and these inside IPv6 (::ffff:127.0.0.1, 6to4,
NAT64). A host written as a number (2130706433, 0x7f.1, 127.1) is the address it spells,
as the resolver and curl read it. A listed name may resolve anywhere; a listed address
or network (CIDR) may be reached under any name.

The policy is applied twice. When an owner writes a URL (the loader's `url()` check),
its host is judged as written, without DNS. On every connection the host is resolved,
each address judged, and the socket opened to an address that passed, so that a name
cannot resolve to a public address for the check and to a private one for the connect
(DNS rebinding). TLS still verifies the certificate against the host name.

Proxies: the proxy the environment names (`https_proxy`, `http_proxy`, `all_proxy`,
`no_proxy`, read as Python's urllib reads them, for both transports) is used. The
socket then goes to the proxy, so the proxy's host is what is resolved and judged (a
proxy on a private address must be listed); the proxy resolves the target itself, so a
proxied target is judged only as written, and the proxy is the place to filter egress.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
import threading
import urllib.request
from functools import cache, lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from automations.http_client import httpcore, httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

TRANSPORTS = ("httpx", "curl")
LIST_HINT = "list the host in HANDRAIL_ALLOWED_PRIVATE_HOSTS to allow it"
# Names for this machine or a cloud's metadata service that need no DNS to be internal.
INTERNAL_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
    | {"metadata", "metadata.google.internal"}
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# One part of an inet_aton spelling of an IPv4 address: hexadecimal, octal or decimal.
_IPV4_PART = re.compile(r"0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*")


class OutboundRefused(httpx.ConnectError):
    """A connection the address policy refuses; trying again will not help."""


# -- the policy -------------------------------------------------------------------------------


def address_is_internal(address: IPAddress) -> bool:
    """True for every address the policy keeps requests away from (see the module docstring)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_is_internal(embedded)
    if address.version == 6 and address in _IPV4_COMPATIBLE:
        return True  # ::a.b.c.d, deprecated and reserved: never a real destination
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_link_local
        or address.is_loopback
    )


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), else None."""
    if address.version == 4:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def host_address(host: str) -> IPAddress | None:
    """The address a URL's host spells (IPv6, or IPv4 in any inet_aton form); None for a name."""
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _ipv4_spelled(host)


def _ipv4_spelled(host: str) -> ipaddress.IPv4Address | None:
    """127.1, 0x7f.1, 2130706433, 0177.0.0.1: what getaddrinfo and curl take for 127.0.0.1."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(part) for part in parts):
        return None
    *leading, last = [_ipv4_part(part) for part in parts]
    if any(value > 255 for value in leading) or last >= 256 ** (5 - len(parts)):
        return None
    number = last + sum(value << (8 * (3 - index)) for index, value in enumerate(leading))
    return ipaddress.IPv4Address(number)


def _ipv4_part(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    return int(part, 8) if part.startswith("0") else int(part)


@lru_cache(maxsize=8)
def _allowed(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple]:
    """(listed names, listed networks) from HANDRAIL_ALLOWED_PRIVATE_HOSTS."""
    names, networks = set(), []
    for raw in entries:
        entry = raw.strip().lower().removeprefix("[").removesuffix("]")
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        address = _ipv4_spelled(entry)
        if address is not None:
            networks.append(ipaddress.ip_network(address))
        elif "/" in entry:
            raise ImproperlyConfigured(f"HANDRAIL_ALLOWED_PRIVATE_HOSTS: {raw!r} is not a network")
        elif entry:
            names.add(entry.rstrip("."))
    return frozenset(names), tuple(networks)


def _listed_name(host: str) -> bool:
    names, _ = _allowed(tuple(settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS))
    return host.lower().rstrip(".") in names


def _listed_address(address: IPAddress) -> bool:
    _, networks = _allowed(tuple(settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS))
    candidates = {address, _embedded_ipv4(address) or address}
    return any(candidate in network for candidate in candidates for network in networks)


def host_target(host: str) -> str | None:
    """The internal target a URL's host names as written (no DNS), for a message; else None."""
    if _listed_name(host):
        return None
    address = host_address(host)
    if address is None:
        name = host.lower().rstrip(".")
        return host if name in INTERNAL_NAMES or name.endswith(".localhost") else None
    if not address_is_internal(address) or _listed_address(address):
        return None
    shown, meant = host.removeprefix("[").removesuffix("]"), _embedded_ipv4(address) or address
    return shown if shown.lower() == str(meant) else f"{shown}, that is {meant}"


def connection_refusal(*, host: str, address: str) -> str | None:
    """Why a connection made for `host` may not go to `address` (an IP), or None when it may."""
    ip = ipaddress.ip_address(address)
    if not address_is_internal(ip) or _listed_name(host) or _listed_address(ip):
        return None
    if host_address(host) is not None:
        return f"refused: {host_target(host) or host} is a private address; {LIST_HINT}"
    return f"refused: {host} resolves to a private address ({address}); {LIST_HINT}"


def addresses_checked(*, host: str, port: int) -> list[str]:
    """The addresses, in resolver order, a connection made for `host` may go to.

    A listed name comes back as it is, for the connection to resolve as usual.
    Raises OutboundRefused when no address passes, OSError when the name does not resolve.
    """
    if _listed_name(host):
        return [host]
    literal = host_address(host)
    if literal is not None:
        found = [str(literal)]
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(info[4][0] for info in infos))
    refusals = [connection_refusal(host=host, address=address) for address in found]
    allowed = [address for address, refusal in zip(found, refusals, strict=True) if not refusal]
    if not allowed:
        raise OutboundRefused(refusals[0])
    return allowed


def proxy_for(url: httpx.URL) -> str | None:
    """The proxy the environment names for this URL, or None for a direct connection.

    As urllib reads the variables (lower case first; set and empty turns the upper
    case one off), without its walk over the whole environment on every request.
    """
    proxy = _environment(f"{url.scheme}_proxy") or _environment("all_proxy")
    if not proxy:
        return None
    no_proxy = _environment("no_proxy")
    if no_proxy and urllib.request.proxy_bypass_environment(url.host, {"no": no_proxy}):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"  # "host:port", as curl reads it


def _environment(name: str) -> str:
    value = os.environ.get(name)
    return os.environ.get(name.upper(), "") if value is None else value


def target_check(request: httpx.Request) -> None:
    """Raise OutboundRefused when a proxied request's target is internal as written."""
    target = host_target(request.url.host)
    if target is not None:
        message = f"refused: {target} is a private address; {LIST_HINT}"
        raise OutboundRefused(message, request=request)


# -- the transports ---------------------------------------------------------------------------


def transport_for(*, max_response_bytes: int) -> httpx.BaseTransport:
    """The guarded transport HANDRAIL_HTTP_TRANSPORT names, reading at most `max_response_bytes`."""
    name = settings.HANDRAIL_HTTP_TRANSPORT
    if name == "httpx":
        return GuardedTransport(max_response_bytes=max_response_bytes)
    if name == "curl":
        from automations.curl_transport import CurlTransport  # pycurl only when asked for

        return CurlTransport(max_response_bytes=max_response_bytes)
    raise ImproperlyConfigured(
        f"HANDRAIL_HTTP_TRANSPORT must be one of {', '.join(TRANSPORTS)}, got {name!r}"
    )


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's sockets, opened only to addresses the policy allows."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = addresses_checked(host=host, port=port)
        except OSError as exc:  # the name does not resolve
            raise httpcore.ConnectError(str(exc)) from exc
        error = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # the next address, as create_connection does
                error = exc
        raise error


class GuardedTransport(httpx.BaseTransport):
    """httpx's own transport on GuardedBackend; reads at most `max_response_bytes` of a body.

    A longer body is cut there and the answer still stands, as with CurlTransport.
    One connection pool per proxy (or none), made anew in a forked child.
    """

    def __init__(self, *, max_response_bytes: int):
        self.max_response_bytes = max_response_bytes
        self._transports: dict[str, httpx.HTTPTransport] = {}
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = proxy_for(request.url)
        try:
            if proxy:
                target_check(request)
            response = self._transport(proxy or "").handle_request(request)
        except OutboundRefused as exc:
            exc.request = request
            raise
        response.stream = _CappedStream(response.stream, self.max_response_bytes)
        return response

    def close(self) -> None:
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            transport.close()

    def _transport(self, proxy: str) -> httpx.HTTPTransport:
        with self._lock:
            if self._pid != os.getpid():  # the parent's connections are not ours to use
                self._transports, self._pid = {}, os.getpid()
            if proxy not in self._transports:
                self._transports[proxy] = _http_transport(proxy)
            return self._transports[proxy]


def _http_transport(proxy: str) -> httpx.HTTPTransport:
    """An httpx.HTTPTransport whose pool connects through GuardedBackend (via `proxy`, if any)."""
    transport = httpx.HTTPTransport()
    limits = httpx.Limits()
    # HTTPTransport takes no network backend: its pool is swapped for one that has ours.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_ssl_context(),
        proxy=_httpcore_proxy(proxy) if proxy else None,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(),
    )
    return transport


@cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default context (the system's CAs, SSL_CERT_FILE), loaded once per process."""
    return httpx.create_ssl_context()


def _httpcore_proxy(url: str) -> httpcore.Proxy:
    """httpcore's form of an http(s) proxy URL, with its credentials; others are refused."""
    proxy = httpx.Proxy(url=url)
    if proxy.url.scheme not in ("http", "https"):
        raise OutboundRefused(
            f"refused: the httpx transport cannot use the {proxy.url.scheme} proxy the "
            "environment names; set HANDRAIL_HTTP_TRANSPORT=curl"
        )
    return httpcore.Proxy(
        url=httpcore.URL(
            scheme=proxy.url.raw_scheme,
            host=proxy.url.raw_host,
            port=proxy.url.port,
            target=proxy.url.raw_path,
        ),
        auth=proxy.raw_auth,
        headers=proxy.headers.raw,
        ssl_context=proxy.ssl_context,
    )


class _CappedStream(httpx.SyncByteStream):
    """The first `limit` bytes of a response body; closing it closes the connection's stream."""

    def __init__(self, stream: httpx.SyncByteStream, limit: int):
        self._stream = stream
        self._limit = limit

    def __iter__(self):
        room = self._limit
        for chunk in self._stream:
            yield chunk[:room]
            room -= len(chunk)
            if room <= 0:
                break

    def close(self) -> None:
        self._stream.close()
