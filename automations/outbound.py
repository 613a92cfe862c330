"""Where model calls and webhook deliveries may connect: the address policy.

Refused unless listed in HANDRAIL_ALLOWED_PRIVATE_HOSTS: loopback, private (10/8,
172.16/12, 192.168/16, fc00::/7), shared (100.64/10), link-local (169.254/16 with the
cloud metadata address 169.254.169.254, fe80::/10), unspecified, multicast and reserved
addresses (fd00:ec2::254 is private), and these inside IPv6 (::ffff:127.0.0.1, 6to4,
NAT64). A host written as a number (2130706433, 0x7f.1, 127.1) is the address it spells,
as the resolver and curl read it. A listed name may resolve anywhere; a listed address
or network (CIDR) may be reached under any name.

When an owner writes a URL (the loader's `url()` check), its host is judged as
written, without DNS.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
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
