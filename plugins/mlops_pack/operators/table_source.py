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

    def typed(self, frame: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, list[dict[str, Any]], int]:
        """``frame`` typed by the spec's fields (core/columns.py); SourceColumnsError names ``origin``."""
        from mlops_pack.core.columns import type_frame
        from mlops_pack.core.value_types import ValueFormat

        return type_frame(frame, self.spec.source.fields, origin, ValueFormat.of(self.spec.source))

    def write_raw(self, context: Context, reads: dict[str | None, list[pd.DataFrame]], problems: list[dict],
                  stats: dict[str, Any], origin: str) -> dict[str, Any]:
        """De-duplicate each group of typed frames (key None: the run's data key), in read order, and
        write its raw partitions."""
        import pandas as pd

        from mlops_pack.core.columns import keep_last_rows

        problems, kept_reads = list(problems), []
        totals = {"records_kept": 0, "records_quarantined": 0, "duplicate_records": 0}
        for requested, parts in reads.items():
            rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            kept, found, counts = keep_last_rows(rows, self.spec.source.key, origin)
            problems.extend(found)
            totals = {k: totals[k] + counts[k] for k in totals}
            kept_reads.append((requested, kept))
        return self.publish(context, kept_reads, problems, {**stats, **totals}, origin=origin, merge_validated=True)

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

    :param chunk_rows: rows read and typed at a time (the reader's memory is one chunk).
    """

    def __init__(self, *, chunk_rows: int = 50_000, **kwargs: Any):
        super().__init__(**kwargs)
        self.chunk_rows = chunk_rows

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.file_source import remember
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.storage import read_json, write_json
        from mlops_pack.hooks.table_source import FileSourceHook

        source = self.spec.source
        if source.kind != "files":
            raise ValueError(f"{self.spec.name}: FileIngestOperator needs source.kind 'files', got {source.kind!r}")
        hook = FileSourceHook(source.url, conn_id=source.conn_id)
        state_path = self.storage.state(FILE_STATE)
        state = read_json(state_path) if state_path.exists() else None
        plan = self.plan(context, hook, state)
        typed, problems, read, refused, counts = self.read_files(hook, plan)
        if not read:
            self.refuse_all(context, problems, refused, state_path, state)
        stats = {"files_read": len(read), **counts, "files_refused": len(refused),
                 "files": [f.url for f in read][:MAX_LISTED_FILES]}
        self.lineage.read(*(storage_dataset(f.url, kind="source") for f in read))
        summary = self.write_raw(context, typed, problems, stats, origin=f"{source.url}{source.pattern}")
        write_json(state_path, remember(state, read, refused))
        return summary

    def plan(self, context: Context, hook: Any, state: dict | None) -> dict[str | None, list]:
        """Files to read by requested partition (None: the run's data key); skips the task when none."""
        from mlops_pack.core.file_source import changed_files, requested_file

        source = self.spec.source
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
        return plan

    def read_files(self, hook: Any, plan: dict[str | None, list]) -> tuple[dict, list, list, dict, dict]:
        """Read and type each planned file on its own: (typed frames by partition, problems, files read,
        files refused as url -> (file, reason), counts). A bad file (unreadable, a NUL byte, a missing
        or untypable column) is refused alone: the good files beside it are read."""
        from mlops_pack.core.columns import SourceColumnsError, capped
        from mlops_pack.core.file_source import FileSourceError, file_format

        source = self.spec.source
        typed: dict[str | None, list] = {}
        problems, read, refused = [], [], {}
        counts = {"bytes": 0, "rows_read": 0, "field_problems": 0}
        for requested, infos in plan.items():
            for info in infos:
                try:  # streamed: a chunk is typed before the next is read; one bad chunk refuses the whole file
                    parts, found, rows_read, field_problems = [], [], 0, 0
                    for chunk in hook.chunks(info, file_format(info.url, source.format),
                                             delimiter=source.csv_delimiter, max_bytes=source.max_file_bytes,
                                             chunk_rows=self.chunk_rows):
                        rows, listed, counted = self.typed(chunk, info.url)
                        parts.append(rows)
                        found.extend(listed)
                        rows_read, field_problems = rows_read + len(chunk), field_problems + counted
                except (FileSourceError, SourceColumnsError) as exc:
                    refused[info.url] = (info, str(exc))
                    problems.append({"kind": "file", "origin": info.url, "reason": str(exc), **info.fingerprint})
                    self.log.error("Refused %s: %s", info.url, exc)
                    continue
                self.log.info("Read %d rows from %s in %d chunks", rows_read, info.url, len(parts))
                typed.setdefault(requested, []).extend(parts)
                problems.extend(capped(found))
                counts = {"bytes": counts["bytes"] + info.size, "rows_read": counts["rows_read"] + rows_read,
                          "field_problems": counts["field_problems"] + field_problems}
                read.append(info)
        return typed, problems, read, refused, counts

    def refuse_all(self, context: Context, problems: list[dict], refused: dict, state_path: Any, state: Any) -> None:
        """No file could be read: their reasons are kept (quarantine/_failed_reads/<run>/), the files are
        remembered as refused (not read again until they change) and the task fails naming them."""
        from mlops_pack.core.file_source import remember
        from mlops_pack.core.storage import write_json

        self.write_rejects(self.storage.partition("quarantine", "_failed_reads") / _safe(context["run_id"]), problems)
        write_json(state_path, remember(state, [], refused))
        reasons = "; ".join(reason for _, reason in list(refused.values())[:5])
        raise AirflowFailException(f"{self.spec.name}: no file could be read ({len(refused)} refused): {reasons}")


class SqlIngestOperator(TableIngestOperator):
    """Read the new rows of the spec's ``sql`` source into ``raw`` partitions.

    The query runs through the connection's DB-API hook, filtered and ordered on
    ``source.watermark_column`` from the last watermark kept in ``state/sql_state.json``
    (core/sql_source.py); the watermark moves only after the partitions are written. No new row:
    the task is skipped.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.columns import SourceColumnsError
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
        origin = f"query on {source.conn_id}"
        try:
            rows, problems, field_problems = self.typed(fresh, origin)
        except SourceColumnsError as exc:  # the query or the spec must change: a retry reads the same
            raise AirflowFailException(f"{self.spec.name}: {exc}") from exc
        stats = {"rows_read": len(frame), "rows_new": len(fresh), "watermark_before": (state or {}).get("watermark"),
                 "watermark_after": next_state.get("watermark"), "field_problems": field_problems}
        summary = self.write_raw(context, {run_key: [rows]}, problems, stats, origin=origin)
        write_json(state_path, next_state)
        return summary


def _source_column(source: Any, name: str) -> str:
    return source.fields[name].column or name


def _safe(run_id: str) -> str:
    from mlops_pack.core.partitions import safe_key

    return safe_key(run_id)
