"""IngestOperator: what every source kind's ingest task shares, from typed rows to published raw partitions.

A reader (scrape, files, SQL) brings rows already typed by core/value_types.py and de-duplicated by
its one rule; this base names each row's partition, applies the record error budget, writes the raw
partitions and the rejects file beside each, pushes XCom ``partitions`` and puts the summary on the
asset event. Adding a source kind is a spec class and a reader.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlops_pack.operators.base import PipelineOperator

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context


class IngestOperator(PipelineOperator):
    """Base of the ingest operators: returns ``{partitions, rows, stats}`` and pushes the partition keys to
    XCom ``partitions`` (what the validate task reads); ``ingest_rejects.jsonl`` lists beside each raw
    partition what was refused and why."""

    ui_color = "#e8f4fd"

    def require_identity(self, run_key: str | None) -> None:
        """Fail without retries (a retry of the same run has the same identity) when neither the data nor the
        run names a partition; called before reading anything."""
        from mlops_pack.core.partitions import PartitionError, require_identity

        try:
            require_identity(self.spec.partition.column, run_key)
        except PartitionError as exc:
            raise AirflowFailException(f"{self.spec.name}: {exc}") from exc

    def publish(self, context: Context, reads: list[tuple[str | None, pd.DataFrame]], problems: list[dict],
                stats: dict[str, Any], *, origin: str, merge_validated: bool) -> dict[str, Any]:
        """Write the raw partitions of ``reads`` (pairs of the run's data key, or None for this run's, and
        typed rows) and announce them.

        ``merge_validated``: an incremental read (files, SQL) brings only new and changed rows, so each
        partition is written as it will be once merged: its validated rows, then the new ones (the same
        rule as within a read: the last row of a key wins). Raises AirflowFailException, with the field,
        sample values and the option that would read them, when the partition column could not be typed.
        """
        from mlops_pack.core.columns import plain_value
        from mlops_pack.core.partitions import PartitionError, split_by_key

        source, column = self.spec.source, self.spec.partition.column
        problems, stats = list(problems), dict(stats)
        pending: dict[str, list[pd.DataFrame]] = {}
        partitionless = 0
        for requested, rows in reads:
            groups, keyless = split_by_key(rows, column, requested or self.data_key(context))
            partitionless += len(keyless)
            problems.extend({"kind": "record", "origin": origin, "reason": f"no value in partition.column {column!r}",
                             "record": {k: plain_value(v) for k, v in r.items()}}
                            for r in keyless.to_dict(orient="records"))
            for key, part in groups.items():
                pending.setdefault(key, []).append(part)
        stats["records_quarantined"] = stats.get("records_quarantined", 0) + partitionless
        stats["records_kept"] = stats.get("records_kept", 0) - partitionless
        seen = stats["records_kept"] + stats["records_quarantined"]
        over_budget = seen and stats["records_quarantined"] / seen > source.max_failed_record_share
        if over_budget or not pending:
            self.write_rejects(self.storage.partition("quarantine", "_failed_reads") / _safe(context["run_id"]),
                               problems)
            unreadable = self._partition_column_problem(problems, partitionless)
            if not pending:
                raise AirflowFailException(unreadable) if unreadable else PartitionError(
                    f"{self.spec.name}: nothing with a partition was read from {origin}")
            raise AirflowFailException(
                f"{self.spec.name}: {stats['records_quarantined']} of {seen} records quarantined (no key, a "
                f"repeated key with other values, or no partition value), over source.max_failed_record_share="
                f"{source.max_failed_record_share:.0%}; first: {problems[0]['reason'] if problems else '-'}"
                + (f". {unreadable}" if unreadable else ""))
        written = [self._write_partition(key, parts, stats, problems, merge_validated)
                   for key, parts in sorted(pending.items())]
        self.log.info("Ingest stats for %s: %s", self.spec.name, json.dumps(stats, default=str))
        summary = {"partitions": written, "rows": sum(p["rows"] for p in written), "stats": stats}
        context["ti"].xcom_push(key="partitions", value=[p["key"] for p in written])
        self.emit(context, summary)
        return summary

    def _partition_column_problem(self, problems: list[dict], partitionless: int) -> str | None:
        """What to change when rows lost their partition because its column's values did not type."""
        from mlops_pack.core.value_types import hint

        column = self.spec.partition.column
        failed = [p for p in problems if p.get("kind") == "field" and p.get("field") == column]
        if column is None or not failed or not partitionless:
            return None
        kind = self.spec.source.fields[column].type
        samples = list(dict.fromkeys(str(p.get("value", "")) for p in failed))
        return (f"{self.spec.name}: {partitionless} records have no partition: partition.column {column!r} "
                f"({kind}) could not be read from values such as {', '.join(repr(s) for s in samples[:2])} "
                f"({failed[0]['reason']}). To read them set {hint(kind, samples)}")

    def _write_partition(self, key: str, parts: list[pd.DataFrame], stats: dict[str, Any], problems: list[dict],
                         merge_validated: bool) -> dict[str, Any]:
        import pandas as pd

        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.partitions import dedupe_latest
        from mlops_pack.core.storage import is_complete, read_partition, write_partition

        record_key = self.spec.source.key
        published = self.storage.partition("validated", key)
        if merge_validated and is_complete(published):
            parts = [read_partition(published), *parts]
            self.lineage.read(storage_dataset(str(published)))
        rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        # Read order varies (crawl concurrency, listing, message order); the key order does not: equal
        # data, equal version.
        rows = dedupe_latest(rows, record_key).sort_values(record_key, kind="stable", ignore_index=True)
        folder = self.storage.partition("raw", key)
        manifest = write_partition(folder, rows, key=key, stats=stats)
        self.lineage.wrote(storage_dataset(str(folder)))
        self.write_rejects(folder, problems)
        self.log.info("Wrote %d rows to raw partition %s (version %s, replaces %s)", manifest["rows"], key,
                      manifest["version"], manifest["replaces"])
        return {k: manifest[k] for k in ("uri", "folder", "rows", "version")} | {"key": key}

    def write_rejects(self, folder: Any, rejects: list[dict]) -> None:
        """``ingest_rejects.jsonl`` in ``folder``: one JSON line per refused page, record or value."""
        from mlops_pack.core.storage import REJECTS_FILE, write_bytes_atomic

        path = folder / REJECTS_FILE
        if not rejects:
            if path.exists():
                path.unlink()  # a clean re-read leaves no stale list behind
            return
        write_bytes_atomic(path, "\n".join(json.dumps(q, default=str) for q in rejects).encode())
        self.log.warning("%d ingest problems listed in %s (first: %s)", len(rejects), path, rejects[0]["reason"])


def _safe(run_id: str) -> str:
    from mlops_pack.core.partitions import safe_key

    return safe_key(run_id)
