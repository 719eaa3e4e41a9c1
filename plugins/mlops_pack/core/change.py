"""Has a source changed since the last crawl? One polite, safe round of conditional GETs.

Used by the change sensor's trigger. A URL counts as changed when it answers 200 (not 304) and its
body's SHA-256 differs from the stored one (servers that ignore validators still send 200 for
unchanged pages, so the hash decides, not the status alone).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_pack.core.spec import SourceSpec


async def changed_url(source: SourceSpec, urls: list[str], known: dict[str, dict]) -> dict[str, Any] | None:
    """``{url, etag, last_modified, sha256}`` of the first of ``urls`` whose content changed, or None.

    ``known`` maps URL to the crawl state's ``{etag, last_modified, sha256}``. Raises Refused when
    policy forbids a URL (a configuration error) and ``fetcher.network_errors()`` when the site fails
    or the round takes longer than ``source.max_crawl_seconds`` (it runs in the triggerer's loop).
    """
    from mlops_pack.core.fetcher import FetchFailed

    deadline = asyncio.timeout(source.max_crawl_seconds)
    try:
        async with deadline:
            return await _first_changed(source, urls, known)
    except TimeoutError:
        if not deadline.expired():
            raise  # one request's own timeout, already described by describe_error()
        raise FetchFailed(f"change check of {urls} passed source.max_crawl_seconds="
                          f"{source.max_crawl_seconds:g}") from None


async def _first_changed(source: SourceSpec, urls: list[str], known: dict[str, dict]) -> dict[str, Any] | None:
    from mlops_pack.core.fetcher import Fetcher, FetchFailed
    from mlops_pack.core.robots import RobotsCache

    async with Fetcher(source) as fetcher:
        fetcher.robots_check = RobotsCache(fetcher, source.robots_cache_seconds).refusal
        for url in urls:
            before = known.get(url) or {}
            conditional = {}
            if before.get("etag"):
                conditional["If-None-Match"] = before["etag"]
            if before.get("last_modified"):
                conditional["If-Modified-Since"] = before["last_modified"]
            fetched = await fetcher.fetch(url, conditional=conditional, content_types=source.allowed_content_types)
            if fetched.status == 304:
                continue
            if not 200 <= fetched.status < 300:
                raise FetchFailed(f"{url}: HTTP {fetched.status}")
            digest = hashlib.sha256(fetched.body).hexdigest()
            if digest != before.get("sha256"):
                return {"url": url, "etag": fetched.headers.get("etag"),
                        "last_modified": fetched.headers.get("last-modified"), "sha256": digest}
    return None
