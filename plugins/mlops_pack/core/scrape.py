"""Crawl a listings site and turn its pages into typed records, quarantining what does not parse.

The engine, in small modules with one job each: ``url_policy`` (allow list and resolved-address
checks), ``fetcher`` (async HTTP with the per-host gate, retries, redirects and size cap),
``robots`` (RFC 9309), ``sitemap`` (sitemap.xml), ``page_parse`` (a page into typed records). This
module discovers pages (start URLs, pagination links, sitemaps; depth and page limits), reuses the records of
pages that answer 304 to a conditional request, deduplicates by the spec's key and applies the
error budget. docs/ingestion.md describes the behaviour a pipeline author relies on.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_pack.core.errors import MlopsError
from mlops_pack.core.page_parse import parse_page
from mlops_pack.core.url_form import normalized_url

if TYPE_CHECKING:
    from mlops_pack.core.spec import SourceSpec

STATE_VERSION = 1
SITEMAP_TYPES = ["application/xml", "text/xml", "application/gzip", "application/x-gzip",
                 "application/octet-stream", "text/plain"]
MAX_SITEMAPS = 50


class ScrapeError(MlopsError, RuntimeError):
    """The crawl cannot produce a trustworthy partition (unreachable site, error budget spent).

    ``result`` holds what the crawl saw (quarantine, stats), so the caller can still store the
    quarantine for diagnosis while writing nothing to the raw partition.
    """

    def __init__(self, message: str, result: ScrapeResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass(repr=False)
class ScrapeResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)  # {url, kind, reason, ...}
    stats: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # incremental state to store for the next crawl

    def __repr__(self) -> str:
        # Short on purpose: asyncio.run() reprs its main task, result included, when it restores the
        # SIGINT handler; the dataclass repr of a big crawl (every record) cost ~100 ms there.
        return (f"ScrapeResult(records={len(self.records)}, quarantined={len(self.quarantined)}, "
                f"stats={self.stats!r})")


@dataclass
class Page:
    """What one URL gave: ``outcome`` is fetched, not_modified, failed or refused."""

    url: str
    depth: int
    outcome: str = "failed"
    reason: str = ""
    records: list[dict] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    validators: dict[str, str] = field(default_factory=dict)
    snippet: str = ""


def crawl(source: SourceSpec, headers: dict[str, str] | None = None, *,
          state: dict[str, Any] | None = None) -> ScrapeResult:
    """Crawl ``source`` and return its records, deduplicated by the key; raises ScrapeError past the
    error budget. ``state`` is the previous crawl's ``ScrapeResult.state`` (conditional requests)."""
    return asyncio.run(crawl_async(source, headers, state=state))


async def crawl_async(source: SourceSpec, headers: dict[str, str] | None = None, *,
                      state: dict[str, Any] | None = None) -> ScrapeResult:
    result = await Crawl(source, headers, state).run()
    check_budget(source, result)
    return result


