"""ScrapeHook: the HTTP client a crawl uses, with headers and timeouts from an optional connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    import httpx

    from mlops_pack.core.scrape import ScrapeResult
    from mlops_pack.core.spec import SourceSpec


class ScrapeHook(BaseHook):
    """HTTP(S) client for crawling one source.

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

    def get_conn(self) -> httpx.Client:
        import httpx

        headers = {"User-Agent": self.source.user_agent}
        if self.http_conn_id:
            headers.update(self.get_connection(self.http_conn_id).extra_dejson.get("headers", {}))
        return httpx.Client(headers=headers, timeout=self.source.timeout_seconds, follow_redirects=True,
                            max_redirects=5, trust_env=False)

    def crawl(self) -> ScrapeResult:
        from mlops_pack.core.scrape import crawl

        with self.get_conn() as client:
            return crawl(self.source, client)
