"""SourceChangeTrigger: poll a source in the triggerer until its content changes."""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class SourceChangeTrigger(BaseTrigger):
    """Yield ``{"status": "changed", url, etag, last_modified, sha256}`` once one of ``urls`` changed.

    Polls with conditional GETs through the crawl engine (allow list, address check, robots.txt,
    per-host politeness), so waiting costs a 304 per URL and poll, and no worker slot. A policy
    refusal yields ``{"status": "error"}`` at once (waiting cannot fix it); network errors are
    logged and retried at the next poll.

    :param source: the spec's ``source`` section as a plain dict (``SourceSpec.model_dump()``).
    :param urls: the URLs to watch.
    :param known: per URL, ``{etag, last_modified, sha256}`` from the last crawl's state.
    :param poll_interval: seconds between polls.
    """

    def __init__(self, source: dict[str, Any], urls: list[str], known: dict[str, dict], poll_interval: float = 300.0):
        super().__init__()
        self.source, self.urls, self.known, self.poll_interval = source, list(urls), dict(known), float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("mlops_pack.triggers.source_change.SourceChangeTrigger",
                {"source": self.source, "urls": self.urls, "known": self.known, "poll_interval": self.poll_interval})

    async def run(self):
        from mlops_pack.core.change import changed_url
        from mlops_pack.core.fetcher import Refused, describe_error, network_errors
        from mlops_pack.core.spec import SourceSpec

        source = SourceSpec.model_validate(self.source)
        while True:
            try:
                changed = await changed_url(source, self.urls, self.known)
            except Refused as exc:
                yield TriggerEvent({"status": "error", "message": str(exc)})
                return
            except network_errors() as exc:
                self.log.warning("Change check of %s failed, retrying in %ss: %s", self.urls, self.poll_interval,
                                 describe_error(exc))
                changed = None
            if changed:
                yield TriggerEvent({"status": "changed", **changed})
                return
            await asyncio.sleep(self.poll_interval)
