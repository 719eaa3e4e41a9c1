"""LabelsOperator: the truth that arrives after scoring, written as ``labels/<partition>`` partitions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlops_pack.operators.base import PipelineOperator
from mlops_pack.tasks import event_partition_keys

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Asset, Context

LABEL_FILE_STATE = "label_file_state.json"
SQL_LABEL_STATE = "sql_labels_state.json"


class LabelsOperator(PipelineOperator):
    """Write label partitions from the spec's ``labels`` source and emit the labels asset.

    ``kind: later_partitions``: each validated partition's ``model.target`` values become the label
    partition of the same key: the validated partitions named by the triggering events or by
    ``partitions``, else every one whose labels are missing or older than its data. ``kind: files``:
    each new or changed file under ``labels.url`` + ``labels.pattern`` (fingerprints in
    ``state/label_file_state.json``, replaced only after the partitions are written) becomes the
    label partition named after the file. ``kind: sql``: the query's rows past the watermark kept in
    ``state/sql_labels_state.json`` (moved only after the partitions are written), each into the label
    partition its ``labels.partition_column`` value names, merged with what that partition holds (a
    label delivered again changes nothing; a changed one is kept and listed). ``kind: events``: the
    labels the run's ``<name>.label_inbox`` events deliver (REST or queue messages), merged the same way
    into the partitions they name. Rejected rows and contradicting labels are listed beside
    each partition (core/labels.py); nothing new: the task is skipped. Returns and emits
    {partitions: [{key, rows, version, contradictions, rejects}], rows}.

    :param asset: the pipeline's labels asset (this task's outlet).
    :param partitions: validated partition keys to take labels from (templated; later_partitions only);
        default: Params ``partitions``.
    :param validated_asset: the pipeline's validated asset, whose triggering events name partitions.
    """

    template_fields = (*PipelineOperator.template_fields, "partitions")
    ui_color = "#f0f7e8"

    def __init__(self, *, asset: Asset, partitions: list[str] | None = None, validated_asset: Asset | None = None,
                 **kwargs: Any):
        super().__init__(outlets=[asset], **kwargs)
        self.partitions, self.validated_asset = partitions, validated_asset

    def execute(self, context: Context) -> dict[str, Any]:
        labels = self.spec.labels
        if labels is None:
            raise ValueError(f"{self.spec.name}: the spec has no labels section: nothing says where the truth is")
        if labels.kind == "files":
            written = self._from_files()
        elif labels.kind == "sql":
            written = self._from_sql()
        elif labels.kind == "events":
            written = self._from_events(context)
        else:
            written = [self.write_labels(key, frame, origin, source_version=version)
                       for key, frame, origin, version in self._from_validated(context)]
        summary = {"partitions": written, "rows": sum(p["rows"] for p in written)}
        self.emit(context, summary)
        return summary

    def _from_validated(self, context: Context):
        from mlops_pack.core.labels import LABEL
        from mlops_pack.core.storage import list_partitions, read_partition

        key, target = self.spec.source.key, self.spec.model.target
        validated = {m["partition"]: m for m in list_partitions(self.storage.area("validated"))}
        named = (list(self.partitions or []) or list((context.get("params") or {}).get("partitions") or [])
                 or event_partition_keys(context, self.validated_asset))
        if named:
            unknown = [k for k in named if k not in validated]
            if unknown:
                raise ValueError(f"no validated partition {unknown} to take labels from; have {list(validated)[-10:]}")
            todo = named
        else:
            known = {m["partition"]: m.get("source_version") for m in list_partitions(self.storage.area("labels"))}
            todo = [k for k, m in validated.items() if known.get(k) != m["version"]]
        if not todo:
            raise AirflowSkipException(f"every validated partition of {self.spec.name} has its labels already")
        for partition in todo:
            manifest = validated[partition]
            frame = read_partition(self.storage.path(manifest["folder"]), columns=[key, target])
            yield partition, frame.rename(columns={target: LABEL}), f"validated/{partition}", manifest["version"]

    def _from_files(self) -> list[dict[str, Any]]:
        from mlops_pack.core.file_source import changed_files, file_format, remember
        from mlops_pack.core.labels import label_file_partition
        from mlops_pack.core.storage import read_json, write_json
        from mlops_pack.hooks.table_source import FileSourceHook

        labels = self.spec.labels
        hook = FileSourceHook(labels.url, conn_id=labels.conn_id)
        state_path = self.storage.state(LABEL_FILE_STATE)
        state = read_json(state_path) if state_path.exists() else None
        todo = changed_files(hook.list(labels.pattern), state, labels.max_files)
        if not todo:
            raise AirflowSkipException(f"no new or changed label file under {labels.url}{labels.pattern}")
        written = []
        for info in todo:
            raw = hook.read(info, file_format(info.url, labels.format), delimiter=labels.csv_delimiter,
                            max_bytes=labels.max_file_bytes)
            frame, problems = self._typed(raw, info.url)
            self.log.info("Read %d label rows from %s", len(raw), info.url)
            written.append(self.write_labels(label_file_partition(info.url), frame, info.url, problems=problems))
        write_json(state_path, remember(state, todo))
        return written

    def _from_sql(self) -> list[dict[str, Any]]:
        """The query's new rows (past the watermark in ``state/sql_labels_state.json``), each into the label
        partition its ``partition_column`` names, merged with what that partition holds: a re-delivered
        label changes nothing, a changed one is kept and listed as a contradiction."""
        from mlops_pack.core.labels import label_partitions
        from mlops_pack.core.sql_source import incremental_query, new_rows
        from mlops_pack.core.storage import read_json, write_json
        from mlops_pack.hooks.table_source import SqlSourceHook

        labels, key = self.spec.labels, self.spec.source.key
        key_column = labels.key_column or key
        state_path = self.storage.state(SQL_LABEL_STATE)
        state = read_json(state_path) if state_path.exists() else None
        sql, params = incremental_query(labels.query, labels.watermark_column, (state or {}).get("watermark"),
                                        labels.max_rows)
        self.log.info("Querying %s for labels: %s %s", labels.conn_id, sql, params)
        frame = SqlSourceHook(labels.conn_id).read(sql, params)
        missing = [c for c in (key_column, labels.partition_column) if c not in frame.columns]
        if missing:
            raise ValueError(f"labels.query on {labels.conn_id} returned no column(s) {missing} (has "
                             f"{list(frame.columns)})")
        fresh, next_state = new_rows(frame, watermark_column=labels.watermark_column, key_column=key_column,
                                     state=state)
        origin = f"query on {labels.conn_id}"
        parts = label_partitions(fresh[labels.partition_column], self.spec.partition.date_format)
        written = [w for w in (self._merge_into(p, fresh[(parts == p).to_numpy()].reset_index(drop=True), origin)
                               for p in sorted(p for p in set(parts) if p is not None)) if w]
        unnamed = int(parts.isna().sum())
        if unnamed:
            self.log.warning("%d label rows have no %s value: no label partition names them", unnamed,
                             labels.partition_column)
        write_json(state_path, next_state)
        if not written:
            raise AirflowSkipException(f"no new or changed label from {origin}")
        return written

    def _from_events(self, context: Context) -> list[dict[str, Any]]:
        """The labels the run's ``label_inbox`` events deliver (core/labels.label_deliveries), each merged into
        the label partition it names; a malformed message fails the run naming it, without retries."""
        import pandas as pd
        from airflow.sdk.exceptions import AirflowFailException

        from mlops_pack.core.inbox import MessageError
        from mlops_pack.core.labels import label_deliveries

        events = [e for group in (context.get("triggering_asset_events") or {}).values() for e in group]
        try:
            deliveries = [d for e in events for d in label_deliveries(e.extra)]
        except MessageError as exc:
            raise AirflowFailException(str(exc)) from exc
        if not deliveries:
            raise AirflowSkipException("no label event triggered this run: POST labels to the label_inbox asset")
        by_partition: dict[str, list[dict]] = {}
        for delivery in deliveries:  # in event order: a later message's label for a key is read last
            by_partition.setdefault(delivery["partition"], []).extend(delivery["rows"])
        origins = ", ".join(dict.fromkeys(d["origin"] for d in deliveries))
        written = [w for w in (self._merge_into(p, pd.DataFrame.from_records(rows), origins)
                               for p, rows in by_partition.items()) if w]
        if not written:
            raise AirflowSkipException(f"the labels delivered by {origins} are there already")
        return written

    def _merge_into(self, partition: str, raw: pd.DataFrame, origin: str) -> dict[str, Any] | None:
        """Type ``raw``'s labels and merge them into label partition ``partition``: None when it holds them
        already (a re-delivery changes nothing), else the written partition's summary."""
        from mlops_pack.core.labels import LABEL, merged_delivery
        from mlops_pack.core.storage import is_complete, read_partition

        key = self.spec.source.key
        typed, problems = self._typed(raw, origin)
        folder = self.storage.partition("labels", partition)
        stored = read_partition(folder, columns=[key, LABEL]) if is_complete(folder) else None
        if stored is not None and _unchanged(stored, typed, key):
            return None
        return self.write_labels(partition, merged_delivery(stored, typed, key),
                                 f"label partition {partition} as stored, then {origin}", problems=problems,
                                 keep_listed=True)

    def _typed(self, raw: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, list[dict]]:
        """``raw``'s key and label columns typed like the source's key and target (core/columns.py);
        every row kept (a row number stands in as the key, so repeats reach the contradiction check)."""
        from mlops_pack.core.columns import conform
        from mlops_pack.core.labels import LABEL
        from mlops_pack.core.spec import ColumnSpec

        labels, fields = self.spec.labels, self.spec.source.fields
        key, target = self.spec.source.key, self.spec.model.target
        columns = {"_row": ColumnSpec(),
                   key: ColumnSpec(type=fields[key].type, column=labels.key_column or key),
                   LABEL: ColumnSpec(type=fields[target].type, column=labels.target_column or target)}
        numbered = raw.assign(_row=[str(i) for i in range(len(raw))])
        typed, problems, _ = conform(numbered, columns, "_row", origin)
        return typed[[key, LABEL]], [p for p in problems if p["kind"] == "field"]

    def write_labels(self, partition: str, frame: pd.DataFrame, origin: str, *, source_version: str | None = None,
                     problems: list[dict] | None = None, keep_listed: bool = False) -> dict[str, Any]:
        """Write label partition ``partition`` from ``frame`` (key, label): rejects and contradictions
        (with this delivery and with every other label partition) listed first, the manifest last.
        ``keep_listed``: the partition grows by deliveries (sql), so the contradictions it listed before stay."""
        from mlops_pack.core.labels import (
            CONTRADICTIONS_FILE,
            LABEL,
            MAX_LISTED,
            REJECTS_FILE,
            contradictions_with,
            delivery_rows,
            with_arrival,
        )
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.storage import (
            is_complete,
            list_partitions,
            read_manifest,
            read_partition,
            write_partition,
        )

        key = self.spec.source.key
        folder = self.storage.partition("labels", partition)
        rows, rejects, contradictions = delivery_rows(frame, key, origin)
        if keep_listed and (folder / CONTRADICTIONS_FILE).exists():
            listed = [json.loads(line) for line in (folder / CONTRADICTIONS_FILE).read_text().splitlines() if line]
            contradictions = [*listed, *(c for c in contradictions if c not in listed)][:MAX_LISTED]
        rejects = [*(problems or []), *rejects]
        # Other label partitions are read one at a time (key and label only): memory follows the largest.
        for other in list_partitions(self.storage.area("labels")):
            if other["partition"] != partition and len(contradictions) < MAX_LISTED:
                known = read_partition(self.storage.path(other["folder"]), columns=[key, LABEL])
                contradictions += contradictions_with(rows, known, key, other["partition"],
                                                      MAX_LISTED - len(contradictions))
        self._listing(folder / CONTRADICTIONS_FILE, contradictions)
        self._listing(folder / REJECTS_FILE, rejects)
        previous = read_manifest(folder) if is_complete(folder) else None
        stamped, first = with_arrival(rows, previous)
        self.lineage.wrote(storage_dataset(str(folder)))
        manifest = write_partition(folder, stamped, key=partition, first_arrived_at=first, origin=origin,
                                   source_version=source_version, contradictions=len(contradictions),
                                   rejects=len(rejects))
        if contradictions:
            self.log.warning("%d contradicting labels in %s, listed in %s (first: %s)", len(contradictions), partition,
                             folder / CONTRADICTIONS_FILE, contradictions[0])
        self.log.info("Wrote %d labels to %s (version %s, replaces %s)", manifest["rows"], folder,
                      manifest["version"], manifest["replaces"])
        return {"key": partition, "rows": manifest["rows"], "version": manifest["version"],
                "uri": manifest["uri"], "contradictions": len(contradictions), "rejects": len(rejects)}

    @staticmethod
    def _listing(path: Any, items: list[dict]) -> None:
        from mlops_pack.core.storage import write_bytes_atomic

        if items:
            write_bytes_atomic(path, "\n".join(json.dumps(i, default=str) for i in items).encode())
        elif path.exists():
            path.unlink()


def _unchanged(stored: pd.DataFrame, new: pd.DataFrame, key: str) -> bool:
    """True when every (key, label) of ``new`` is already in ``stored`` with the same label."""
    from mlops_pack.core.labels import LABEL, same_label

    known = new[[key, LABEL]].dropna().merge(stored[[key, LABEL]], on=key, how="left", suffixes=("", "_stored"))
    if known[f"{LABEL}_stored"].isna().any():
        return False
    return bool(same_label(known[LABEL].to_numpy(), known[f"{LABEL}_stored"].to_numpy()).all())