class Crawl:
    """One crawl: a frontier of (url, depth) consumed by workers that share one Fetcher."""

    def __init__(self, source: SourceSpec, headers: dict[str, str] | None, state: dict[str, Any] | None):
        state = state if state and state.get("version") == STATE_VERSION else {}
        self.source, self.headers, self.state = source, headers, state
        self.previous: dict[str, dict] = state.get("pages", {}) if source.incremental else {}
        self.pages: dict[str, Page] = {}
        self.sitemap_problems: list[dict] = []
        self.counts = {"offsite_links_skipped": 0, "page_limit_skipped": 0, "sitemap_urls": 0, "deadline_skipped": 0}
        self.sitemaps_done = False
        self.queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self.to_parse: asyncio.Queue = asyncio.Queue()

    async def run(self) -> ScrapeResult:
        from mlops_pack.core.fetcher import Fetcher
        from mlops_pack.core.robots import RobotsCache

        started = time.monotonic()
        async with Fetcher(self.source, self.headers) as fetcher:
            self.fetcher = fetcher
            self.robots = RobotsCache(fetcher, self.source.robots_cache_seconds, self.state.get("robots"))
            fetcher.robots_check = self.robots.refusal
            for url in self.source.start_urls:
                self.enqueue(url, 0, seed=True)
            # Twice the slots: a spare worker waits on the host gate, so a freed slot is refilled at
            # once instead of after its worker's own bookkeeping. In-flight requests stay <= the limit.
            hosts = len({h.lower() for h in self.source.allowed_hosts})
            workers = [asyncio.create_task(self.worker())
                       for _ in range(min(256, 2 * self.source.max_concurrency_per_host * hosts))]
            workers.append(asyncio.create_task(self.parser()))
            # Crawl-wide deadline: per-request timeouts bound one URL, not how many trickle in.
            deadline = asyncio.timeout(self.source.max_crawl_seconds)
            try:
                async with deadline:
                    await self.discover_sitemaps()
                    await self.queue.join()
            except TimeoutError:
                if not deadline.expired():
                    raise
                self.deadline_passed()
            finally:
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        return self.result(time.monotonic() - started)

    def deadline_passed(self) -> None:
        """Pages not settled at the deadline fail with that reason, so the error budget decides."""
        reason = (f"not fetched: the crawl reached source.max_crawl_seconds={self.source.max_crawl_seconds:g} "
                  f"before this page was settled")
        for page in self.pages.values():
            if page.outcome == "failed" and not page.reason:
                page.reason = reason
                self.counts["deadline_skipped"] += 1
        if not self.sitemaps_done:
            self.sitemap_problem(", ".join(self.source.sitemaps) or "robots.txt",
                                 f"sitemaps not all read: {reason.split(': ', 1)[1]}")

    def enqueue(self, url: str, depth: int, seed: bool = False) -> None:
        url = normalized_url(url)  # one spelling per page: robots.txt, the allow list and the request agree
        if url in self.pages or depth > self.source.max_depth:
            return
        if not seed and self.fetcher.policy.url_refusal(url):
            self.counts["offsite_links_skipped"] += 1  # links off the allow list are normal, not errors
            return
        if len(self.pages) >= self.source.max_pages:
            self.counts["page_limit_skipped"] += 1
            return
        self.pages[url] = Page(url, depth)
        self.queue.put_nowait((url, depth))

    async def worker(self) -> None:
        """Fetch stage: parsing is handed to ``parser`` so the next request leaves at once."""
        while True:
            url, _ = await self.queue.get()
            page = self.pages[url]
            try:
                fetched = await self.visit(page)
            except Exception as exc:  # noqa: BLE001 - one page's surprise must not hang or sink the crawl
                page.outcome, page.reason, fetched = "failed", f"unexpected {type(exc).__name__}: {exc}", None
            if fetched is None:
                self.finish(page)
            else:
                self.to_parse.put_nowait((page, fetched))

    async def parser(self) -> None:
        """Parse stage: one task, CPU-bound, runs between network events.

        Before each page it yields once, so responses already read and requests ready to leave go
        first: a page parsed while other responses wait would delay their next requests (~1.6 ms of
        CPU per listing page), and those delays add up to a few percent at the politeness ceiling.
        """
        while True:
            page, fetched = await self.to_parse.get()
            await asyncio.sleep(0)
            try:
                self.parse(page, fetched)
            except Exception as exc:  # noqa: BLE001 - a page lxml cannot handle is quarantined, not fatal
                page.outcome, page.reason = "failed", f"cannot parse: {type(exc).__name__}: {exc}"
            finally:
                self.finish(page)

    def finish(self, page: Page) -> None:
        try:
            for link in page.links:  # before task_done, so join() cannot return between the two
                self.enqueue(link, page.depth + 1)
        finally:
            self.queue.task_done()

    async def visit(self, page: Page):
        """The response to parse, or None when the page is settled (failed, refused, not modified)."""
        from mlops_pack.core.fetcher import Refused, describe_error, network_errors

        before = self.previous.get(page.url, {})
        conditional = {}
        if before.get("etag"):
            conditional["If-None-Match"] = before["etag"]
        if before.get("last_modified"):
            conditional["If-Modified-Since"] = before["last_modified"]
        try:
            fetched = await self.fetcher.fetch(page.url, conditional=conditional,
                                               content_types=self.source.allowed_content_types)
        except Refused as exc:
            page.outcome = "refused" if exc.kind in ("robots", "host") else "failed"
            page.reason = str(exc)
            return None
        except network_errors() as exc:
            page.reason = f"fetch failed: {describe_error(exc)}"
            return None
        if fetched.status == 304 and conditional:
            page.outcome = "not_modified"
            page.validators = {k: before.get(k) for k in ("etag", "last_modified", "sha256")}
            page.records, page.problems, page.links = before["records"], before["problems"], before["links"]
            return None
        if 200 <= fetched.status < 300:
            return fetched
        page.reason = f"fetch failed: HTTP {fetched.status}"
        return None

    def parse(self, page: Page, fetched) -> None:
        html = fetched.text()
        page.records, page.problems, page.links = parse_page(html, page.url, self.source)
        if not page.records:
            stopped = [p["reason"] for p in page.problems if p["kind"] == "page"]
            page.problems = [p for p in page.problems if p["kind"] != "page"]
            page.reason = stopped[0] if stopped else "no records matched source.record_selector"
            page.snippet = html[:2000]
            return
        page.outcome = "fetched"
        page.validators = {"etag": fetched.headers.get("etag"), "last_modified": fetched.headers.get("last-modified"),
                           "sha256": hashlib.sha256(fetched.body).hexdigest()}  # change sensor's baseline

    async def discover_sitemaps(self) -> None:
        todo = [*self.source.sitemaps, *await self.robots_sitemaps()]
        done: set[str] = set()
        while todo:
            url = todo.pop(0)
            if url in done:
                continue
            if len(done) >= MAX_SITEMAPS:  # said, not silently dropped: their pages are missing
                left = len({url, *todo} - done)
                self.sitemap_problem(url, f"{left} sitemap files not read (this one and the next): at most "
                                          f"{MAX_SITEMAPS} are")
                break
            done.add(url)
            todo += await self.read_sitemap(url)
        self.sitemaps_done = True

    async def robots_sitemaps(self) -> list[str]:
        from mlops_pack.core.fetcher import describe_error, network_errors

        found = []
        for url in self.source.start_urls if self.source.sitemaps_from_robots else []:
            try:
                found += await self.robots.sitemaps(url)
            except network_errors() as exc:  # the page itself gets the same refusal as its reason
                self.sitemap_problem(url, describe_error(exc))
        return found

    async def read_sitemap(self, url: str) -> list[str]:
        """Enqueue the pages of one sitemap; returns the nested sitemaps it lists."""
        from mlops_pack.core.fetcher import FetchFailed, describe_error, network_errors
        from mlops_pack.core.sitemap import parse_sitemap

        try:
            fetched = await self.fetcher.fetch(url, content_types=SITEMAP_TYPES)
            if fetched.status != 200:
                raise FetchFailed(f"HTTP {fetched.status}")
            pages, nested, problem = parse_sitemap(fetched.body, self.source.max_response_bytes)
        except (*network_errors(), ValueError) as exc:
            self.sitemap_problem(url, describe_error(exc))
            return []
        if problem:
            self.sitemap_problem(url, problem)
        self.counts["sitemap_urls"] += len(pages)
        for page_url in pages:
            self.enqueue(page_url, 0, seed=True)
        return nested

    def sitemap_problem(self, url: str, reason: str) -> None:
        self.sitemap_problems.append({"url": url, "kind": "sitemap", "reason": reason})

    def result(self, duration: float) -> ScrapeResult:
        result = ScrapeResult(quarantined=[*self.robots.notes, *self.sitemap_problems])
        ordered = sorted(self.pages.values(), key=lambda p: (p.depth, p.url))
        records = collect_records(ordered, self.source.key, result.quarantined)
        result.records = records.pop("kept")
        outcomes = [p.outcome for p in ordered]
        result.stats = {
            "pages_fetched": outcomes.count("fetched"), "not_modified": outcomes.count("not_modified"),
            "pages_failed": outcomes.count("failed"), "refused": outcomes.count("refused"),
            **{k: v for k, v in self.fetcher.stats.items()}, "robots_fetched": self.robots.fetched,
            "crawl_delay_capped": len(self.robots.notes),
            **self.counts, "records_kept": len(result.records), **records,
            "quarantined": len(result.quarantined), "duration_s": round(duration, 3),
        }
        result.state = {"version": STATE_VERSION, "robots": self.robots.to_state(), "pages": {
            p.url: {**p.validators, "records": p.records, "problems": p.problems, "links": p.links}
            for p in ordered if p.outcome in ("fetched", "not_modified") and any(p.validators.values())}}
        return result


