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
    adds its own. Columns: ``prediction`` (a classifier's label, with ``proba_<class>`` per class),
    ``model_name``, ``model_version`` and ``scoring_run_id`` beside the key and the features. With
    the spec's ``scoring.shadow``, the ``@challenger`` version (when it exists and is not the
    champion) scores the same chunks into ``shadow_prediction`` (``shadow_proba_<class>``) and
    ``shadow_model_version``; the manifest and the event name it. The manifest's version is a hash
    of the validated data version and the model version(s) (what defines the predictions), so a
    re-score keeps it. Skips
    (no failure) while no champion exists yet. Use ``.partial(...).expand(partition=[...])`` to
    score many partitions in parallel; the score DAG bounds them with ``max_active_tis_per_dag`` (spec
    ``scoring.max_parallel``), as each task already predicts on one thread per CPU (core/score.py).

    :param partition: key of a validated partition (templated).
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "partition")
    ui_color = "#e8fdf5"

    def __init__(self, *, partition: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.partition = partition

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.partitions import prediction_key
        from mlops_pack.core.score import score_parquet
        from mlops_pack.core.storage import data_path, digest, read_manifest, write_manifest

        name = self.spec.name
        version = self.mlflow.alias_version(name, "champion")
        if version is None:
            raise AirflowSkipException(f"{name} has no champion yet: nothing to score with")
        source = read_manifest(self.storage.partition("validated", str(self.partition)))
        model = self.mlflow.load_model(name, version)
        shadow = self._challenger(name, str(version))
        key = prediction_key(source["partition"], version)
        folder = self.storage.partition("predictions", key)
        data_version = digest(source["version"], name, str(version), *([f"shadow {shadow}"] if shadow else []))
        target = data_path(folder, data_version)
        lineage = {"model_name": name, "model_version": str(version), "scoring_run_id": context["run_id"]}
        rows = score_parquet(
            model, self.storage.path(source["uri"]), target, features=self.spec.model.features.all,
            lineage=lineage | ({"shadow_model_version": shadow} if shadow else {}),
            chunk_rows=self.spec.scoring.chunk_rows, keep=[self.spec.source.key],
            shadow=self.mlflow.load_model(name, shadow) if shadow else None,
        )
        manifest = write_manifest(folder, {
            "uri": str(target), "partition": key, "rows": rows, "version": data_version, "model_name": name,
            "model_version": str(version), "shadow_model_version": shadow, "source_partition": source["partition"],
            "source_version": source["version"], "source_folder": source["folder"]})
        self.log.info("Scored %d rows of %s with %s v%s%s into %s (replaces %s)", rows, source["partition"], name,
                      version, f" (shadow: challenger v{shadow})" if shadow else "", folder, manifest["replaces"])
        published = {k: manifest[k] for k in ("uri", "folder", "rows", "version", "model_version",
                                              "source_partition", "source_version")} | {"key": key}
        if shadow:
            published["shadow_model_version"] = shadow
        self.lineage.read(storage_dataset(source["folder"]), self.version_dataset(version),
                          *([self.version_dataset(shadow)] if shadow else []))
        self.lineage.wrote(storage_dataset(str(folder)))
        self.emit(context, {"partitions": [published], "rows": rows})
        return published

    def _challenger(self, name: str, champion: str) -> str | None:
        """The ``@challenger`` version to shadow-score with (spec ``scoring.shadow``), unless it is the champion."""
        if not self.spec.scoring.shadow:
            return None
        challenger = self.mlflow.alias_version(name, "challenger")
        if challenger is None or str(challenger) == champion:
            self.log.info("Shadow scoring is on but %s has no challenger other than the champion", name)
            return None
        return str(challenger)
