"""WebScrapeOperator: crawl the spec's source and write the raw partitions of the data it found."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_pack.operators.ingest import IngestOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class WebScrapeOperator(IngestOperator):
    """Crawl ``source`` of the spec politely and write the records as ``raw`` partitions.

    Each partition is named by the data it holds (docs/storage.md): the value of the spec's
    ``partition.column`` in each row, else the run's data key (conf ``partition``, partition key,
    logical date). A re-crawl of the same data replaces the same partitions. Pages and records that
    fail are listed in ``ingest_rejects.jsonl`` beside each partition's data (for a crawl that fails
    as a whole: ``quarantine/_failed_crawls/<run>/``). Past the spec's error budget the task fails
    and nothing is written to ``raw``. Per-URL ETag/Last-Modified (and the records of those pages)
    are kept in ``state/scrape_state.json`` so the next run sends conditional requests; it is
    replaced only after the partitions are written. Returns ``{partitions, rows, stats}`` and pushes
    the partition keys to XCom ``partitions`` (what the validate task reads).

    :param http_conn_id: optional connection whose extra ``headers`` are sent with each request.
    """

    def __init__(self, *, http_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.lineage import source_dataset
        from mlops_pack.core.scrape import ScrapeError
        from mlops_pack.core.storage import read_json, write_json
        from mlops_pack.hooks.scrape import STATE_FILE, ScrapeHook

        source, run_key = self.spec.source, self.data_key(context)
        self.require_identity(run_key)  # fail before touching the site
        state_path = self.storage.state(STATE_FILE)
        state = read_json(state_path) if source.incremental and state_path.exists() else None
        try:
            result = ScrapeHook(source, http_conn_id=self.http_conn_id).crawl(state=state)
        except ScrapeError as exc:
            if exc.result is not None:
                self.write_rejects(self.storage.partition("quarantine", "_failed_crawls") /
                                   _safe(context["run_id"]), exc.result.quarantined)
                self.log.error("Scrape stats for %s: %s", self.spec.name, json.dumps(exc.result.stats))
            raise
        self.log.info("Scrape stats for %s: %s", self.spec.name, json.dumps(result.stats))
        self.lineage.read(*(source_dataset(url) for url in source.start_urls))
        summary = self.publish(context, [(run_key, self._typed_frame(result.records))], result.quarantined,
                               result.stats, origin=", ".join(source.start_urls), merge_validated=False)
        if source.incremental:
            write_json(state_path, result.state)
        return summary

    def _typed_frame(self, records: list[dict[str, Any]]):
        from mlops_pack.core.value_types import stored_frame

        return stored_frame(records, {name: spec.type for name, spec in self.spec.source.fields.items()})


def _safe(run_id: str) -> str:
    from mlops_pack.core.partitions import safe_key

    return safe_key(run_id)
