"""MlflowHook: the one way this pack talks to an MLflow tracking server and model registry."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mlops_pack import settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops_pack.core.spec import PipelineSpec
    from mlops_pack.core.train import TrainedModel


class RegistryError(RuntimeError):
    """The MLflow registry cannot answer or lacks what was asked for; the message names it."""


@dataclass(frozen=True)
class MlflowConnection:
    tracking_uri: str
    registry_uri: str
    artifact_root: str


class MlflowHook(BaseHook):
    """Connects to MLflow from the ``mlflow`` connection (host = tracking URI; login/password for a
    server with basic auth; extra ``artifact_root`` and ``registry_uri``). Without that connection it
    uses ``[mlops] mlflow_tracking_uri`` (a SQLite store beside Airflow by default).

    :param mlflow_conn_id: connection id (default ``mlflow_default``).
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any):
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Tracking URI", "login": "Username", "password": "Password"},
            "placeholders": {"host": "http://mlflow:5000", "extra": '{"artifact_root": "s3://bucket/mlflow"}'},
        }

    def get_conn(self) -> MlflowConnection:
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.mlflow_conn_id)
        except AirflowNotFoundException:
            uri = settings.default_tracking_uri()
            return MlflowConnection(uri, uri, settings.default_artifact_root())
        extra = conn.extra_dejson
        uri = conn.host if "://" in (conn.host or "") else f"http://{conn.host}:{conn.port or 5000}"
        if conn.login:  # MLflow reads basic-auth credentials from the environment only
            os.environ["MLFLOW_TRACKING_USERNAME"] = conn.login
            os.environ["MLFLOW_TRACKING_PASSWORD"] = conn.password or ""
        return MlflowConnection(uri, extra.get("registry_uri", uri),
                                extra.get("artifact_root", settings.default_artifact_root()))

    @cached_property
    def connection(self) -> MlflowConnection:
        # Bounded retries: a registry that is down fails the task in seconds, not after MLflow's
        # default of seven retries with exponential backoff; Airflow's task retries come on top.
        for key, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                           ("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")):
            os.environ.setdefault(key, value)
        return self.get_conn()

    @cached_property
    def client(self) -> MlflowClient:
        import mlflow

        mlflow.set_tracking_uri(self.connection.tracking_uri)
        mlflow.set_registry_uri(self.connection.registry_uri)
        return mlflow.MlflowClient(self.connection.tracking_uri, self.connection.registry_uri)

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.client.search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - the UI shows the reason
            return False, f"MLflow at {self.connection.tracking_uri} did not answer: {exc}"
        return True, f"MLflow at {self.connection.tracking_uri} answered"

    def experiment_id(self, name: str) -> str:
        """Id of experiment ``name``, created with the connection's artifact root if missing."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(name, artifact_location=f"{self.connection.artifact_root}/{name}")
        except MlflowException:  # created meanwhile by a concurrent task
            return self.client.get_experiment_by_name(name).experiment_id

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """Version number behind ``model_name@alias``, or None when the alias (or model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(model_name, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise RegistryError(f"cannot read alias {model_name}@{alias} from {self.connection.tracking_uri}: "
                                f"{exc}") from exc

    def version_tags(self, model_name: str, version: str) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_model_version(model_name, version).tags)
        except MlflowException as exc:
            raise RegistryError(f"cannot read {model_name} version {version} from {self.connection.tracking_uri}: "
                                f"{exc}") from exc

    @contextmanager
    def promotion_lock(self, model_name: str, holder: str, *, wait_seconds: float = 300,
                       stale_seconds: float = 900) -> Iterator[None]:
        """Hold the registry-wide lock on ``model_name``'s aliases.

        The lock is a registered model named ``<model>.promotion-lock``: creating a registered model
        is atomic in every MLflow backend (a unique key), so two promoters, in Airflow or not, never
        move aliases at the same time. A lock older than ``stale_seconds`` (a killed holder) is broken.
        """
        from mlflow.exceptions import MlflowException

        name, deadline = f"{model_name}.promotion-lock", time.monotonic() + wait_seconds
        while True:
            now = dt.datetime.now(dt.UTC)
            try:
                self.client.create_registered_model(
                    name, tags={"holder": holder, "acquired_at": now.isoformat()},
                    description=f"Lock on {model_name}'s aliases, held by {holder}; removed when it finishes.")
                break
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise RegistryError(f"cannot take the promotion lock of {model_name} at "
                                        f"{self.connection.tracking_uri}: {exc}") from exc
            tags = self._lock_tags(name)
            acquired = dt.datetime.fromisoformat(tags.get("acquired_at", now.isoformat()))
            if (now - acquired).total_seconds() > stale_seconds:
                self.log.warning("Breaking stale promotion lock of %s held by %s since %s", model_name,
                                 tags.get("holder"), acquired)
                self._drop_lock(name)
            elif time.monotonic() > deadline:
                raise RegistryError(f"promotion lock of {model_name} is held by {tags.get('holder')} since "
                                    f"{acquired}; gave up after {wait_seconds:.0f}s")
            else:
                time.sleep(0.5)
        try:
            yield
        finally:
            self._drop_lock(name)

    def _lock_tags(self, name: str) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_registered_model(name).tags)
        except MlflowException:  # released meanwhile
            return {}

    def _drop_lock(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise

    def load_model(self, model_name: str, version: str) -> Any:
        """The scikit-learn model of ``model_name`` version ``version``."""
        import mlflow.sklearn
        from mlflow.exceptions import MlflowException

        self.client  # noqa: B018 - sets the tracking/registry URIs used by load_model
        try:
            return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")
        except (MlflowException, OSError) as exc:
            raise RegistryError(f"cannot load model {model_name} version {version}: {exc}") from exc

    def tag_version(self, model_name: str, version: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model_name, version, key, str(value))

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(model_name, alias, version)

    def log_training_run(self, spec: PipelineSpec, trained: TrainedModel, *, train_manifest: dict,
                         holdout_manifest: dict, tags: dict[str, str]) -> dict[str, Any]:
        """Log one training run, register its model as a new version with alias ``challenger``."""
        import mlflow
        import mlflow.sklearn
        import sklearn
        from mlflow.models import infer_signature

        from mlops_pack.core.train import trusted_types

        model = spec.model
        experiment_id = self.experiment_id(spec.name)
        x_train = trained.train[model.features.all]
        run_tags = {**tags, "data_version": train_manifest["version"], "pipeline": spec.name}
        with mlflow.start_run(experiment_id=experiment_id, tags=run_tags) as run:
            mlflow.log_params({"estimator": model.estimator, "task": model.task, "target": model.target,
                               "features": ",".join(model.features.all), "train_rows": len(trained.train),
                               "holdout_rows": len(trained.holdout),
                               **{f"model.{k}": v for k, v in model.params.items()}})
            metrics = {f"holdout_{k}": v for k, v in trained.metrics.items()}
            if trained.search:
                mlflow.log_params({f"search.best.{k}": v for k, v in trained.search["best_params"].items()}
                                  | {"search.kind": trained.search["kind"],
                                     "search.candidates": trained.search["candidates"]})
                metrics["search_cv_score"] = trained.search["cv_score"]
            mlflow.log_metrics(metrics)  # one batched call
            self._log_review_figures(trained, spec)
            for frame, manifest, context in ((trained.train, train_manifest, "training"),
                                             (trained.holdout, holdout_manifest, "holdout")):
                dataset = mlflow.data.from_pandas(frame, source=manifest["uri"], targets=model.target,
                                                  name=f"{spec.name}-{context}", digest=manifest["version"])
                mlflow.log_input(dataset, context=context)
            info = mlflow.sklearn.log_model(
                trained.pipeline, name="model",
                signature=infer_signature(x_train.head(100), trained.pipeline.predict(x_train.head(100))),
                input_example=x_train.head(3), registered_model_name=spec.name,
                skops_trusted_types=trusted_types(trained.pipeline),
                # Explicit requirements skip MLflow's slow import-capturing inference.
                pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
            )
        version = str(info.registered_model_version)
        self.tag_version(spec.name, version, {
            "data_version": train_manifest["version"], "train_uri": train_manifest["uri"],
            "holdout_uri": holdout_manifest["uri"], "airflow.run_id": tags.get("airflow.run_id", ""),
            **{f"holdout_{k}": round(v, 6) for k, v in trained.metrics.items()},
        })
        self.set_alias(spec.name, "challenger", version)
        return {"model_name": spec.name, "version": version, "run_id": run.info.run_id,
                "experiment_id": experiment_id, "data_version": train_manifest["version"],
                "holdout_uri": holdout_manifest["uri"], "train_uri": train_manifest["uri"],
                "metrics": {k: round(v, 6) for k, v in trained.metrics.items()}}

    @staticmethod
    def _log_review_figures(trained: TrainedModel, spec: PipelineSpec) -> None:
        import matplotlib.pyplot as plt
        import mlflow

        from mlops_pack.core.plots import review_figures

        for name, figure in review_figures(trained.pipeline, trained.holdout, spec.model).items():
            mlflow.log_figure(figure, f"review/{name}")
            plt.close(figure)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self._ui_base()}/#/experiments/{experiment_id}/runs/{run_id}"

    def model_version_url(self, model_name: str, version: str) -> str:
        return f"{self._ui_base()}/#/models/{model_name}/versions/{version}"

    def _ui_base(self) -> str:
        uri = self.connection.tracking_uri
        return uri.rstrip("/") if uri.startswith("http") else "http://127.0.0.1:5000"
