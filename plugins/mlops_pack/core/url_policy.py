"""Which URLs and network addresses a crawl may reach: the allow list, then the resolved address.

Two checks, in this order, both before any byte is sent:

1. ``url_refusal``: the URL's scheme is http(s) and its host (or host:port) is in the allow list.
2. ``GuardedBackend``: the connection layer of the HTTP client resolves the host itself, refuses
   every address that is not globally routable (loopback, private, link-local, cloud metadata,
   shared, reserved, multicast) unless the allow list names that exact IP, and then connects to the
   address it checked. Checking inside the connection layer, rather than resolving once up front,
   closes DNS rebinding: the address checked is the address connected to, for every connection.
"""

from __future__ import annotations

import asyncio
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


class GuardedBackend:
    """An httpcore network backend that checks each resolved address before connecting to it."""

    def __init__(self, inner: Any, policy: UrlPolicy):
        self.inner, self.policy = inner, policy

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None, socket_options: Any = None) -> Any:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        except (OSError, TimeoutError) as exc:
            import httpcore

            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        # Every address must pass: a name resolving to one public and one private address is refused.
        for address in addresses:
            refusal = self.policy.address_refusal(address)
            if refusal:
                raise AddressRefused(f"{host} resolves to {address}: {refusal}")
        return await self.inner.connect_tcp(addresses[0], port, timeout=timeout, local_address=local_address,
                                            socket_options=socket_options)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise AddressRefused("unix sockets are never used by a crawl")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_async_client(policy: UrlPolicy, **kwargs: Any):
    """An httpx.AsyncClient whose every connection goes through ``GuardedBackend``; no proxies."""
    import httpx

    transport = httpx.AsyncHTTPTransport(trust_env=False, limits=kwargs.pop("limits", None) or httpx.Limits())
    pool = transport._pool  # httpx exposes no network_backend option; httpcore's pool takes one
    pool._network_backend = GuardedBackend(pool._network_backend, policy)
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False, **kwargs)
