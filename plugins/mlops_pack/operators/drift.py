"""EvidentlyDriftOperator: drift of scored data vs the champion's training data, as stored reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.links import DriftReportLink
from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class EvidentlyDriftOperator(MlflowOperator):
    """Compare prediction partitions ``prediction_partitions`` with the reference: the training data
    of the model version that scored them (tag ``train_uri``).

    Writes ``reports/drift/<key>/`` with ``report.html`` and ``report.json`` (Evidently),
    ``summary.json`` and a manifest; ``<key>`` is the prediction partition's key
    (``<validated partition>__v<version>``) or, for several, one key naming the set, so checking the
    same predictions again replaces the same report. Returns the summary {share, threshold, drift,
    drifted_columns, model_version, report_uri, partition}.

    :param prediction_partitions: keys of prediction partitions (templated; a list or one key).
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "prediction_partitions")
    ui_color = "#fde8e8"
    operator_extra_links = (DriftReportLink(),)

    def __init__(self, *, prediction_partitions: list[str] | str, **kwargs: Any):
        super().__init__(**kwargs)
        self.prediction_partitions = prediction_partitions

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        from mlops_pack.core.drift import split_columns
        from mlops_pack.core.partitions import combined_key
        from mlops_pack.core.storage import read_manifest, read_partition

        keys = self.prediction_partitions
        keys = [keys] if isinstance(keys, str) else list(keys or [])
        if not keys:
            raise ValueError("prediction_partitions is empty: no predictions to check for drift")
        folders = [self.storage.partition("predictions", k) for k in keys]
        manifests = [read_manifest(f) for f in folders]
        current = pd.concat([read_partition(f) for f in folders], ignore_index=True)
        version = max((m["model_version"] for m in manifests), key=int)
        train_uri = self.mlflow.version_tags(self.spec.name, version).get("train_uri")
        if not train_uri:
            raise ValueError(f"{self.spec.name} version {version} has no train_uri tag: no drift reference")
        reference_folder = self.storage.path(train_uri).parent
        reference = read_partition(reference_folder)
        numeric, categorical = split_columns(self.spec.drift_columns, self.spec.model.features.numeric,
                                             {n: f.type for n, f in self.spec.source.fields.items()})
        key = combined_key(keys)
        summary = self._report(key, reference, current, numeric, categorical)
        summary.update({"model_version": version, "current_rows": len(current), "reference_rows": len(reference),
                        "partition": key, "prediction_partitions": sorted(keys)})
        self._commit(key, summary, [m["version"] for m in manifests], read_manifest(reference_folder)["version"])
        self.log.info("Drift share %.2f (threshold %.2f) for %s v%s on %s; drifted columns: %s; report %s",
                      summary["share"], summary["threshold"], self.spec.name, version, key,
                      summary["drifted_columns"], summary["report_uri"])
        summary.pop("columns")  # per-column scores stay in summary.json, XCom stays small
        return summary

    def _report(self, key: str, reference, current, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
        import tempfile
        from pathlib import Path

        from mlops_pack.core.drift import drift_report
        from mlops_pack.core.storage import write_bytes_atomic

        folder = self.storage.partition("reports/drift", key)
        with tempfile.TemporaryDirectory() as tmp:
            summary = drift_report(reference, current, numeric, categorical, self.spec.drift.share_threshold,
                                   Path(tmp) / "report.html", Path(tmp) / "report.json")
            for name in ("report.html", "report.json"):
                write_bytes_atomic(folder / name, (Path(tmp) / name).read_bytes())
        return {**summary, "report_uri": str(folder / "report.html")}

    def _commit(self, key: str, summary: dict[str, Any], current_versions: list[str], reference_version: str) -> None:
        from mlops_pack.core.storage import digest, write_json, write_manifest

        folder = self.storage.partition("reports/drift", key)
        write_json(folder / "summary.json", summary)
        # The report's identity is what it compares: the same predictions against the same reference.
        write_manifest(folder, {"uri": summary["report_uri"], "partition": key, "rows": summary["current_rows"],
                                "version": digest(*sorted(current_versions), reference_version,
                                                  str(self.spec.drift.share_threshold))})
