"""BatchScoreOperator: score one validated partition with the champion model, in chunks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class BatchScoreOperator(MlflowOperator):
    """Stream validated partition ``partition`` through ``models:/<pipeline>@champion`` chunk by chunk.

    Predictions land in ``predictions/<partition>__v<version>/``: one partition per (validated
    partition, model version), so re-scoring with the same model replaces it and a new champion
    adds its own. Columns: ``prediction``, ``model_name``, ``model_version`` and ``scoring_run_id``
    beside the key and the features. The manifest's version is a hash of the validated data
    version and the model version (what defines the predictions), so a re-score keeps it. Skips
    (no failure) while no champion exists yet. Use ``.partial(...).expand(partition=[...])`` to
    score many partitions in parallel.

    :param partition: key of a validated partition (templated).
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "partition")
    ui_color = "#e8fdf5"

    def __init__(self, *, partition: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.partition = partition

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.partitions import prediction_key
        from mlops_pack.core.score import score_parquet
        from mlops_pack.core.storage import data_path, digest, read_manifest, write_manifest

        name = self.spec.name
        version = self.mlflow.alias_version(name, "champion")
        if version is None:
            raise AirflowSkipException(f"{name} has no champion yet: nothing to score with")
        source = read_manifest(self.storage.partition("validated", str(self.partition)))
        model = self.mlflow.load_model(name, version)
        key = prediction_key(source["partition"], version)
        folder = self.storage.partition("predictions", key)
        data_version = digest(source["version"], name, str(version))
        target = data_path(folder, data_version)
        rows = score_parquet(
            model, self.storage.path(source["uri"]), target, features=self.spec.model.features.all,
            lineage={"model_name": name, "model_version": str(version), "scoring_run_id": context["run_id"]},
            chunk_rows=self.spec.scoring.chunk_rows, keep=[self.spec.source.key],
        )
        manifest = write_manifest(folder, {
            "uri": str(target), "partition": key, "rows": rows, "version": data_version, "model_name": name,
            "model_version": str(version), "source_partition": source["partition"],
            "source_version": source["version"], "source_folder": source["folder"]})
        self.log.info("Scored %d rows of %s with %s v%s into %s (replaces %s)", rows, source["partition"], name,
                      version, folder, manifest["replaces"])
        published = {k: manifest[k] for k in ("uri", "folder", "rows", "version", "model_version",
                                              "source_partition", "source_version")} | {"key": key}
        self.emit(context, {"partitions": [published], "rows": rows})
        return published
