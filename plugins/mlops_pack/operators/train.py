"""MlflowTrainOperator: train a challenger on the latest validated partitions, tracked in MLflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.links import MlflowModelVersionLink, MlflowRunLink
from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context



class MlflowTrainOperator(MlflowOperator):
    """Fit the spec's scikit-learn pipeline and register it in MLflow with alias ``challenger``.

    The training window is the latest ``window_partitions`` validated partitions, split in time
    (newest rows held out). The MLflow run records params, holdout metrics, train and holdout data
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

        from mlops_pack.core.storage import complete_partitions, read_partition, write_partition
        from mlops_pack.core.train import fit

        window = int(self.window_partitions or self.spec.model.window_partitions)
        partitions = complete_partitions(self.storage.area("validated"))[-window:]
        if not partitions:
            raise ValueError(f"no validated partitions under {self.storage.area('validated')}: ingest data first")
        frame = pd.concat([read_partition(self.storage.path(m["folder"])) for m in partitions], ignore_index=True)
        self.log.info("Training window: %d partitions, %d rows: %s", len(partitions), len(frame),
                      [m["partition"] for m in partitions])
        trained = fit(frame, self.spec.model)
        key = self.run_key(context)
        train_m = write_partition(self.storage.partition("training", key) / "train", trained.train)
        holdout_m = write_partition(self.storage.partition("training", key) / "holdout", trained.holdout)
        result = self.mlflow.log_training_run(
            self.spec, trained, train_manifest=train_m, holdout_manifest=holdout_m,
            tags={"airflow.dag_id": context["dag"].dag_id, "airflow.run_id": context["run_id"],
                  "data_partitions": ",".join(m["partition"] for m in partitions)},
        )
        self.log.info("Registered %s version %s as challenger (run %s): %s", self.spec.name, result["version"],
                      result["run_id"], result["metrics"])
        context["ti"].xcom_push(key="mlflow_run", value={"experiment_id": result["experiment_id"],
                                                         "run_id": result["run_id"]})
        return result
