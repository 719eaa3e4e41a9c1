"""WebScrapeOperator: crawl the spec's source and write this run's raw partition."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_pack.operators.base import PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

STATE_FILE = "scrape_state.json"


class WebScrapeOperator(PipelineOperator):
    """Crawl ``source`` of the spec politely and write the records as the run's ``raw`` partition.

    Pages and records that fail go to ``quarantine/<run>/scrape_rejects.jsonl`` with their URL, kind
    and reason. Past the spec's error budget the task fails and nothing is written to ``raw``.
    Per-URL ETag/Last-Modified (and the records of those pages) are kept in ``state/scrape_state.json``
    so the next run sends conditional requests; it is replaced only after the partition is written.
    Returns the partition manifest (uri, folder, rows, version, partition, stats); the stats also go
    to the asset event of each outlet.

    :param http_conn_id: optional connection whose extra ``headers`` are sent with each request.
    """

    ui_color = "#e8f4fd"

    def __init__(self, *, http_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        from mlops_pack.core.scrape import ScrapeError
        from mlops_pack.core.storage import read_json, write_json, write_partition
        from mlops_pack.hooks.scrape import ScrapeHook

        key, source = self.run_key(context), self.spec.source
        state_path = self.storage.area("state") / STATE_FILE
        state = read_json(state_path) if source.incremental and state_path.exists() else None
        try:
            result = ScrapeHook(source, http_conn_id=self.http_conn_id).crawl(state=state)
        except ScrapeError as exc:
            if exc.result is not None:
                self._quarantine(key, exc.result)
                self.log.error("Scrape stats for %s: %s", self.spec.name, json.dumps(exc.result.stats))
            raise
        self.log.info("Scrape stats for %s: %s", self.spec.name, json.dumps(result.stats))
        self._quarantine(key, result)
        frame = pd.DataFrame.from_records(result.records, columns=list(source.fields))
        manifest = write_partition(self.storage.partition("raw", key), frame, partition=key, stats=result.stats)
        if source.incremental:
            write_json(state_path, result.state)
        self.log.info("Wrote %d rows to %s (version %s)", manifest["rows"], manifest["uri"], manifest["version"])
        summary = {k: manifest[k] for k in ("uri", "folder", "rows", "version", "partition", "stats")}
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = summary
        return summary

    def _quarantine(self, key: str, result) -> None:
        from mlops_pack.core.storage import write_bytes_atomic

        if not result.quarantined:
            return
        rejects = self.storage.partition("quarantine", key) / "scrape_rejects.jsonl"
        write_bytes_atomic(rejects, "\n".join(json.dumps(q, default=str) for q in result.quarantined).encode())
        self.log.warning("%d scrape problems quarantined to %s (first: %s)", len(result.quarantined), rejects,
                         result.quarantined[0]["reason"])
