"""Where the service may send a request that carries the EHR's FHIR token.

URLs are compared parsed, never as text prefixes: scheme, host and port exactly, the path on a
segment boundary (`/r4` admits `/r4/Patient`, not `/r4x`), userinfo and dot segments refused.
Addresses are judged after DNS resolution, on the address actually connected to (see
cds.fhir.transport), so a name that resolves to a cloud-metadata address cannot be used to
reach it; IPv4 addresses embedded in IPv6 (`::ffff:169.254.169.254`, NAT64, 6to4) count as
the IPv4 address they carry.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# Link-local covers 169.254.169.254 (AWS, GCP, Azure, OpenStack metadata) and fe80::/10.
CLOUD_METADATA = {
    ipaddress.ip_address("fd00:ec2::254"),  # AWS instance metadata over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud metadata
    ipaddress.ip_address("168.63.129.16"),  # Azure platform (WireServer)
}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
BLOCKED_HOSTNAMES = {"metadata.google.internal", "metadata", "instance-data",
                     "metadata.azure.internal"}


@dataclass(frozen=True)
class Origin:
    """The parts of an http(s) URL that decide where a request goes."""

    scheme: str
    host: str
    port: int
    path: str  # decoded, without a trailing slash ("" for the root)


def parse_origin(url: str) -> Origin | None:
    """The origin and path of a URL, or None when it must not be used at all: not http(s),
    no host, a user name or password in it, a bad port, or `.`/`..` segments in its path."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    path = unquote(parts.path)
    if "\\" in path or any(segment in (".", "..") for segment in path.split("/")):
        return None
    return Origin(scheme, parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[scheme],
                  path.rstrip("/"))


def within(url: str, base: str) -> bool:
    """Is `url` on the same scheme, host and port as `base`, at or below its path?"""
    inner, outer = parse_origin(url), parse_origin(base)
    if inner is None or outer is None:
        return False
    if (inner.scheme, inner.host, inner.port) != (outer.scheme, outer.host, outer.port):
        return False
    return inner.path == outer.path or inner.path.startswith(outer.path + "/")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address in NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def refused_address(host: str) -> str | None:
    """Why the service must never connect to this IP address, or None if it may.

    Loopback and private addresses are allowed (hospital FHIR servers live there); what no FHIR
    server can be is refused: link-local (cloud metadata), unspecified, multicast, and the
    known metadata addresses outside link-local."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        candidates += _embedded_ipv4(address)
    for candidate in candidates:
        if candidate in CLOUD_METADATA:
            return "cloud metadata"
        if candidate.is_link_local:
            return "link-local (cloud metadata)"
        if candidate.is_unspecified:
            return "unspecified"
        if candidate.is_multicast:
            return "multicast"
    return None


def refused_host(host: str) -> str | None:
    """A first check on the host as written in the URL (names are checked again, resolved,
    when the connection is made)."""
    name = host.lower().strip("[]").rstrip(".")
    if name in BLOCKED_HOSTNAMES:
        return "cloud metadata"
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return None  # a name: judged on the addresses it resolves to
    return refused_address(name)
