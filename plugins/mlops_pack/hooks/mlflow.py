"""MlflowHook: the one way this pack talks to an MLflow tracking server and model registry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mlops_pack import settings
from mlops_pack.core.errors import MlopsError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops_pack.core.attempts import Attempt
    from mlops_pack.core.spec import PipelineSpec
    from mlops_pack.core.train import TrainedModel


# MLflow otherwise gives its loggers their own stderr handler, and Airflow's task runner records every
# stderr line as ERROR: "Created version '1' of model ..." would read as a failure. Without that
# handler MLflow's INFO messages reach the task log through the root logger, at INFO. Set before any
# task imports mlflow (operators import this module first).
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")


class RegistryError(MlopsError, RuntimeError):
    """The MLflow registry cannot answer or lacks what was asked for; the message names it."""


class VersionAbandoned(RegistryError):
    """A later train attempt marked this version abandoned: it must not become challenger or champion."""


@dataclass(frozen=True)
class RegistryState:
    champion: str | None
    previous: str | None
    intent: str | None  # JSON of an interrupted promotion's Intent, if any


@dataclass(frozen=True)
class MlflowConnection:
    tracking_uri: str
    registry_uri: str
    artifact_root: str | None  # None: the tracking server's own (``--artifacts-destination``)


class MlflowHook(BaseHook):
    """Connects to MLflow from the ``mlflow`` connection (host = tracking URI; login/password for a
    server with basic auth; extra ``artifact_root`` and ``registry_uri``). Without that connection it
    uses ``[mlops] mlflow_tracking_uri`` (a SQLite store beside Airflow by default). An http(s)
    tracking server without an ``artifact_root`` extra keeps artifacts where the server says
    (``mlflow server --artifacts-destination s3://...``, proxied: workers need no S3 credentials).

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
        server = uri.startswith(("http://", "https://"))
        return MlflowConnection(uri, extra.get("registry_uri", uri),
                                extra.get("artifact_root", None if server else settings.default_artifact_root()))

    @cached_property
    def connection(self) -> MlflowConnection:
        # Bounded retries: a registry that is down fails the task in seconds, not after MLflow's
        # default of seven retries with exponential backoff; Airflow's task retries come on top.
        # No artifact download progress bar: a task's stderr lines land in its log as errors.
        for key, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                           ("MLFLOW_HTTP_REQUEST_TIMEOUT", "20"), ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")):
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
            root = self.connection.artifact_root
            return self.client.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)
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

    def version_exists(self, model_name: str, version: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_model_version(model_name, version)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise RegistryError(f"cannot read {model_name} version {version} from {self.connection.tracking_uri}: "
                                f"{exc}") from exc
        return True

    def registry_state(self, model_name: str) -> RegistryState:
        """``champion``, ``previous`` and any promotion intent of ``model_name``, in one read."""
        from mlflow.exceptions import MlflowException

        from mlops_pack.core.promotion.repair import INTENT_TAG

        try:
            model = self.client.get_registered_model(model_name)
        except MlflowException as exc:
            raise RegistryError(f"cannot read registered model {model_name} from {self.connection.tracking_uri}: "
                                f"{exc}") from exc
        aliases = {k: str(v) for k, v in (model.aliases or {}).items()}
        return RegistryState(aliases.get("champion"), aliases.get("previous"), dict(model.tags).get(INTENT_TAG))

    def load_model(self, model_name: str, version: str) -> Any:
        """The scikit-learn model of ``model_name`` version ``version``."""
        from mlops_pack.core.train import quiet_skops_module_lookup

        quiet_skops_module_lookup()  # MLflow loads sklearn models with skops: no deprecation flood in the log
        import mlflow.sklearn
        from mlflow.exceptions import MlflowException

        self.client  # noqa: B018 - sets the tracking/registry URIs used by load_model
        try:
            return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")
        except (MlflowException, OSError) as exc:
            raise RegistryError(f"cannot load model {model_name} version {version}: {exc}") from exc

    def model_card_sources(self, model_name: str, version: str) -> dict[str, Any]:
        """What the registry knows of a version for its model card (core/model_card.assemble): tags, its
        run's params and recorded training inputs (None before they were recorded), creation time, aliases."""
        import datetime as dt

        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        from mlops_pack.core.reproduce import INPUTS_ARTIFACT

        try:
            found = self.client.get_model_version(model_name, str(version))
            aliases = [a for a, v in self.client.get_registered_model(model_name).aliases.items() if str(v) == str(version)]
            params = dict(self.client.get_run(found.run_id).data.params) if found.run_id else {}
        except MlflowException as exc:
            raise RegistryError(f"cannot read {model_name} version {version} from {self.connection.tracking_uri}: "
                                f"{exc}") from exc
        try:
            inputs = mlflow.artifacts.load_dict(f"runs:/{found.run_id}/{INPUTS_ARTIFACT}") if found.run_id else None
        except (MlflowException, OSError):
            inputs = None  # trained before training recorded its inputs
        created = dt.datetime.fromtimestamp(found.creation_timestamp / 1000, dt.UTC).isoformat()
        return {"tags": dict(found.tags), "params": params, "run_id": found.run_id, "created_at": created,
                "inputs": inputs, "aliases": aliases}

    def log_model_card(self, model_name: str, version: str, run_id: str | None, card: dict[str, Any], html: str,
                       where: str) -> None:
        """The card as artifacts of the version's run (``model_card/card.json``, ``model_card/card.html``) and
        the version's tag ``model_card`` naming where the served copy is (``where``)."""
        if run_id:
            self.client.log_dict(run_id, card, "model_card/card.json")
            self.client.log_text(run_id, html, "model_card/card.html")
        self.tag_version(model_name, version, {"model_card": where})

    def tag_version(self, model_name: str, version: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model_name, version, key, str(value))

    def log_training_run(self, spec: PipelineSpec, trained: TrainedModel, *, train_manifest: dict,
                         holdout_manifest: dict, tags: dict[str, str], attempt: Attempt | None = None,
                         inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Log one training run and register its model as a new version (the caller then moves
        ``challenger`` with ``set_challenger``, under the promotion lock). ``attempt`` tags the run and
        the version when they are created, so a later try can tell they are its predecessor's. ``inputs``
        (core/reproduce.training_inputs) is logged as the run's ``reproduce/inputs.json``."""
        import warnings

        import mlflow
        import mlflow.sklearn
        import sklearn
        from mlflow.models import infer_signature

        from mlops_pack.core.promotion.lease import fault_point
        from mlops_pack.core.train import trusted_types

        model = spec.model
        experiment_id = self.experiment_id(spec.name)
        x_train = trained.train[model.features.all]
        attempt_tags = attempt.tags() if attempt else {}
        run_tags = {**tags, **attempt_tags, **(trained.code or {}), "data_version": train_manifest["version"],
                    "pipeline": spec.name}
        with warnings.catch_warnings(), mlflow.start_run(experiment_id=experiment_id, tags=run_tags) as run:
            # Two UserWarnings MLflow gives every training run, about nothing in its data: a file:// dataset
            # source matches LocalArtifactDatasetSource, which MLflow registers twice ("can be interpreted in
            # multiple ways" between one class and itself), and the generic hint that an integer column
            # cannot hold missing values under signature enforcement (the pack predicts through the
            # sklearn flavour, which does not enforce it). Other warnings still reach the log.
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted",
                                    category=UserWarning)
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column",
                                    category=UserWarning)
            mlflow.log_params({"estimator" if model.estimator else "pipeline": model.code, "task": model.task, "target": model.target,
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
            if inputs is not None:
                from mlops_pack.core.reproduce import INPUTS_ARTIFACT

                mlflow.log_dict(inputs, INPUTS_ARTIFACT)
            self._log_review_figures(trained, spec)
            for frame, manifest, context in ((trained.train, train_manifest, "training"),
                                             (trained.holdout, holdout_manifest, "holdout")):
                dataset = mlflow.data.from_pandas(frame, source=manifest["uri"], targets=model.target,
                                                  name=f"{spec.name}-{context}", digest=manifest["version"])
                mlflow.log_input(dataset, context=context)
            with self._stderr_as_info():
                info = mlflow.sklearn.log_model(
                    trained.pipeline, name="model",
                    signature=infer_signature(x_train.head(100), trained.pipeline.predict(x_train.head(100))),
                    input_example=x_train.head(3), registered_model_name=spec.name,
                    skops_trusted_types=trusted_types(trained.pipeline),
                    # Explicit requirements skip MLflow's slow import-capturing inference.
                    pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
                    tags=attempt_tags,  # on the logged model and, at its creation, on the model version
                )
            fault_point("train.registered")  # test-only: a crash with the version registered and the run open
        version = str(info.registered_model_version)
        self.tag_version(spec.name, version, {
            "data_version": train_manifest["version"], "train_uri": train_manifest["uri"],
            "holdout_uri": holdout_manifest["uri"], "airflow.run_id": tags.get("airflow.run_id", ""),
            **{f"holdout_{k}": round(v, 6) for k, v in trained.metrics.items()}, **(trained.code or {}),
        })
        return {"model_name": spec.name, "version": version, "run_id": run.info.run_id,
                "experiment_id": experiment_id, "data_version": train_manifest["version"],
                "holdout_uri": holdout_manifest["uri"], "train_uri": train_manifest["uri"],
                "metrics": {k: round(v, 6) for k, v in trained.metrics.items()}}

    @contextmanager
    def _stderr_as_info(self) -> Iterator[None]:
        """MLflow prints registration news ("Created version '3' of model ...") straight to stderr,
        which Airflow's task runner records as ERROR: capture it and log it at INFO instead."""
        import contextlib
        import io

        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured):
                yield
        finally:
            for line in captured.getvalue().splitlines():
                if line.strip():
                    self.log.info("MLflow: %s", line.strip())

    @staticmethod
    def _log_review_figures(trained: TrainedModel, spec: PipelineSpec) -> None:
        import matplotlib.pyplot as plt
        import mlflow

        from mlops_pack.core.plots import review_figures

        for name, figure in review_figures(trained.pipeline, trained.holdout, spec.model).items():
            mlflow.log_figure(figure, f"review/{name}")
            plt.close(figure)

    def model_version_url(self, model_name: str, version: str) -> str:
        return f"{self.ui_url()}/#/models/{model_name}/versions/{version}"

    def ui_url(self) -> str:
        """Browser URL of the MLflow UI: ``[mlops] mlflow_ui_url``, else the connection's extra
        ``ui_url``, else an http(s) tracking URI (a tracking server serves its UI), else
        ``http://127.0.0.1:5000`` (what ``make ui`` starts beside Airflow for a local store)."""
        configured = settings.mlflow_ui_url()
        if configured:
            return configured
        extra_ui = self._connection_ui_url()
        if extra_ui:
            return extra_ui
        uri = self.connection.tracking_uri
        return uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"

    def _connection_ui_url(self) -> str:
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            return str(self.get_connection(self.mlflow_conn_id).extra_dejson.get("ui_url") or "").rstrip("/")
        except AirflowNotFoundException:
            return ""
