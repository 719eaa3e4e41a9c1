"""robots.txt per RFC 9309, parsed by protego, fetched once per origin and cached at most 24 h.

RFC 9309 section 2.3.1: a 4xx robots.txt ("unavailable") allows everything; a 5xx or a network
error ("unreachable") disallows everything. 429 is treated as unreachable too: a host that rate
limits its robots.txt is asking us to back off. Only the first 500 KiB are parsed (the RFC's
minimum). Successful answers are kept in the crawl state with their fetch time, so the next run
within ``robots_cache_seconds`` (<= 24 h) does not fetch them again; failures are never cached.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mlops_pack.core.fetcher import Fetcher

MAX_ROBOTS_BYTES = 500 * 1024
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
            if origin not in self.origins:
                self.origins[origin] = await self._fetch(origin)
                delay = self.origins[origin].rules.crawl_delay(self.user_agent)
                if delay:
                    host = parts.netloc.lower()
                    self.fetcher.delays[host] = float(delay)
                    self.fetcher.gate(url).delay = max(self.fetcher.source.min_delay_seconds, float(delay))
        return self.origins[origin]

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
        from mlops_pack.core.fetcher import Refused, describe_error, network_errors

        url = f"{origin}/robots.txt"
        now = time.time()
        self.fetched += 1
        try:
            fetched = await self.fetcher.fetch(url, check_robots=False)
        except Refused:
            raise  # the allow list or the address check refused the origin: the page gets that reason
        except network_errors() as exc:
            return RobotsRules(DISALLOW_ALL, now, f"at {url} is unreachable ({describe_error(exc)})")
        if fetched.status >= 500 or fetched.status == 429:
            return RobotsRules(DISALLOW_ALL, now, f"at {url} answered {fetched.status}")
        if fetched.status >= 300:
            return RobotsRules("", now)  # 4xx (and redirects past the limit): no rules
        return RobotsRules(fetched.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace"), now)