def collect_records(pages: list[Page], key: str, quarantine: list[dict]) -> dict[str, Any]:
    """Records of ``pages`` in order, one per key by the rule of every source kind (the last read
    wins, core/value_types.keep_last); problems appended to ``quarantine``."""
    from mlops_pack.core.value_types import keep_last, keyless_reason, superseded_reason

    counts = {"records_quarantined": 0, "duplicate_records": 0, "field_problems": 0}
    found: list[tuple[str, dict]] = []
    for page in pages:
        if page.outcome in ("failed", "refused"):
            entry = {"url": page.url, "kind": "page" if page.outcome == "failed" else "refused", "reason": page.reason}
            quarantine.append({**entry, "html": page.snippet} if page.snippet else entry)
        quarantine.extend(page.problems)
        counts["field_problems"] += sum(p["kind"] == "field" for p in page.problems)
        found.extend((page.url, record) for record in page.records)
    plan = keep_last([r.get(key) for _, r in found], [tuple(r.items()) for _, r in found])
    for position in sorted(plan["keyless"] + plan["superseded"]):
        url, record = found[position]
        reason = keyless_reason(key) if record.get(key) is None else superseded_reason(key, record[key])
        quarantine.append({"url": url, "kind": "record", "reason": reason, "record": record})
    counts["records_quarantined"] = len(plan["keyless"]) + len(plan["superseded"])
    counts["duplicate_records"] = len(plan["superseded"]) + len(plan["identical"])
    return {"kept": [found[p][1] for p in plan["kept"]], **counts}


def check_budget(source: SourceSpec, result: ScrapeResult) -> None:
    """Raise ScrapeError when the crawl fetched nothing or spent the spec's error budget."""
    stats, first = result.stats, [q["reason"] for q in result.quarantined if q.get("kind") != "field"][:3]
    attempted = stats["pages_fetched"] + stats["not_modified"] + stats["pages_failed"]
    if attempted == 0:
        raise ScrapeError(f"no page fetched from {source.start_urls}: {first}", result)
    failed_share = stats["pages_failed"] / attempted
    if failed_share > source.max_failed_page_share:
        raise ScrapeError(
            f"{stats['pages_failed']} of {attempted} pages failed ({failed_share:.0%}), over "
            f"source.max_failed_page_share={source.max_failed_page_share:.0%}; first: {first}", result)
    total = stats["records_kept"] + stats["records_quarantined"]
    if total and stats["records_quarantined"] / total > source.max_failed_record_share:
        raise ScrapeError(
            f"{stats['records_quarantined']} of {total} records quarantined, over "
            f"source.max_failed_record_share={source.max_failed_record_share:.0%}; first: {first}", result)
    if not result.records:
        raise ScrapeError(f"no records found at {source.start_urls}; first problems: {first}", result)
