"""EvidentlyDriftOperator: drift of scored data vs the champion's training data, as stored reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.links import DriftReportLink
from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context



class EvidentlyDriftOperator(MlflowOperator):
    """Compare ``current_folders`` (prediction partitions) with the reference: the training data of
    the model version that scored them (tag ``train_uri``).

    Writes ``reports/drift/<run>/report.html`` and ``report.json`` (Evidently) and ``summary.json``;
    returns the summary {share, threshold, drift, drifted_columns, model_version, report_uri}.

    :param current_folders: storage URIs of prediction partition folders (templated; a list).
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "current_folders")
    ui_color = "#fde8e8"
    operator_extra_links = (DriftReportLink(),)

    def __init__(self, *, current_folders: list[str] | str, **kwargs: Any):
        super().__init__(**kwargs)
        self.current_folders = current_folders

    def execute(self, context: Context) -> dict[str, Any]:
        import tempfile
        from pathlib import Path

        import pandas as pd

        from mlops_pack.core.drift import drift_report
        from mlops_pack.core.storage import read_json, read_partition, write_bytes_atomic, write_json

        folders = [self.current_folders] if isinstance(self.current_folders, str) else list(self.current_folders)
        if not folders:
            raise ValueError("current_folders is empty: no predictions to check for drift")
        current = pd.concat([read_partition(self.storage.path(f)) for f in folders], ignore_index=True)
        versions = sorted({read_json(self.storage.path(f) / "manifest.json")["model_version"] for f in folders})
        version = versions[-1]
        train_uri = self.mlflow.version_tags(self.spec.name, version).get("train_uri")
        if not train_uri:
            raise ValueError(f"{self.spec.name} version {version} has no train_uri tag: no drift reference")
        reference = read_partition(self.storage.path(train_uri).parent)
        columns = self.spec.drift_columns
        numeric = [c for c in columns if c in self.spec.model.features.numeric or
                   self.spec.source.fields[c].type in ("number", "integer")]
        categorical = [c for c in columns if c not in numeric]
        folder = self.storage.partition("reports", "drift") / self.run_key(context)
        with tempfile.TemporaryDirectory() as tmp:
            summary = drift_report(reference, current, numeric, categorical, self.spec.drift.share_threshold,
                                   Path(tmp) / "report.html", Path(tmp) / "report.json")
            for name in ("report.html", "report.json"):
                write_bytes_atomic(folder / name, (Path(tmp) / name).read_bytes())
        summary.update({"model_version": version, "current_rows": len(current), "reference_rows": len(reference),
                        "report_uri": str(folder / "report.html"), "current_folders": folders})
        write_json(folder / "summary.json", summary)
        self.log.info("Drift share %.2f (threshold %.2f) for %s v%s; drifted columns: %s; report %s",
                      summary["share"], summary["threshold"], self.spec.name, version,
                      summary["drifted_columns"], summary["report_uri"])
        summary.pop("columns")  # per-column scores stay in summary.json, XCom stays small
        return summary
