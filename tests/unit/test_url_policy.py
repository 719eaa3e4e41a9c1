"""core/url_policy.py: the allow list by URL, then every resolved address, before any byte is sent."""

from __future__ import annotations

import asyncio

import pytest
from mlops_pack.core.url_policy import AddressRefused, GuardedResolver, UrlPolicy, guarded_resolver


@pytest.mark.parametrize(("url", "reason"), [
    ("https://shop.example/list?page=2", None),
    ("http://SHOP.example/x", None),  # host names are case-insensitive
    ("http://api.example:8080/v1", None),
    ("http://[::1]:8443/x", None),
    ("http://api.example:9090/v1", "host 'api.example:9090' is not in source.allowed_hosts"),
    ("http://evil.example/", "host 'evil.example' is not in source.allowed_hosts"),
    ("http://shop.example.evil.example/", "is not in source.allowed_hosts"),
    ("ftp://shop.example/file", "scheme 'ftp' is not http(s)"),
    ("file:///etc/passwd", "scheme 'file' is not http(s)"),
    ("http:///nohost", "URL has no host"),
])
def test_url_refusal_by_scheme_and_allow_list(url, reason):
    refusal = UrlPolicy(["shop.example", "api.example:8080", "[::1]:8443"]).url_refusal(url)
    assert refusal is None if reason is None else reason in refusal


def test_literal_refusal_checks_ip_literals_only():
    policy = UrlPolicy(["127.0.0.1:8000", "localhost", "10.0.0.1:80"])
    assert policy.literal_refusal("http://localhost/x") is None  # a name: left to the resolver
    assert policy.literal_refusal("http://127.0.0.1:8000/x") is None  # named in the allow list
    assert policy.literal_refusal("http://10.0.0.1/x") is None
    assert "loopback, private" in policy.literal_refusal("http://169.254.169.254/latest/meta-data/")
    assert "loopback, private" in policy.literal_refusal("http://[::ffff:169.254.169.254]/")
    assert policy.literal_refusal("http://93.184.216.34/") is None  # public


def test_an_ipv4_mapped_ipv6_address_counts_as_its_ipv4_address():
    policy = UrlPolicy(["127.0.0.1"])
    assert policy.address_refusal("::ffff:127.0.0.1") is None
    assert policy.address_refusal("::ffff:10.0.0.1") is not None
    assert policy.address_refusal("224.0.0.1") is not None  # multicast is never fetched unless named


class FixedResolver:
    """A real resolver stand-in for the inner (getaddrinfo) resolver: answers with fixed addresses."""

    def __init__(self, addresses: list[str]):
        self.addresses, self.closed = addresses, False

    async def resolve(self, host, port=0, family=0):
        return [{"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
                for a in self.addresses]

    async def close(self):
        self.closed = True


def test_the_guarded_resolver_refuses_a_name_if_any_address_is_unsafe():
    policy = UrlPolicy(["shop.example"])
    ok = asyncio.run(GuardedResolver(FixedResolver(["93.184.216.34"]), policy).resolve("shop.example", 80))
    assert [i["host"] for i in ok] == ["93.184.216.34"]
    mixed = GuardedResolver(FixedResolver(["93.184.216.34", "10.0.0.5"]), policy)
    with pytest.raises(AddressRefused, match="shop.example resolves to 10.0.0.5"):
        asyncio.run(mixed.resolve("shop.example", 80))
    inner = FixedResolver([])
    asyncio.run(GuardedResolver(inner, policy).close())
    assert inner.closed


def test_guarded_resolver_resolves_localhost_for_real_and_refuses_it_unless_named():
    from aiohttp.abc import AbstractResolver

    async def resolve(policy):
        resolver = guarded_resolver(policy)  # aiohttp's resolver needs the running loop
        assert isinstance(resolver, AbstractResolver)
        try:
            return await resolver.resolve("localhost", 80)
        finally:
            await resolver.close()

    with pytest.raises(AddressRefused, match="localhost resolves to"):
        asyncio.run(resolve(UrlPolicy(["localhost"])))
    infos = asyncio.run(resolve(UrlPolicy(["localhost", "127.0.0.1", "[::1]"])))
    assert {i["host"] for i in infos} <= {"127.0.0.1", "::1"} and infos


@pytest.mark.parametrize("address", [
    # the metadata address and loopback carried inside IPv6 (all were allowed before)
    "64:ff9b::a9fe:a9fe", "64:ff9b::169.254.169.254", "2002:a9fe:a9fe::1", "::169.254.169.254",
    "::127.0.0.1", "::ffff:169.254.169.254", "64:ff9b:1::a9fe:a9fe", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    # IPv4 special-purpose blocks Python's is_global lets through, and IPv6 ones outside 2000::/3
    "192.0.0.192", "192.0.0.9", "192.88.99.1", "192.31.196.1", "100::1", "fe80::1%eth0", "ff02::1",
    "2001:db8::1", "3fff::1", "5f00::1",
])
def test_special_purpose_and_ipv4_embedding_addresses_are_refused(address):
    refusal = UrlPolicy(["shop.example"]).address_refusal(address, 80)
    assert refusal is not None and "loopback, private, link-local or reserved" in refusal


def test_an_embedding_names_the_ipv4_address_it_carries():
    refusal = UrlPolicy(["shop.example"]).address_refusal("64:ff9b::a9fe:a9fe", 80)
    assert "carries IPv4 169.254.169.254, in 169.254.0.0/16" in refusal


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2001:4860:4860::8888"])
def test_global_addresses_pass_nat64_of_a_public_ipv4_too(address):
    assert UrlPolicy(["shop.example"]).address_refusal(address, 443) is None


def test_a_named_ip_is_allowed_on_its_port_only():
    policy = UrlPolicy(["localhost", "127.0.0.1:9", "[::1]:8443", "10.0.0.1"])
    assert policy.address_refusal("127.0.0.1", 9) is None
    assert "127.0.0.1 port 8080" in policy.address_refusal("127.0.0.1", 8080)
    assert policy.address_refusal("::ffff:127.0.0.1", 9) is None  # mapped: the same host
    assert policy.address_refusal("::1", 8443) is None and policy.address_refusal("::1", 80) is not None
    assert policy.address_refusal("10.0.0.1", 1234) is None  # named without a port: any port
    assert policy.literal_refusal("http://127.0.0.1:9/x") is None
    assert policy.literal_refusal("http://127.0.0.1/x") is not None  # port 80 is not 9
    port_checked = GuardedResolver(FixedResolver(["127.0.0.1"]), policy)
    assert asyncio.run(port_checked.resolve("localhost", 9))
    with pytest.raises(AddressRefused, match="localhost resolves to 127.0.0.1.*port 8765"):
        asyncio.run(port_checked.resolve("localhost", 8765))
