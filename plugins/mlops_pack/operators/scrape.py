"""WebScrapeOperator: crawl the spec's source and write the raw partitions of the data it found."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_pack.operators.base import PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

REJECTS_FILE = "scrape_rejects.jsonl"


class WebScrapeOperator(PipelineOperator):
    """Crawl ``source`` of the spec politely and write the records as ``raw`` partitions.

    Each partition is named by the data it holds (docs/storage.md): the value of the spec's
    ``partition.column`` in each row, else the run's data key (conf ``partition``, partition key,
    logical date). A re-crawl of the same data replaces the same partitions. Pages and records that
    fail are listed in ``scrape_rejects.jsonl`` beside each partition's data (for a crawl that fails
    as a whole: ``quarantine/_failed_crawls/<run>/``). Past the spec's error budget the task fails
    and nothing is written to ``raw``. Per-URL ETag/Last-Modified (and the records of those pages)
    are kept in ``state/scrape_state.json`` so the next run sends conditional requests; it is
    replaced only after the partitions are written. Returns ``{partitions, rows, stats}`` and pushes
    the partition keys to XCom ``partitions`` (what the validate task reads).

    :param http_conn_id: optional connection whose extra ``headers`` are sent with each request.
    """

    ui_color = "#e8f4fd"

    def __init__(self, *, http_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.partitions import PartitionError, require_identity
        from mlops_pack.core.scrape import ScrapeError
        from mlops_pack.core.storage import read_json, write_json
        from mlops_pack.hooks.scrape import STATE_FILE, ScrapeHook

        source, run_key = self.spec.source, self.data_key(context)
        require_identity(self.spec.partition.column, run_key)  # fail before touching the site
        state_path = self.storage.state(STATE_FILE)
        state = read_json(state_path) if source.incremental and state_path.exists() else None
        try:
            result = ScrapeHook(source, http_conn_id=self.http_conn_id).crawl(state=state)
        except ScrapeError as exc:
            if exc.result is not None:
                self._write_rejects(self.storage.partition("quarantine", "_failed_crawls") /
                                    _safe(context["run_id"]), exc.result.quarantined)
                self.log.error("Scrape stats for %s: %s", self.spec.name, json.dumps(exc.result.stats))
            raise
        self.log.info("Scrape stats for %s: %s", self.spec.name, json.dumps(result.stats))
        written = self._write_raw(result, run_key)
        if not written:
            raise PartitionError(f"{self.spec.name}: the crawl found no record with a partition: nothing to ingest")
        if source.incremental:
            write_json(state_path, result.state)
        summary = {"partitions": written, "rows": sum(p["rows"] for p in written), "stats": result.stats}
        context["ti"].xcom_push(key="partitions", value=[p["key"] for p in written])
        self.emit(context, summary)
        return summary

    def _write_raw(self, result, run_key: str | None) -> list[dict[str, Any]]:
        import pandas as pd

        from mlops_pack.core.partitions import split_by_key
        from mlops_pack.core.storage import write_partition

        column, key_field = self.spec.partition.column, self.spec.source.key
        frame = pd.DataFrame.from_records(result.records, columns=list(self.spec.source.fields))
        # Crawl order varies with concurrency; the key order does not, so equal data gets an equal version.
        frame = frame.sort_values(key_field, kind="stable", ignore_index=True)
        groups, keyless = split_by_key(frame, column, run_key)
        rejects = list(result.quarantined) + [
            {"kind": "record", "reason": f"no value in partition.column {column!r}", "record": r}
            for r in keyless.to_dict(orient="records")]
        written = []
        for key, rows in groups.items():
            folder = self.storage.partition("raw", key)
            manifest = write_partition(folder, rows, key=key, stats=result.stats)
            self._write_rejects(folder, rejects)
            self.log.info("Wrote %d rows to raw partition %s (version %s, replaces %s)", manifest["rows"], key,
                          manifest["version"], manifest["replaces"])
            written.append({k: manifest[k] for k in ("uri", "folder", "rows", "version")} | {"key": key})
        return written

    def _write_rejects(self, folder, rejects: list[dict]) -> None:
        from mlops_pack.core.storage import write_bytes_atomic

        path = folder / REJECTS_FILE
        if not rejects:
            if path.exists():
                path.unlink()  # a clean re-crawl leaves no stale list behind
            return
        write_bytes_atomic(path, "\n".join(json.dumps(q, default=str) for q in rejects).encode())
        self.log.warning("%d scrape problems listed in %s (first: %s)", len(rejects), path, rejects[0]["reason"])


def _safe(run_id: str) -> str:
    from mlops_pack.core.partitions import safe_key

    return safe_key(run_id)
