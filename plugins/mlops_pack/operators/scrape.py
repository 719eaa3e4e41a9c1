"""WebScrapeOperator: crawl the spec's source and write this run's raw partition."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_pack.operators.base import PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class WebScrapeOperator(PipelineOperator):
    """Crawl ``source`` of the spec politely and write the records as the run's ``raw`` partition.

    Records or pages that fail to parse go to ``quarantine/<run>/scrape_rejects.jsonl`` with their URL
    and reason. Returns the partition manifest (uri, version, rows, stats).

    :param http_conn_id: optional connection whose extra ``headers`` are sent with each request.
    """

    ui_color = "#e8f4fd"

    def __init__(self, *, http_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        from mlops_pack.core.storage import write_bytes_atomic, write_partition
        from mlops_pack.hooks.scrape import ScrapeHook

        key = self.run_key(context)
        result = ScrapeHook(self.spec.source, http_conn_id=self.http_conn_id).crawl()
        self.log.info("Scrape stats for %s: %s", self.spec.name, json.dumps(result.stats))
        if result.quarantined:
            rejects = self.storage.partition("quarantine", key) / "scrape_rejects.jsonl"
            write_bytes_atomic(rejects, "\n".join(json.dumps(q, default=str) for q in result.quarantined).encode())
            self.log.warning("%d scrape problems quarantined to %s (first: %s)", len(result.quarantined), rejects,
                             result.quarantined[0]["reason"])
        frame = pd.DataFrame.from_records(result.records, columns=list(self.spec.source.fields))
        manifest = write_partition(self.storage.partition("raw", key), frame, partition=key, stats=result.stats)
        self.log.info("Wrote %d rows to %s (version %s)", manifest["rows"], manifest["uri"], manifest["version"])
        return {k: manifest[k] for k in ("uri", "folder", "rows", "version", "partition", "stats")}
