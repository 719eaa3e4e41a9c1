"""ScrapeHook: crawl one source with headers from an optional connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from mlops_pack.core.scrape import ScrapeResult
    from mlops_pack.core.spec import SourceSpec


STATE_FILE = "scrape_state.json"  # per-URL ETag/Last-Modified/hash of the last crawl, in the state area

class ScrapeHook(BaseHook):
    """HTTP(S) crawling of one source through the pack's engine (mlops_pack.core.scrape).

    The engine builds its own async client, because every connection must go through the address
    check of ``core/url_policy.py``; the hook contributes the connection's extra ``headers``.

    :param source: the spec's ``source`` section.
    :param http_conn_id: optional connection whose extra ``headers`` (e.g. an API token) are sent.
    """

    conn_name_attr = "http_conn_id"
    default_conn_name = "scrape_default"
    conn_type = "mlops_scrape"
    hook_name = "MLOps scraping"

    def __init__(self, source: SourceSpec, http_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.source = source
        self.http_conn_id = http_conn_id

    def get_conn(self) -> dict[str, str]:
        """The request headers: the spec's user agent plus the connection's extra ``headers``."""
        headers = {"User-Agent": self.source.user_agent}
        if self.http_conn_id:
            extra = self.get_connection(self.http_conn_id).extra_dejson.get("headers", {})
            if not isinstance(extra, dict):
                raise ValueError(f"connection {self.http_conn_id!r}: extra 'headers' must be a mapping, "
                                 f"got {type(extra).__name__}")
            headers.update({str(k): str(v) for k, v in extra.items()})
        return headers

    def crawl(self, state: dict[str, Any] | None = None) -> ScrapeResult:
        """Crawl the source; ``state`` is the previous crawl's ``ScrapeResult.state``."""
        from mlops_pack.core.scrape import crawl

        return crawl(self.source, self.get_conn(), state=state)
