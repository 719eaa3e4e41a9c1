"""core/fetcher.py: one URL fetched politely and safely from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email.utils
import time

import aiohttp
import pytest
from mlops_pack.core.fetcher import (
    Fetcher,
    FetchFailed,
    HostGate,
    Refused,
    TooManyRedirects,
    decode_body,
    describe_error,
    network_errors,
    retry_after_seconds,
    web_codec,
)
from mlops_pack.core.spec import SourceSpec

from tests.support.hostile_site import HostileSite
from tests.support.ports import free_port


@pytest.fixture
def site():
    site = HostileSite().start()
    yield site
    site.stop()


def source(site: HostileSite, **overrides) -> SourceSpec:
    return SourceSpec.model_validate({
        "start_urls": [f"{site.base}/page/1"], "allowed_hosts": [f"127.0.0.1:{site.port}"],
        "record_selector": "div.item", "key": "id", "fields": {"id": {"selector": "::attr(data-id)"}},
        "max_retries": 0, "retry_backoff_seconds": 0.01, "read_timeout_seconds": 0.5, "timeout_seconds": 2,
        **overrides})


def fetch(src: SourceSpec, url: str, **kwargs):
    async def run():
        async with Fetcher(src, robots_check=kwargs.pop("robots_check", None)) as fetcher:
            try:
                return await fetcher.fetch(url, **kwargs), fetcher.stats
            except Exception as exc:
                exc.stats = fetcher.stats
                raise

    return asyncio.run(run())


def test_a_page_is_fetched_with_our_user_agent_and_decoded(site):
    fetched, stats = fetch(source(site, user_agent="test-bot/1.0"), f"{site.base}/page/1",
                           content_types=["text/html"])
    assert fetched.status == 200 and fetched.url == f"{site.base}/page/1"
    assert fetched.content_type == "text/html" and 'data-id="p1-0"' in fetched.text()
    assert stats["requests"] == 1 and stats["bytes"] > 0
    assert site.hits[0][1]["User-Agent"] == "test-bot/1.0"


def test_a_conditional_request_gets_a_304_without_a_body(site):
    fetched, _ = fetch(source(site), f"{site.base}/etag", conditional={"If-None-Match": '"v1"'})
    assert (fetched.status, fetched.body, fetched.headers["etag"]) == (304, b"", '"v1"')
    assert site.hits[0][1]["If-None-Match"] == '"v1"'


def test_an_unexpected_content_type_is_refused(site):
    with pytest.raises(FetchFailed, match="content type 'application/json' is not one of"):
        fetch(source(site), f"{site.base}/json", content_types=["text/html"])


def test_a_body_over_the_cap_stops_the_download(site):
    with pytest.raises(FetchFailed, match="over source.max_response_bytes=100000; stopped reading") as err:
        fetch(source(site, max_response_bytes=100_000), f"{site.base}/big")
    assert err.value.stats["bytes"] < 1_000_000  # 2 MB were offered


def test_redirects_are_followed_up_to_the_limit(site):
    with pytest.raises(FetchFailed, match="more than 2 redirects"):
        fetch(source(site, max_redirects=2), f"{site.base}/loop")
    assert site.counts["/loop"] == 3


def test_every_redirect_hop_is_checked_against_the_allow_list(site):
    with pytest.raises(Refused, match=r"redirect target http://localhost:\d+/page/1 refused") as err:
        fetch(source(site), f"{site.base}/to-private")
    assert err.value.kind == "redirect" and site.paths() == ["/to-private"]


def test_a_host_outside_the_allow_list_is_refused_before_sending(site):
    with pytest.raises(Refused, match="is not in source.allowed_hosts") as err:
        fetch(source(site), f"http://localhost:{site.port}/page/1")
    assert err.value.kind == "host" and site.hits == []


def test_a_name_resolving_to_loopback_is_refused_by_address(site):
    src = source(site, start_urls=[f"http://localhost:{site.port}/page/1"],
                 allowed_hosts=[f"localhost:{site.port}"])
    with pytest.raises(Refused, match="resolves to .*loopback, private") as err:
        fetch(src, f"http://localhost:{site.port}/page/1")
    assert err.value.kind == "address" and site.hits == []


def test_robots_check_is_asked_unless_disabled(site):
    async def no_private(url):
        return "robots.txt disallows it" if "/private/" in url else None

    with pytest.raises(Refused, match="refused: robots.txt disallows it") as err:
        fetch(source(site), f"{site.base}/private/secret", robots_check=no_private)
    assert err.value.kind == "robots" and site.hits == []
    fetched, _ = fetch(source(site), f"{site.base}/private/secret", robots_check=no_private, check_robots=False)
    assert fetched.status == 200


def test_retryable_statuses_are_retried_then_returned(site):
    site.robots = "5xx"  # /robots.txt answers 503 every time
    fetched, stats = fetch(source(site, max_retries=2), f"{site.base}/robots.txt")
    assert fetched.status == 503 and stats["retries"] == 2 and site.counts["/robots.txt"] == 3


def test_a_stalled_body_raises_a_read_timeout_with_its_phase(site):
    with pytest.raises(network_errors()) as err:
        fetch(source(site, read_timeout_seconds=0.3), f"{site.base}/stall")
    assert describe_error(err.value) == "read timeout: the server stalled"


def test_a_closed_port_is_a_network_error():
    port = free_port()
    src = SourceSpec.model_validate({
        "start_urls": [f"http://127.0.0.1:{port}/"], "allowed_hosts": [f"127.0.0.1:{port}"],
        "record_selector": "p", "key": "id", "fields": {"id": {"selector": "::text"}}, "max_retries": 0})
    with pytest.raises(aiohttp.ClientConnectorError) as err:
        fetch(src, f"http://127.0.0.1:{port}/")
    assert isinstance(err.value, network_errors())
    assert describe_error(err.value).startswith("ClientConnectorError")


def test_describe_error_names_the_phase():
    assert describe_error(FetchFailed("x: HTTP 404")) == "x: HTTP 404"
    assert describe_error(aiohttp.ConnectionTimeoutError()) == "connect timeout"
    assert describe_error(aiohttp.SocketTimeoutError()) == "read timeout: the server stalled"
    assert describe_error(TimeoutError()).startswith("timeout: the whole request")
    assert describe_error(ValueError()) == "ValueError"
    assert describe_error(ValueError("bad")) == "ValueError: bad"


def test_decode_body_prefers_the_declared_charset_then_utf8_then_detection():
    assert decode_body("café".encode("latin-1"), "text/html; charset=ISO-8859-1") == "café"
    assert decode_body("café".encode(), 'text/html; charset="utf-8"') == "café"
    assert decode_body("café".encode(), "text/html; charset=no-such-codec") == "café"  # falls back to UTF-8
    assert decode_body(b"ok \xff", "text/html; charset=utf-8") == "ok \ufffd"  # bad bytes replaced
    undeclared = "<p>Grüße aus Köln, schöne Straße</p>".encode("latin-1")
    assert "Grüße aus Köln" in decode_body(undeclared, "text/html")  # not UTF-8: detected


def test_undeclared_latin1_french_text_is_decoded_without_mojibake():
    # charset-normalizer scores cp1250 and cp1252 equal here and picked cp1250 (è->č, à->ŕ)
    latin = "<p>Café crème brûlée à Paris, très réputée</p>".encode("latin-1")
    assert "Café crème brûlée à Paris, très réputée" in decode_body(latin, "text/html")


def test_only_web_encodings_are_honoured_and_decoding_stays_linear():
    # Python's punycode codec is quadratic: 1 MB took 33 s of CPU. It is not a web encoding: ignored.
    body = ("<p>" + "a-" * 500_000 + "</p>").encode()
    started = time.process_time()
    assert decode_body(body, "text/html; charset=punycode").startswith("<p>a-a-")
    assert time.process_time() - started < 2.0
    assert decode_body(b"+ADw-script+AD4-", "text/html; charset=utf-7") == "+ADw-script+AD4-"  # no UTF-7
    assert decode_body(b"caf\x80", "text/html; charset=ascii") == "caf€"  # WHATWG: ascii means windows-1252
    assert web_codec("Shift_JIS") == "shift_jis" and web_codec("idna") is None and web_codec("rot13") is None


def test_keep_prefix_reads_a_large_body_up_to_the_limit_instead_of_failing(site):
    fetched, stats = fetch(source(site, max_response_bytes=100_000), f"{site.base}/big", keep_prefix=60_000)
    assert fetched.status == 200 and len(fetched.body) == 60_000 and fetched.body.startswith(b"<p>xxx")
    assert stats["bytes"] < 1_000_000  # stopped reading: 2 MB were offered


def test_too_many_redirects_is_its_own_error(site):
    with pytest.raises(TooManyRedirects, match="more than 1 redirects"):
        fetch(source(site), f"{site.base}/loop", max_redirects=1)


def test_retry_after_accepts_seconds_and_http_dates():
    assert retry_after_seconds("5") == 5.0 and retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("") is None
    assert retry_after_seconds("soon") is None and retry_after_seconds("-3") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after_seconds(later) <= 30
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # past: no wait


def test_host_gate_spaces_starts_limits_concurrency_and_honours_pauses():
    async def scenario():
        gate, starts, inflight, peak = HostGate(concurrency=2, delay=0.1), [], [0], [0]

        async def request():
            async with gate.slot():
                starts.append(time.monotonic())
                inflight[0] += 1
                peak[0] = max(peak[0], inflight[0])
                await asyncio.sleep(0.15)
                inflight[0] -= 1

        await asyncio.gather(*(request() for _ in range(4)))
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        paused = HostGate(concurrency=1, delay=0.0)
        paused.pause(0.3)
        t0 = time.monotonic()
        async with paused.slot():
            waited = time.monotonic() - t0
        return gaps, peak[0], waited

    gaps, peak, waited = asyncio.run(scenario())
    assert min(gaps) >= 0.09 and peak == 2 and waited >= 0.28


def test_one_gate_per_host_with_the_robots_crawl_delay(site):
    src = source(site, min_delay_seconds=0.5)
    fetcher = Fetcher(src)
    fetcher.delays["other.example"] = 2.0
    gate = fetcher.gate(f"{site.base}/a")
    assert fetcher.gate(f"{site.base}/b") is gate and gate.delay == 0.5
    assert fetcher.gate("http://OTHER.example/x").delay == 2.0
