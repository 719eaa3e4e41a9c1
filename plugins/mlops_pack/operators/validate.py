"""GXValidateOperator: gate raw partitions with Great Expectations; publish them or quarantine them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlops_pack.core.errors import MlopsError
from mlops_pack.links import DataDocsLink, QuarantineLink
from mlops_pack.operators.base import PipelineOperator

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context


class GXValidationFailed(AirflowFailException, MlopsError):
    """A partition failed its expectations and was quarantined; not retried (the data won't change)."""


class GXValidateOperator(PipelineOperator):
    """Validate the raw partitions ``raw_partitions`` against the spec's expectations (and suite file).

    A run's partitions are accepted together or not at all. When every one passes, each is merged
    into ``validated/<key>`` (rows already there are kept, a row with the same record key is
    replaced by the new one, rows are ordered by key: re-validating the same data changes nothing),
    and the task's outlets get one asset event ``{partitions: [{key, uri, folder, version, rows}],
    rows}`` plus the crawl's ``scrape`` statistics. When one fails, it moves to
    ``quarantine/<key>/`` with ``validation.json``, an ALERT line is logged, the results are pushed
    to XCom ``validation`` and the task fails without retry: no event, no model sees the data, and
    ``validated/`` is untouched.

    :param raw_partitions: keys of the raw partitions to validate (templated; a list or one key).
    """

    template_fields = (*PipelineOperator.template_fields, "raw_partitions")
    ui_color = "#fdf1e8"
    operator_extra_links = (DataDocsLink(), QuarantineLink())

    def __init__(self, *, raw_partitions: list[str] | str, **kwargs: Any):
        super().__init__(**kwargs)
        self.raw_partitions = raw_partitions

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.storage import read_manifest, read_partition

        keys = [self.raw_partitions] if isinstance(self.raw_partitions, str) else list(self.raw_partitions or [])
        if not keys:
            raise ValueError(f"{self.spec.name}: raw_partitions is empty: nothing to validate")
        frames = {key: read_partition(self.storage.partition("raw", key)) for key in keys}
        self.lineage.read(*(storage_dataset(str(self.storage.partition("raw", key))) for key in keys))
        results = {key: self._validate(key, frame) for key, frame in frames.items()}
        self.lineage.facets["dataQuality"] = {"partitions": {
            key: {k: r.get(k) for k in ("success", "evaluated", "failed")} for key, r in results.items()}}
        failed = [key for key, result in results.items() if not result["success"]]
        for key in failed:
            results[key]["quarantine_uri"] = str(self.storage.partition("quarantine", key) / "validation.json")
        context["ti"].xcom_push(key="validation", value=results)
        if failed:
            self._quarantine(context, failed, results)
        published = [self._publish(key, frame) for key, frame in frames.items()]
        extra: dict[str, Any] = {"partitions": published, "rows": sum(p["rows"] for p in published)}
        scrape_stats = read_manifest(self.storage.partition("raw", keys[0])).get("stats")
        if scrape_stats:
            extra["scrape"] = scrape_stats  # the crawl's, carried into the asset event
        self.emit(context, extra)
        return extra

    def _validate(self, key: str, frame: pd.DataFrame) -> dict[str, Any]:
        import tempfile
        from pathlib import Path

        from mlops_pack.core.validate import load_expectations, publish_data_docs, validate_frame

        validation = self.spec.validation
        suite_file = self.spec.resolve(validation.suite_file) if validation.suite_file else None
        expectations = load_expectations([e.model_dump() for e in validation.expectations], suite_file)
        with tempfile.TemporaryDirectory(prefix="gx-docs-") as docs_dir:
            result = validate_frame(frame, expectations, suite_name=f"{self.spec.name}_suite",
                                    docs_dir=Path(docs_dir))
            # Data Docs of every validation, in storage beside the drift reports; linked from the task
            # (DataDocsLink) and the health page, served by the plugin app.
            docs = publish_data_docs(result, self.storage.area("reports") / "datadocs" / key)
        return {**result, "docs": None, "docs_uri": docs, "rows": int(len(frame))}

    def _quarantine(self, context: Context, failed: list[str], results: dict[str, dict[str, Any]]) -> None:
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.storage import move_partition, write_json
        from mlops_pack.links import storage_url
        from mlops_pack.notifications import send_alert

        for key in failed:
            target = self.storage.partition("quarantine", key)
            move_partition(self.storage.partition("raw", key), target)
            self.lineage.wrote(storage_dataset(str(target)))
            write_json(target / "validation.json", results[key])
        first = results[failed[0]]
        summary = "; ".join(f"{f['expectation']}({f.get('column')}) unexpected={f.get('unexpected_percent', '?')}%"
                            for f in first["failures"][:5])
        self.log.error("ALERT: %s partition %s failed %d of %d expectations and was quarantined to %s: %s",
                       self.spec.name, ", ".join(failed), first["failed"], first["evaluated"],
                       self.storage.partition("quarantine", failed[0]), summary)
        links = "\n".join(filter(None, (storage_url(results[k].get(f) or "", self) for k in failed
                                       for f in ("quarantine_uri", "docs_uri"))))
        send_alert(self.spec.alerts, "validation_failed",
                   f"[{self.spec.name}] validation failed: {', '.join(failed)} quarantined",
                   f"Pipeline {self.spec.name}: partition {', '.join(failed)} failed {first['failed']} of "
                   f"{first['evaluated']} expectations and was quarantined.\n{summary}\n{links}",
                   {"pipeline": self.spec.name, "partitions": failed, "failed": first["failed"],
                    "evaluated": first["evaluated"], "run_id": context["run_id"]})
        raise GXValidationFailed(f"{self.spec.name} partition {', '.join(failed)} failed validation: {summary}")

    def _publish(self, key: str, frame: pd.DataFrame) -> dict[str, Any]:
        import pandas as pd

        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.partitions import dedupe_latest
        from mlops_pack.core.storage import is_complete, read_partition, write_partition

        folder, record_key = self.storage.partition("validated", key), self.spec.source.key
        if is_complete(folder):
            frame = pd.concat([read_partition(folder), frame], ignore_index=True)
        merged = dedupe_latest(frame, record_key).sort_values(record_key, kind="stable", ignore_index=True)
        manifest = write_partition(folder, merged, key=key)
        self.lineage.wrote(storage_dataset(str(folder)))
        self.log.info("%s partition %s validated: %d rows, version %s (replaces %s)", self.spec.name, key,
                      manifest["rows"], manifest["version"], manifest["replaces"])
        return {k: manifest[k] for k in ("uri", "folder", "version", "rows")} | {"key": key}
