"""Which URLs and network addresses a crawl may reach: the allow list, then the resolved address.

Two checks, in this order, both before any byte is sent:

1. ``url_refusal``: the URL's scheme is http(s) and its host (or host:port) is in the allow list.
2. ``GuardedResolver``: the HTTP client's (aiohttp's) public resolver hook resolves the host and
   refuses every address that is not globally routable (loopback, private, link-local, cloud
   metadata, shared, reserved, multicast) unless the allow list names that exact IP; the connector
   then connects to the addresses it returned. Checking inside the connection layer, rather than
   resolving once up front, closes DNS rebinding: the address checked is the address connected to,
   for every connection. IP literals skip resolution, so ``address_refusal`` is applied to them
   directly before the request.

An address passes only when it is globally reachable: outside every block of the IANA IPv4 and IPv6
special-purpose address registries (RFC 6890 and updates), and for IPv6 inside global unicast
2000::/3. IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``,
NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo) are judged by that IPv4 address too, so
``64:ff9b::a9fe:a9fe`` is the metadata address 169.254.169.254. The allow list's exception for a
named IP respects the port: ``127.0.0.1:9`` allows 127.0.0.1 on port 9 only.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from mlops_pack.core.errors import MlopsError

# IANA special-purpose registries (iana.org/assignments/iana-ipv4-special-registry and -ipv6-); the
# few blocks marked globally reachable there (AS112, AMT, 192.0.0.9/10) are refused too: no crawl
# target lives in them.
SPECIAL_V4 = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"))
SPECIAL_V6 = tuple(ipaddress.ip_network(n) for n in (
    "2001::/23", "2001:db8::/32", "2002::/16", "2620:4f:8000::/48", "3fff::/20", "5f00::/16"))
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known prefix: IPv4 address in the last 32 bits
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(MlopsError, ConnectionRefusedError):
    """The host resolved to an address the allow list does not name explicitly; nothing was sent."""


class UrlPolicy:
    """The allow list of one source: ``host`` or ``host:port`` entries (IPv6 as ``[::1]:port``)."""

    def __init__(self, allowed_hosts: list[str]):
        self.entries = {h.strip().lower() for h in allowed_hosts}
        # IP -> ports it is named with (None: any port, when an entry names the IP without a port)
        self.named_ips: dict[Any, set[int] | None] = {}
        for entry in self.entries:
            named = _ip_and_port(entry)
            if named is None:
                continue
            ip, port = named
            ports = self.named_ips.get(ip, set())
            self.named_ips[ip] = None if port is None or ports is None else {*ports, port}

    def url_refusal(self, url: str) -> str | None:
        """Why ``url`` must not be fetched by the allow list, or None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return f"scheme {parts.scheme!r} is not http(s)"
        if not parts.hostname:
            return "URL has no host"
        if parts.netloc.lower() not in self.entries and parts.hostname not in self.entries:
            return f"host {parts.netloc!r} is not in source.allowed_hosts {sorted(self.entries)}"
        return None

    def literal_refusal(self, url: str) -> str | None:
        """``address_refusal`` for a URL whose host is an IP literal (no DNS, so no resolver), or None."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return None  # a name: the resolver checks every address it resolves to
        return self.address_refusal(host, parts.port or DEFAULT_PORTS.get(parts.scheme))

    def address_refusal(self, address: str, port: int | None = None) -> str | None:
        """Why connecting to the resolved ``address`` on ``port`` is refused, or None.

        ``port=None`` (unknown) matches only allow-list IPs named without a port.
        """
        ip = _plain(ipaddress.ip_address(address.split("%")[0]))
        if ip in self.named_ips and (self.named_ips[ip] is None or port in self.named_ips[ip]):
            return None
        special = special_reason(ip)
        if special is None:
            return None
        where = f"{ip}" if port is None else f"{ip} port {port}"
        return (f"address {where} is loopback, private, link-local or reserved ({special}); name it in "
                f"source.allowed_hosts (with this port) to allow it")


def _ip_and_port(entry: str) -> tuple[Any, int | None] | None:
    """(IP, port or None) of an allow-list entry naming an IP (``1.2.3.4``, ``1.2.3.4:80``, ``::1``,
    ``[::1]``, ``[::1]:80``), else None."""
    host, port = entry, None
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return _plain(ip), int(port) if port and port.isdigit() else None


def _plain(ip):
    """An IPv4-mapped IPv6 address as its IPv4 address (the same host), anything else unchanged."""
    return getattr(ip, "ipv4_mapped", None) or ip


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries: IPv4-compatible, NAT64, 6to4, Teredo (server, client)."""
    found = []
    if ip in IPV4_COMPATIBLE or ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour:
        found.append(ip.sixtofour)
    if ip.teredo:
        found.extend(ip.teredo)
    return found


def special_reason(ip) -> str | None:
    """Which special-purpose block ``ip`` is in (so it is not fetched), or None when it is global."""
    if ip.version == 4:
        block = next((n for n in SPECIAL_V4 if ip in n), None)
        if block is not None or not ip.is_global:
            return f"in {block or 'a non-global block'}"
        return None
    for inner in embedded_ipv4(ip):
        if special_reason(inner):
            return f"carries IPv4 {inner}, {special_reason(inner)}"
    if ip in NAT64:
        return None  # the well-known NAT64 prefix only translates: its IPv4 address decides
    if ip not in GLOBAL_UNICAST:
        return "outside global unicast 2000::/3"
    block = next((n for n in SPECIAL_V6 if ip in n), None)
    if block is not None or not ip.is_global:
        return f"in {block or 'a non-global block'}"
    return None


class GuardedResolver:
    """An aiohttp resolver (``aiohttp.abc.AbstractResolver``) that refuses unsafe addresses.

    The connector connects to exactly the addresses this returns, so the address checked is the
    address connected to. The crawl's connector disables aiohttp's DNS cache, so every new
    connection is resolved and checked again. Made by ``guarded_resolver`` (aiohttp is imported
    lazily); IP literals never reach a resolver, so ``Fetcher`` checks those itself.
    """

    def __init__(self, inner: Any, policy: UrlPolicy):
        self.inner, self.policy = inner, policy

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        infos = await self.inner.resolve(host, port, family)
        # Every address must pass: a name resolving to one public and one private address is refused.
        for info in infos:
            refusal = self.policy.address_refusal(info["host"], info.get("port") or port or None)
            if refusal:
                raise AddressRefused(f"{host} resolves to {info['host']}: {refusal}")
        return infos

    async def close(self) -> None:
        await self.inner.close()


def guarded_resolver(policy: UrlPolicy):
    """A ``GuardedResolver`` around aiohttp's threaded (getaddrinfo) resolver, registered as an
    ``aiohttp.abc.AbstractResolver``."""
    from aiohttp.abc import AbstractResolver
    from aiohttp.resolver import ThreadedResolver

    AbstractResolver.register(GuardedResolver)
    return GuardedResolver(ThreadedResolver(), policy)
