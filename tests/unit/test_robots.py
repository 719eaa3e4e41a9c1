"""core/robots.py: robots.txt per RFC 9309, fetched once per origin from a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlops_pack.core.fetcher import Fetcher, Refused
from mlops_pack.core.robots import MAX_ROBOTS_BYTES, RobotsCache, RobotsRules, complete_lines
from mlops_pack.core.spec import SourceSpec

from tests.support.ports import free_port

ROBOTS = ("User-agent: *\nDisallow: /private/\n\nUser-agent: test-bot\nDisallow: /bots-only/\nCrawl-delay: 0.7\n"
          "\nSitemap: https://shop.example/sitemap.xml\n")


class RobotsServer:
    """Answers /robots.txt with ``status`` and ``body``; counts the requests."""

    def __init__(self, status: int = 200, body: str = ROBOTS):
        self.status, self.body, self.requests = status, body, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests += 1
                data = server.body.encode() if self.path == "/robots.txt" else b"page"
                self.send_response(server.status if self.path == "/robots.txt" else 200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture
def server():
    servers = []

    def start(status: int = 200, body: str = ROBOTS) -> RobotsServer:
        servers.append(RobotsServer(status, body))
        return servers[-1]

    yield start
    for s in servers:
        s.http.shutdown()
        s.http.server_close()


def source(base: str, user_agent: str = "other-bot") -> SourceSpec:
    netloc = base.split("//")[1]
    return SourceSpec.model_validate({
        "start_urls": [f"{base}/"], "allowed_hosts": [netloc], "record_selector": "p", "key": "id",
        "fields": {"id": {"selector": "::text"}}, "user_agent": user_agent, "max_retries": 0,
        "min_delay_seconds": 0.1, "timeout_seconds": 2})


def with_cache(src: SourceSpec, scenario, stored=None, max_age: float = 86_400):
    async def run():
        async with Fetcher(src) as fetcher:
            cache = RobotsCache(fetcher, max_age, stored)
            return await scenario(cache, fetcher)

    return asyncio.run(run())


def test_disallowed_paths_are_refused_per_user_agent(server):
    site = server()

    async def refusals(cache, fetcher):
        return [await cache.refusal(f"{site.base}{p}") for p in ("/private/x", "/bots-only/x", "/list")]

    assert with_cache(source(site.base), refusals) == [
        "robots.txt disallows /private/x for 'other-bot'", None, None]
    assert with_cache(source(site.base, "test-bot"), refusals) == [
        None, "robots.txt disallows /bots-only/x for 'test-bot'", None]


def test_robots_txt_is_fetched_once_per_origin_even_when_asked_concurrently(server):
    site = server()

    async def many(cache, fetcher):
        await asyncio.gather(*(cache.refusal(f"{site.base}/p{i}") for i in range(8)))
        return cache.fetched

    assert with_cache(source(site.base), many) == 1 and site.requests == 1


def test_crawl_delay_slows_the_host_gate_and_sitemaps_are_listed(server):
    site = server()

    async def scenario(cache, fetcher):
        await cache.refusal(f"{site.base}/list")
        host = site.base.split("//")[1]
        return fetcher.delays.get(host), fetcher.gate(f"{site.base}/x").delay, await cache.sitemaps(site.base)

    assert with_cache(source(site.base), scenario) == (None, 0.1, ["https://shop.example/sitemap.xml"])
    assert with_cache(source(site.base, "test-bot"), scenario)[:2] == (0.7, 0.7)


@pytest.mark.parametrize(("status", "refused", "why"), [
    (404, False, None), (403, False, None), (503, True, "answered 503"), (429, True, "answered 429")])
def test_unavailable_allows_everything_and_unreachable_disallows_everything(server, status, refused, why):
    site = server(status=status)

    async def scenario(cache, fetcher):
        return await cache.refusal(f"{site.base}/list"), cache.to_state()

    refusal, state = with_cache(source(site.base), scenario)
    if refused:
        assert why in refusal and "RFC 9309 says assume everything is disallowed" in refusal
        assert state == {}  # failures are never cached
    else:
        assert refusal is None and list(state) == [site.base]


def test_a_network_failure_disallows_everything():
    base = f"http://127.0.0.1:{free_port()}"

    async def scenario(cache, fetcher):
        return await cache.refusal(f"{base}/list")

    refusal = with_cache(source(base), scenario)
    assert f"robots.txt at {base}/robots.txt is unreachable" in refusal


def test_an_origin_outside_the_allow_list_is_refused_not_assumed(server):
    site = server()

    async def scenario(cache, fetcher):
        return await cache.refusal("http://elsewhere.example/list")

    with pytest.raises(Refused) as err:
        with_cache(source(site.base), scenario)
    assert err.value.kind == "host" and site.requests == 0


def test_stored_answers_are_reused_until_they_are_too_old(server):
    site = server()
    fresh = {site.base: {"text": "User-agent: *\nDisallow: /\n", "fetched_at": time.time() - 10}}

    async def scenario(cache, fetcher):
        return await cache.refusal(f"{site.base}/list"), cache.fetched

    refusal, fetched = with_cache(source(site.base), scenario, stored=fresh, max_age=3600)
    assert refusal == "robots.txt disallows /list for 'other-bot'" and fetched == 0 and site.requests == 0
    refusal, fetched = with_cache(source(site.base), scenario, stored=fresh, max_age=5)
    assert refusal is None and fetched == 1 and site.requests == 1


def test_only_the_first_500_kib_are_parsed(server):
    site = server(body="User-agent: *\nDisallow: /early/\n" + "#" * MAX_ROBOTS_BYTES + "\nDisallow: /late/\n")

    async def scenario(cache, fetcher):
        return [await cache.refusal(f"{site.base}{p}") for p in ("/early/x", "/late/x")]

    early, late = with_cache(source(site.base), scenario)
    assert early is not None and late is None


def test_rules_round_trip_through_the_crawl_state():
    rules = RobotsRules(ROBOTS, 1234.5)
    assert rules.to_state() == {"text": ROBOTS, "fetched_at": 1234.5}
    assert not rules.rules.can_fetch("https://shop.example/private/a", "any-bot")
    assert rules.rules.can_fetch("https://shop.example/public", "any-bot")


@pytest.mark.parametrize(("delay", "cap", "expected"), [("3600", 60.0, 60.0), ("1e308", 60.0, 60.0),
                                                         ("0.7", 60.0, 0.7), ("3600", 2.0, 2.0)])
def test_crawl_delay_is_capped_and_the_cap_recorded(server, delay, cap, expected):
    site = server(body=f"User-agent: *\nCrawl-delay: {delay}\n")
    src = source(site.base).model_copy(update={"max_crawl_delay_seconds": cap})

    async def scenario(cache, fetcher):
        await cache.refusal(f"{site.base}/list")
        return fetcher.gate(f"{site.base}/x").delay, cache.notes

    gate_delay, notes = with_cache(src, scenario)
    assert gate_delay == expected
    if float(delay) > cap:
        [note] = notes
        assert note["kind"] == "robots" and note["url"] == f"{site.base}/robots.txt"
        assert f"Crawl-delay {float(delay):g} s is over source.max_crawl_delay_seconds={cap:g}" in note["reason"]
    else:
        assert notes == []


def test_a_robots_txt_over_the_body_cap_is_parsed_up_to_500_kib(server):
    site = server(body="User-agent: *\nDisallow: /early/\n" + "# padding\n" * 60_000 + "Disallow: /late/\n")
    src = source(site.base).model_copy(update={"max_response_bytes": 100_000})  # the file is 600 KB

    async def scenario(cache, fetcher):
        return [await cache.refusal(f"{site.base}{p}") for p in ("/early/x", "/late/x", "/list")]

    early, late, other = with_cache(src, scenario)
    assert "disallows /early/x" in early and late is None and other is None


def test_a_cut_file_ends_at_its_last_complete_line():
    body = b"User-agent: *\nAllow: /public\n" + b"#" * MAX_ROBOTS_BYTES
    assert complete_lines(body) == b"User-agent: *\nAllow: /public"
    assert complete_lines(b"short\nfile") == b"short\nfile"
