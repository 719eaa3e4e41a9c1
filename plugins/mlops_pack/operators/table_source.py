"""FileIngestOperator and SqlIngestOperator: read new data from files or a table into raw partitions.

Readers only: typing (core/columns.py over core/value_types.py, the rules of every source kind) and
publishing (operators/ingest.py: raw partitions, ``ingest_rejects.jsonl``, XCom, asset event) are
shared with WebScrapeOperator, so the ingest DAG's validation, quarantine and asset events are the
same for every source kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops_pack.operators.ingest import IngestOperator

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context

FILE_STATE = "file_state.json"
SQL_STATE = "sql_state.json"
MAX_LISTED_FILES = 50  # file URLs carried in stats (XCom, manifest, asset event): the count is always there


class TableIngestOperator(IngestOperator):
    """What file and SQL ingestion share: rows typed by the spec's fields, then the shared publishing."""

    def write_raw(self, context: Context, frames: dict[str | None, list[pd.DataFrame]], stats: dict[str, Any],
                  origin: str) -> dict[str, Any]:
        """Type each group of frames (key None: the run's data key) and write its raw partitions."""
        import pandas as pd

        from mlops_pack.core.columns import SourceColumnsError, conform
        from mlops_pack.core.value_types import ValueFormat

        source, fmt = self.spec.source, ValueFormat.of(self.spec.source)
        reads, problems = [], []
        totals = {"records_kept": 0, "records_quarantined": 0, "duplicate_records": 0, "field_problems": 0}
        for requested, parts in frames.items():
            raw = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            try:
                rows, found, counts = conform(raw, source.fields, source.key, origin, fmt)
            except SourceColumnsError as exc:  # the data or the spec must change: a retry reads the same
                raise AirflowFailException(f"{self.spec.name}: {exc}") from exc
            problems.extend(found)
            totals = {k: totals[k] + counts[k] for k in totals}
            reads.append((requested, rows))
        return self.publish(context, reads, problems, {**stats, **totals}, origin=origin, merge_validated=True)

    def requests(self, context: Context) -> list[dict[str, Any]]:
        """What the triggering events (queue messages, upstream or REST events) ask for (core/inbox.py)."""
        from mlops_pack.core.inbox import MessageError, requests_of

        events = context.get("triggering_asset_events") or {}
        try:
            return requests_of([event.extra or {} for group in events.values() for event in group])
        except MessageError as exc:  # a malformed message stays malformed: no retries
            raise AirflowFailException(str(exc)) from exc


class FileIngestOperator(TableIngestOperator):
    """Read new or changed files of the spec's ``files`` source into ``raw`` partitions.

    Without a request it lists ``source.url`` + ``source.pattern`` and reads the files whose
    fingerprint (ETag, else size and mtime) differs from ``state/file_state.json``; files named by the
    triggering events (``file``/``files`` of a queue message or upstream event, under ``source.url``
    and matching the pattern) are read whatever their fingerprint, each into the partition its event
    names. The state is replaced only after the partitions are written. Nothing new: the task is
    skipped (no validation, no event).
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.file_source import changed_files, file_format, remember, requested_file
        from mlops_pack.core.storage import read_json, write_json
        from mlops_pack.hooks.table_source import FileSourceHook

        source = self.spec.source
        if source.kind != "files":
            raise ValueError(f"{self.spec.name}: FileIngestOperator needs source.kind 'files', got {source.kind!r}")
        hook = FileSourceHook(source.url, conn_id=source.conn_id)
        state_path = self.storage.state(FILE_STATE)
        state = read_json(state_path) if state_path.exists() else None
        named = [r for r in self.requests(context) if r["files"]]
        plan: dict[str | None, list] = {}
        if named:
            for request in named:
                plan.setdefault(request["partition"], []).extend(
                    hook.info(requested_file(f, source.url, source.pattern)) for f in request["files"])
        else:
            todo = changed_files(hook.list(source.pattern), state, source.max_files)
            if todo:
                plan[None] = todo
        if not plan:
            raise AirflowSkipException(f"no new or changed file under {source.url}{source.pattern}")
        if None in plan:
            self.require_identity(self.data_key(context))  # fail before reading
        frames, read, size = {}, [], 0
        for requested, infos in plan.items():
            for info in infos:
                frame = hook.read(info, file_format(info.url, source.format), delimiter=source.csv_delimiter,
                                  max_bytes=source.max_file_bytes)
                self.log.info("Read %d rows from %s", len(frame), info.url)
                frames.setdefault(requested, []).append(frame)
                read.append(info)
                size += info.size
        stats = {"files_read": len(read), "bytes": size, "rows_read": sum(len(f) for fs in frames.values() for f in fs),
                 "files": [f.url for f in read][:MAX_LISTED_FILES]}
        summary = self.write_raw(context, frames, stats, origin=f"{source.url}{source.pattern}")
        write_json(state_path, remember(state, read))
        return summary


class SqlIngestOperator(TableIngestOperator):
    """Read the new rows of the spec's ``sql`` source into ``raw`` partitions.

    The query runs through the connection's DB-API hook, filtered and ordered on
    ``source.watermark_column`` from the last watermark kept in ``state/sql_state.json``
    (core/sql_source.py); the watermark moves only after the partitions are written. No new row:
    the task is skipped.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.sql_source import incremental_query, new_rows
        from mlops_pack.core.storage import read_json, write_json
        from mlops_pack.hooks.table_source import SqlSourceHook

        source = self.spec.source
        if source.kind != "sql":
            raise ValueError(f"{self.spec.name}: SqlIngestOperator needs source.kind 'sql', got {source.kind!r}")
        run_key = self.data_key(context)
        self.require_identity(run_key)  # fail before querying
        state_path = self.storage.state(SQL_STATE)
        state = read_json(state_path) if state_path.exists() else None
        column = _source_column(source, source.watermark_column) if source.watermark_column else None
        sql, params = incremental_query(source.query, column, (state or {}).get("watermark"), source.max_rows)
        self.log.info("Querying %s: %s %s", source.conn_id, sql, params)
        frame = SqlSourceHook(source.conn_id).read(sql, params)
        fresh, next_state = new_rows(frame, watermark_column=column, key_column=_source_column(source, source.key),
                                     state=state)
        if fresh.empty:
            raise AirflowSkipException(f"no new row in {source.conn_id} since watermark "
                                       f"{(state or {}).get('watermark')}")
        stats = {"rows_read": len(frame), "rows_new": len(fresh), "watermark_before": (state or {}).get("watermark"),
                 "watermark_after": next_state.get("watermark")}
        summary = self.write_raw(context, {run_key: [fresh]}, stats, origin=f"query on {source.conn_id}")
        write_json(state_path, next_state)
        return summary


def _source_column(source: Any, name: str) -> str:
    return source.fields[name].column or name


def _safe(run_id: str) -> str:
    from mlops_pack.core.partitions import safe_key

    return safe_key(run_id)
