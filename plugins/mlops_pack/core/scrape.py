"""Crawl a listings site and turn its pages into typed records, quarantining what does not parse.

Polite by default: robots.txt (protego, RFC 9309), an allow list of hosts, a minimum delay between
requests and a timeout. A page that fails parsing never sinks the run; past the spec's failed-page
share the crawl fails and nothing is written.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import httpx

    from mlops_pack.core.spec import FieldSpec, SourceSpec

NUMBER = re.compile(r"-?\d[\d,\s]*(?:\.\d+)?")


class ScrapeError(RuntimeError):
    """The crawl cannot produce a trustworthy partition (unreachable site, error budget spent)."""


@dataclass
class ScrapeResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)  # {url, reason, html?}
    stats: dict[str, Any] = field(default_factory=dict)


def coerce(raw: str | None, kind: str) -> Any:
    """The typed value of a scraped string; None when empty. Raises ValueError when it is garbage."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if kind == "string":
        return text
    if kind == "date":
        return text[:10] if re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", text) else _bad(text, kind)
    match = NUMBER.search(text)
    if not match:
        return _bad(text, kind)
    number = float(re.sub(r"[,\s]", "", match.group()))
    return int(number) if kind == "integer" else number


def _bad(text: str, kind: str) -> None:
    raise ValueError(f"{text[:40]!r} is not a {kind}")


def parse_page(html: str, url: str, source: SourceSpec) -> tuple[list[dict], list[dict], str | None]:
    """Records, per-field problems and the next page URL found in one page."""
    from parsel import Selector

    page = Selector(text=html)
    records, problems = [], []
    for node in page.css(source.record_selector):
        record: dict[str, Any] = {}
        for name, spec in source.fields.items():
            record[name], problem = _extract(node, name, spec)
            if problem:
                problems.append({"url": url, "field": name, "reason": problem})
        records.append(record)
    next_url = None
    if source.next_page_selector:
        href = page.css(source.next_page_selector).get()
        next_url = urljoin(url, href) if href else None
    return records, problems, next_url


def _extract(node, name: str, spec: FieldSpec) -> tuple[Any, str | None]:
    raw = node.css(spec.selector).get()
    try:
        return coerce(raw, spec.type), None
    except ValueError as exc:
        # Keep the record with a null value: validation decides whether the column is still usable.
        return None, f"{name}: {exc}"


class Crawler:
    """Fetch pages one host politely; one instance per crawl."""

    def __init__(self, source: SourceSpec, client: httpx.Client):
        from protego import Protego

        self.source, self.client = source, client
        self._robots: dict[str, Protego] = {}
        self._last_request = 0.0
        self.stats = {"pages_fetched": 0, "pages_failed": 0, "bytes": 0, "retries": 0, "refused": 0}

    def allowed(self, url: str) -> str | None:
        """Why ``url`` must not be fetched, or None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return f"scheme {parts.scheme!r} is not http(s)"
        if parts.netloc not in self.source.allowed_hosts and parts.hostname not in self.source.allowed_hosts:
            return f"host {parts.netloc!r} is not in source.allowed_hosts {self.source.allowed_hosts}"
        if not self._robots_for(parts).can_fetch(url, self.source.user_agent):
            return f"robots.txt of {parts.netloc} disallows {parts.path}"
        return None

    def _robots_for(self, parts):
        from protego import Protego

        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            try:
                response = self._get(f"{origin}/robots.txt")
                # RFC 9309: a 4xx robots.txt means no rules; 5xx means assume everything is disallowed.
                if response.status_code >= 500:
                    text = "User-agent: *\nDisallow: /\n"
                else:
                    text = response.text if response.status_code < 400 else ""
            except Exception as exc:  # noqa: BLE001 - network errors mean fully disallowed (RFC 9309)
                raise ScrapeError(f"cannot read {origin}/robots.txt: {exc}") from exc
            self._robots[origin] = Protego.parse(text)
        return self._robots[origin]

    def _get(self, url: str) -> httpx.Response:
        import httpx

        wait = self.source.min_delay_seconds - (time.monotonic() - self._last_request)
        if wait > 0:
            time.sleep(wait)
        for attempt in range(3):
            self._last_request = time.monotonic()
            try:
                response = self.client.get(url)
            except (httpx.TimeoutException, httpx.TransportError):
                if attempt == 2:
                    raise
            else:
                if response.status_code not in (408, 429, 500, 502, 503, 504) or attempt == 2:
                    return response
            self.stats["retries"] += 1
            time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def fetch(self, url: str) -> str:
        response = self._get(url)
        response.raise_for_status()
        self.stats["pages_fetched"] += 1
        self.stats["bytes"] += len(response.content)
        return response.text


def crawl(source: SourceSpec, client: httpx.Client) -> ScrapeResult:
    """Follow pagination from each start URL and return every record, deduplicated by the key."""
    import httpx

    started = time.monotonic()
    crawler, result = Crawler(source, client), ScrapeResult()
    seen_urls: set[str] = set()
    by_key: dict[Any, dict] = {}
    queue = list(source.start_urls)
    while queue and len(seen_urls) < source.max_pages:
        url = queue.pop(0)
        if url in seen_urls:
            continue
        seen_urls.add(url)
        refusal = crawler.allowed(url)
        if refusal:
            crawler.stats["refused"] += 1
            result.quarantined.append({"url": url, "reason": f"refused: {refusal}"})
            continue
        try:
            html = crawler.fetch(url)
        except httpx.HTTPError as exc:
            crawler.stats["pages_failed"] += 1
            result.quarantined.append({"url": url, "reason": f"fetch failed: {exc}"})
            continue
        records, problems, next_url = parse_page(html, url, source)
        if not records:
            crawler.stats["pages_failed"] += 1
            result.quarantined.append({"url": url, "reason": "no records matched source.record_selector",
                                       "html": html[:2000]})
        for record in records:
            key = record.get(source.key)
            if key is None:
                result.quarantined.append({"url": url, "reason": f"record without key {source.key!r}",
                                           "record": record})
            else:
                by_key[key] = record
        result.quarantined.extend(problems)
        if next_url:
            queue.append(next_url)
    result.records = list(by_key.values())
    result.stats = {**crawler.stats, "records_kept": len(result.records), "quarantined": len(result.quarantined),
                    "duration_s": round(time.monotonic() - started, 3)}
    _check_budget(source, result)
    return result


def _check_budget(source: SourceSpec, result: ScrapeResult) -> None:
    stats = result.stats
    attempted = stats["pages_fetched"] + stats["pages_failed"]
    if attempted == 0:
        raise ScrapeError(f"no page fetched from {source.start_urls}: {result.quarantined[:3]}")
    failed_share = stats["pages_failed"] / attempted
    if failed_share > source.max_failed_page_share:
        raise ScrapeError(
            f"{stats['pages_failed']} of {attempted} pages failed ({failed_share:.0%}), over "
            f"source.max_failed_page_share={source.max_failed_page_share:.0%}; first: {result.quarantined[:3]}"
        )
    if not result.records:
        raise ScrapeError(f"no records found at {source.start_urls}")
