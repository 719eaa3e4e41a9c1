"""robots.txt per RFC 9309, parsed by protego, fetched once per origin and cached at most 24 h.

RFC 9309 section 2.3.1: a 4xx robots.txt ("unavailable") allows everything; a 5xx or a network
error ("unreachable") disallows everything. 429 is treated as unreachable too: a host that rate
limits its robots.txt is asking us to back off. Up to five redirects are followed (2.3.1.2); more
than five make the file "unavailable" (no rules), and a redirect to a host or address the policy
refuses makes it "unreachable" (everything disallowed, the reason naming robots.txt). A larger file
is read up to 500 KiB (2.5) and parsed up to its last complete line there. Every answer, refusals
included, is kept for the whole crawl (one request per origin); successful ones are also kept in the
crawl state with their fetch time, so the next run within ``robots_cache_seconds`` (<= 24 h) does not
fetch them again; failures are not stored beyond the crawl.

Crawl-delay (not in RFC 9309, honoured as a courtesy) is capped at ``source.max_crawl_delay_seconds``:
``Crawl-delay: 3600`` or ``1e308`` would otherwise stall the crawl without bound. A capped delay is
recorded in ``notes`` (quarantine kind ``robots``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlops_pack.core.fetcher import Refused

if TYPE_CHECKING:
    from mlops_pack.core.fetcher import Fetcher

MAX_ROBOTS_BYTES = 500 * 1024
MAX_ROBOTS_REDIRECTS = 5
DISALLOW_ALL = "User-agent: *\nDisallow: /\n"


class RobotsRules:
    """The robots.txt answer of one origin: parsed rules and, when everything is refused, why."""

    def __init__(self, text: str, fetched_at: float, why_disallowed: str | None = None):
        from protego import Protego

        self.text, self.fetched_at, self.why_disallowed = text, fetched_at, why_disallowed
        self.rules = Protego.parse(text)

    def to_state(self) -> dict[str, Any]:
        return {"text": self.text, "fetched_at": self.fetched_at}


class RobotsCache:
    """``await cache.refusal(url)``: why robots.txt forbids ``url`` for our user agent, or None."""

    def __init__(self, fetcher: Fetcher, max_age: float, stored: dict[str, dict] | None = None):
        self.fetcher, self.max_age = fetcher, max_age
        self.user_agent = fetcher.source.user_agent
        self.origins: dict[str, RobotsRules] = {}
        self.refused: dict[str, tuple[str, str]] = {}  # origin -> (message, kind) of the policy's refusal
        self.notes: list[dict[str, str]] = []  # capped Crawl-delays, for the quarantine
        self.fetched = 0
        now = time.time()
        for origin, entry in (stored or {}).items():
            if now - float(entry.get("fetched_at", 0)) < max_age:
                self.origins[origin] = RobotsRules(entry["text"], float(entry["fetched_at"]))
        self._locks: dict[str, asyncio.Lock] = {}

    def to_state(self) -> dict[str, dict]:
        return {o: r.to_state() for o, r in self.origins.items() if r.why_disallowed is None}

    async def rules_for(self, url: str) -> RobotsRules:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            if origin in self.refused:  # asked once: every page of the origin gets the same answer
                raise Refused(*self.refused[origin])
            if origin not in self.origins:
                try:
                    self.origins[origin] = await self._fetch(origin)
                except Refused as exc:
                    self.refused[origin] = (str(exc), exc.kind)
                    raise
                self._set_delay(url, origin)
        return self.origins[origin]

    def _set_delay(self, url: str, origin: str) -> None:
        delay = self.origins[origin].rules.crawl_delay(self.user_agent)  # protego: None unless finite >= 0
        if not delay:
            return
        delay, cap = float(delay), self.fetcher.source.max_crawl_delay_seconds
        if delay > cap:
            self.notes.append({"url": f"{origin}/robots.txt", "kind": "robots", "reason": (
                f"Crawl-delay {delay:g} s is over source.max_crawl_delay_seconds={cap:g}: waiting {cap:g} s "
                f"between requests to {urlsplit(url).netloc.lower()} instead")})
            delay = cap
        self.fetcher.delays[urlsplit(url).netloc.lower()] = delay
        self.fetcher.gate(url).delay = max(self.fetcher.source.min_delay_seconds, delay)

    async def refusal(self, url: str) -> str | None:
        rules = await self.rules_for(url)
        if rules.rules.can_fetch(url, self.user_agent):
            return None
        if rules.why_disallowed:
            return f"robots.txt {rules.why_disallowed}: RFC 9309 says assume everything is disallowed"
        return f"robots.txt disallows {urlsplit(url).path or '/'} for {self.user_agent!r}"

    async def sitemaps(self, url: str) -> list[str]:
        return list((await self.rules_for(url)).rules.sitemaps)

    async def _fetch(self, origin: str) -> RobotsRules:
        from mlops_pack.core.fetcher import TooManyRedirects, describe_error, network_errors

        url = f"{origin}/robots.txt"
        now = time.time()
        self.fetched += 1
        try:
            fetched = await self.fetcher.fetch(url, check_robots=False, max_redirects=MAX_ROBOTS_REDIRECTS,
                                               keep_prefix=MAX_ROBOTS_BYTES)
        except TooManyRedirects:
            return RobotsRules("", now)  # RFC 9309 2.3.1.2: MAY assume unavailable, i.e. no rules
        except Refused as exc:
            if exc.kind != "redirect":
                raise  # the allow list or the address check refused the origin: the page gets that reason
            return RobotsRules(DISALLOW_ALL, now, f"at {url} redirects to a refused target ({exc})")
        except network_errors() as exc:
            return RobotsRules(DISALLOW_ALL, now, f"at {url} is unreachable ({describe_error(exc)})")
        if fetched.status >= 500 or fetched.status == 429:
            return RobotsRules(DISALLOW_ALL, now, f"at {url} answered {fetched.status}")
        if fetched.status >= 300:
            return RobotsRules("", now)  # 4xx (and a redirect without Location): no rules
        return RobotsRules(complete_lines(fetched.body).decode("utf-8", errors="replace"), now)


def complete_lines(body: bytes) -> bytes:
    """The first MAX_ROBOTS_BYTES of ``body`` up to its last complete line: a rule cut in the middle
    (``Allow: /p`` of ``Allow: /public``) would say something the file does not."""
    if len(body) < MAX_ROBOTS_BYTES:
        return body
    return body[:MAX_ROBOTS_BYTES].rpartition(b"\n")[0]
