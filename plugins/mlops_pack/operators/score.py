"""BatchScoreOperator: score one validated partition with the champion model, in chunks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context



class BatchScoreOperator(MlflowOperator):
    """Stream partition ``partition_folder`` through ``models:/<pipeline>@champion`` chunk by chunk.

    Predictions land in ``predictions/<run>__<partition>/`` with columns ``prediction``,
    ``model_name``, ``model_version`` and ``scoring_run_id`` beside the key and the features. Skips
    (no failure) while no champion exists yet. Use ``.partial(...).expand(partition_folder=[...])``
    to score many partitions in parallel.

    :param partition_folder: storage URI of a validated partition folder (templated).
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "partition_folder")
    ui_color = "#e8fdf5"

    def __init__(self, *, partition_folder: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.partition_folder = partition_folder

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.score import score_parquet
        from mlops_pack.core.storage import DATA, read_json, write_json

        name = self.spec.name
        version = self.mlflow.alias_version(name, "champion")
        if version is None:
            raise AirflowSkipException(f"{name} has no champion yet: nothing to score with")
        source_folder = self.storage.path(self.partition_folder)
        source_manifest = read_json(source_folder / "manifest.json")
        model = self.mlflow.load_model(name, version)
        key = f"{self.run_key(context)}__{source_folder.name}"
        folder = self.storage.partition("predictions", key)
        if (folder / "manifest.json").exists():
            (folder / "manifest.json").unlink()  # a rerun replaces its own partition
        rows = score_parquet(
            model, source_folder / DATA, folder / DATA, features=self.spec.model.features.all,
            lineage={"model_name": name, "model_version": str(version), "scoring_run_id": context["run_id"]},
            chunk_rows=self.spec.scoring.chunk_rows, keep=[self.spec.source.key],
        )
        manifest = {"uri": str(folder / DATA), "folder": str(folder), "rows": rows, "partition": key,
                    "model_name": name, "model_version": str(version), "source_version": source_manifest["version"],
                    "source_folder": str(source_folder), "written_at": _now()}
        write_json(folder / "manifest.json", manifest)
        self.log.info("Scored %d rows of %s with %s v%s into %s", rows, source_folder.name, name, version, folder)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {k: manifest[k] for k in
                                                      ("uri", "folder", "rows", "model_version", "source_version")}
        return manifest


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat()
