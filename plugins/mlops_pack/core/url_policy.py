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
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit


class AddressRefused(ConnectionRefusedError):
    """The host resolved to an address the allow list does not name explicitly; nothing was sent."""


class UrlPolicy:
    """The allow list of one source: ``host`` or ``host:port`` entries (IPv6 as ``[::1]:port``)."""

    def __init__(self, allowed_hosts: list[str]):
        self.entries = {h.strip().lower() for h in allowed_hosts}
        self.named_ips = set()
        for entry in self.entries:
            host = entry[1:].split("]")[0] if entry.startswith("[") else entry.rsplit(":", 1)[0]
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                continue
            self.named_ips.add(getattr(ip, "ipv4_mapped", None) or ip)

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
        host = urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return None  # a name: the resolver checks every address it resolves to
        return self.address_refusal(host)

    def address_refusal(self, address: str) -> str | None:
        """Why connecting to the resolved ``address`` is refused, or None."""
        ip = ipaddress.ip_address(address.split("%")[0])
        mapped = getattr(ip, "ipv4_mapped", None)
        ip = mapped or ip
        if ip.is_global and not ip.is_multicast:
            return None
        if ip in self.named_ips:
            return None
        return (f"address {ip} is loopback, private, link-local or reserved; name it in "
                f"source.allowed_hosts to allow it")


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
            refusal = self.policy.address_refusal(info["host"])
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
