"""MlflowTrainOperator: train a challenger on the latest validated partitions, tracked in MLflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.links import MlflowModelVersionLink, MlflowRunLink
from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class MlflowTrainOperator(MlflowOperator):
    """Fit the spec's scikit-learn pipeline and register it in MLflow with alias ``challenger``.

    The training window is the latest ``window_partitions`` validated partitions (by partition key),
    de-duplicated by the spec's record key (the newest partition's row wins) and split in time:
    the newest rows are held out, and no holdout key is a training key (checked, HoldoutLeak
    otherwise). Train and holdout sets are written to ``training/<first>_to_<last>__<hash>/``. The MLflow run records params, holdout metrics, train and holdout data
    as input datasets (with their data versions), Airflow dag/run ids as tags, a signature and an
    input example. Returns {model_name, version, run_id, experiment_id, data_version, holdout_uri, metrics}.

    :param window_partitions: override of ``model.window_partitions`` (templated; e.g. from Params).
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "window_partitions")
    ui_color = "#eef7e8"
    operator_extra_links = (MlflowRunLink(), MlflowModelVersionLink(),)

    def __init__(self, *, window_partitions: int | str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.window_partitions = window_partitions

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        from mlops_pack.core.partitions import window_key
        from mlops_pack.core.storage import (
            data_version,
            digest,
            list_partitions,
            read_partition,
            write_partition,
        )
        from mlops_pack.core.train import fit

        window = int(self.window_partitions or self.spec.model.window_partitions)
        partitions = list_partitions(self.storage.area("validated"))[-window:]
        if not partitions:
            raise ValueError(f"no validated partitions under {self.storage.area('validated')}: ingest data first")
        keys = [m["partition"] for m in partitions]
        frame = pd.concat([read_partition(self.storage.path(m["folder"])) for m in partitions], ignore_index=True)
        trained = fit(frame, self.spec.model, key=self.spec.source.key)
        self.log.info("Training window: %d partitions %s, %d rows, %d unique %s; train %d rows, holdout %d rows "
                      "(disjoint by key)", len(keys), keys, len(frame), frame[self.spec.source.key].nunique(),
                      self.spec.source.key, len(trained.train), len(trained.holdout))
        # Named by the data it holds: the same window trained twice writes the same training set.
        key = window_key(keys, digest(data_version(trained.train), data_version(trained.holdout))[:8])
        folder = self.storage.partition("training", key)
        train_m = write_partition(folder / "train", trained.train, key=key)
        holdout_m = write_partition(folder / "holdout", trained.holdout, key=key)
        profile_uri = self._write_profile(folder / "train", trained.train)
        result = self.mlflow.log_training_run(
            self.spec, trained, train_manifest=train_m, holdout_manifest=holdout_m,
            tags={"airflow.dag_id": context["dag"].dag_id, "airflow.run_id": context["run_id"],
                  "data_partitions": ",".join(keys), "training_set": key},
        )
        self.mlflow.tag_version(self.spec.name, result["version"], {"profile_uri": profile_uri})
        self.log.info("Registered %s version %s as challenger (run %s): %s", self.spec.name, result["version"],
                      result["run_id"], result["metrics"])
        context["ti"].xcom_push(key="mlflow_run", value={"experiment_id": result["experiment_id"],
                                                         "run_id": result["run_id"]})
        return result

    def _write_profile(self, folder, train) -> str:
        """The drift reference profile of the training set, next to it (``<train>/profile.json``)."""
        from mlops_pack.core.drift import spec_columns
        from mlops_pack.core.drift_profile import build_profile
        from mlops_pack.core.storage import write_json

        numeric, categorical = spec_columns(self.spec)
        path = folder / "profile.json"
        write_json(path, build_profile(train, numeric, categorical, bins=self.spec.drift.profile_bins))
        return str(path)
