"""MlflowHook: the one way this pack talks to an MLflow tracking server and model registry."""

from __future__ import annotations

import os
import threading
import time
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

    from mlops_pack.core.attempts import Attempt, Item, Stale
    from mlops_pack.core.spec import PipelineSpec
    from mlops_pack.core.train import TrainedModel


# MLflow otherwise gives its loggers their own stderr handler, and Airflow's task runner records every
# stderr line as ERROR: "Created version '1' of model ..." would read as a failure. Without that
# handler MLflow's INFO messages reach the task log through the root logger, at INFO. Set before any
# task imports mlflow (operators import this module first).
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")


class RegistryError(MlopsError, RuntimeError):
    """The MLflow registry cannot answer or lacks what was asked for; the message names it."""


class LockTimeout(RegistryError):
    """The promotion lock stayed held (and its lease kept being renewed) for the whole wait."""


class VersionAbandoned(RegistryError):
    """A later train attempt marked this version abandoned: it must not become challenger or champion."""


class LockLost(RegistryError):
    """This promoter no longer owns the promotion lock (its lease ran out or was broken): it wrote nothing."""


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

    @contextmanager
    def promotion_lock(self, model_name: str, holder: str, *, wait_seconds: float = 300,
                       lease_seconds: float = 36, heartbeat_seconds: float | None = None,
                       attempt: str = "", version: str = "", kind: str = "promote") -> Iterator[RegistryLease]:
        """Hold the registry-wide lock on ``model_name``'s aliases; yields the RegistryLease.

        The lock is a registered model ``<model>.promotion-lock`` (atomic creation in every MLflow
        backend), tagged with a fresh owner token and a lease that a background heartbeat renews every
        ``heartbeat_seconds`` (default lease/6). A lock whose lease stopped being renewed for
        ``lease_seconds`` (a killed holder, a lost server) is broken by one elected waiter. Every alias
        write goes through the lease (``fence``), which proves the token still owns the lock. Release
        deletes the lock only if it is still ours; a release failure is logged, never raised over the
        body's own error. See docs/promotion.md for the protocol.
        """
        from mlops_pack.core.registry_lock import LeaseTerms

        terms = LeaseTerms(lease_seconds, heartbeat_seconds)
        lease = self._acquire(model_name, holder, terms, wait_seconds,
                              {"attempt": attempt, "version": version, "kind": kind})
        lease.start_heartbeat()
        try:
            yield lease
        finally:
            try:
                self._release(lease)
            except Exception as exc:  # noqa: BLE001 - never mask the body's error; the lease runs out anyway
                self.log.warning("Could not release the promotion lock of %s (%s); it will be broken when its "
                                 "%gs lease runs out", model_name, exc, terms.lease_seconds)

    def _acquire(self, model_name: str, holder: str, terms: Any, wait_seconds: float,
                 info: dict[str, str]) -> RegistryLease:
        from mlops_pack.core.registry_lock import StaleWatch, backoff, lock_name

        name, deadline, watch = lock_name(model_name), time.monotonic() + wait_seconds, StaleWatch()
        outage = _Outage(self, model_name, terms.unreachable_seconds)
        broken: list[dict[str, str]] = []
        tags, look_at = None, 0.0
        for tries in range(10**9):
            lease = outage.call(self._try_create, model_name, holder, terms, info)
            if lease is not None:
                lease.broken = broken
                return lease
            if time.monotonic() < look_at:  # a poll is one create; the lock's tags are read once a second
                time.sleep(backoff(tries))
                continue
            tags, look_at = outage.call(self._lock_tags, name), time.monotonic() + min(1.0, terms.beat)
            if tags and watch.stale(tags, mono=time.monotonic(), wall=time.time()):
                if outage.call(self._break, model_name, tags):
                    broken.append(tags)
                continue
            if time.monotonic() > deadline:
                raise LockTimeout(f"promotion lock of {model_name} at {self.connection.tracking_uri} is held by "
                                  f"{(tags or {}).get('holder', 'nobody (it came and went)')}; gave up after "
                                  f"{wait_seconds:.0f}s")
            time.sleep(backoff(tries))
        raise AssertionError("unreachable")

    def _try_create(self, model_name: str, holder: str, terms: Any, info: dict[str, str]) -> RegistryLease | None:
        """The lease if we created (and still own) the lock, None on contention."""
        from mlflow.exceptions import MlflowException

        from mlops_pack.core.registry_lock import fault_point, lock_name, lock_tags, new_token, owns, trace

        name, token, started = lock_name(model_name), new_token(), time.monotonic()
        try:
            self.client.create_registered_model(
                name, tags=lock_tags(token, holder, terms, now=time.time(), **info),
                description=f"Lock on {model_name}'s aliases; removed by its holder, or broken when its lease ends.")
        except MlflowException as exc:
            # 404 too: MLflow's SQL store answers create with not-found when it races the holder's delete
            if exc.error_code in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
                return None
            raise
        fault_point("lock.created")
        # Re-verify: a breaker elected on an older acquisition could only delete ours in a window
        # docs/promotion.md describes; if it did, this is just contention.
        if not owns(self._lock_tags(name), token):
            return None
        trace("enter", token, holder=holder)
        fault_point("lock.acquired")
        return RegistryLease(self, model_name, token, holder, terms, renewed_at=started)

    def _break(self, model_name: str, seen: dict[str, str]) -> bool:
        """Break the stale acquisition ``seen``: elect one breaker per token by creating a marker model,
        re-read, and delete only if the lock is still exactly ``seen``. True if we broke it."""
        from mlflow.exceptions import MlflowException

        from mlops_pack.core.registry_lock import break_marker_name, fault_point, lock_name, may_break, trace

        name, marker = lock_name(model_name), break_marker_name(model_name, seen.get("token"))
        try:
            self.client.create_registered_model(marker, tags={"lease_until": f"{time.time() + 60:.3f}"})
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
                raise
            self._drop_stale_marker(marker)
            return False
        try:
            fault_point("lock.stale_seen")
            if not may_break(seen, self._lock_tags(name)):
                return False
            self.log.warning("Breaking the promotion lock of %s held by %s: its lease was not renewed for %ss",
                             model_name, seen.get("holder"), seen.get("lease_seconds", "?"))
            trace("broken", seen.get("token") or "legacy", by=str(os.getpid()))
            self._delete_model(name)
            fault_point("lock.broken")
            return True
        finally:
            self._delete_model(marker)

    def _drop_stale_marker(self, marker: str) -> None:
        """A breaker that died holding its marker would block breaking forever: markers live 60 s."""
        tags = self._lock_tags(marker)
        if tags and time.time() > float(tags.get("lease_until") or 0):
            self._delete_model(marker)

    def _release(self, lease: RegistryLease) -> None:
        from mlops_pack.core.registry_lock import fault_point, lease_valid, owns, trace

        lease.stop_heartbeat()
        fault_point("lock.before_release")
        if lease.lost or not lease_valid(lease.renewed_at, lease.terms, time.monotonic()):
            # A breaker may be deleting it right now: deleting here could delete its successor's lock.
            self.log.warning("Not releasing the promotion lock of %s: its lease ran out (%s); a waiter breaks it",
                             lease.model_name, lease.lost or "no renewal in time")
            lease.lost = lease.lost or "lease ran out before release"  # its breaker records this attempt
            return
        if not owns(self._lock_tags(lease.name), lease.token):
            self.log.warning("The promotion lock of %s is no longer ours: left alone", lease.model_name)
            return
        trace("exit", lease.token)
        self._delete_model(lease.name)

    def _lock_tags(self, name: str) -> dict[str, str]:
        """Tags of lock (or marker) ``name``; {} when there is none."""
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_registered_model(name).tags)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise

    def _delete_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise

    def registry_state(self, model_name: str) -> RegistryState:
        """``champion``, ``previous`` and any promotion intent of ``model_name``, in one read."""
        from mlflow.exceptions import MlflowException

        from mlops_pack.core.registry_lock import INTENT_TAG

        try:
            model = self.client.get_registered_model(model_name)
        except MlflowException as exc:
            raise RegistryError(f"cannot read registered model {model_name} from {self.connection.tracking_uri}: "
                                f"{exc}") from exc
        aliases = {k: str(v) for k, v in (model.aliases or {}).items()}
        return RegistryState(aliases.get("champion"), aliases.get("previous"), dict(model.tags).get(INTENT_TAG))

    def write_intent(self, lease: RegistryLease, intent: Any) -> None:
        from mlops_pack.core.registry_lock import INTENT_TAG, fault_point

        lease.fence("write the promotion intent")
        self.client.set_registered_model_tag(lease.model_name, INTENT_TAG, intent.to_tag())
        fault_point("alias.intent_written")

    def clear_intent(self, lease: RegistryLease) -> None:
        from mlflow.exceptions import MlflowException

        from mlops_pack.core.registry_lock import INTENT_TAG, fault_point

        lease.fence("clear the promotion intent")
        try:
            self.client.delete_registered_model_tag(lease.model_name, INTENT_TAG)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        fault_point("alias.intent_cleared")

    def move_aliases(self, lease: RegistryLease, moves: list[tuple[str, str | None]]) -> None:
        """Apply ``moves`` (alias -> version; None deletes the alias) in order, each fenced."""
        from mlops_pack.core.registry_lock import fault_point, trace

        for alias, version in moves:
            lease.fence(f"move {alias} to {version}")
            trace("write", lease.token, alias=alias, version=version)
            if version is None:
                self.client.delete_registered_model_alias(lease.model_name, alias)
            else:
                self.client.set_registered_model_alias(lease.model_name, alias, version)
            fault_point(f"alias.{alias}_moved")

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

    def set_challenger(self, lease: RegistryLease, version: str) -> None:
        """Point ``challenger`` at ``version`` through the lease (fenced like every alias move); refuses
        (VersionAbandoned) a version a later train attempt marked abandoned meanwhile."""
        from mlops_pack.core.attempts import promotion_refusal

        refusal = promotion_refusal(lease.model_name, version, self.version_tags(lease.model_name, version))
        if refusal:
            raise VersionAbandoned(refusal)
        self.move_aliases(lease, [("challenger", version)])

    def attempt_items(self, model_name: str, attempt: Attempt) -> list[Item]:
        """The model versions and MLflow runs (in experiment ``model_name``) tagged with ``attempt``'s dag run."""
        from mlflow.entities import ViewType

        from mlops_pack.core.attempts import RUN_ID, Item

        # A run id with a quote cannot go into a filter string: then every version/run is read and core decides.
        match = f"tags.`{RUN_ID}` = '{attempt.run_id}'" if "'" not in attempt.run_id else ""
        versions = self.client.search_model_versions(" AND ".join(filter(None, [f"name = '{model_name}'", match])),
                                                     max_results=10000)
        items = [Item("version", str(v.version), dict(v.tags or {}), run_key=v.run_id or "") for v in versions]
        experiment = self.client.get_experiment_by_name(model_name)
        if experiment is not None:
            runs = self.client.search_runs([experiment.experiment_id], filter_string=match,
                                           run_view_type=ViewType.ALL, max_results=10000)
            items += [Item("run", r.info.run_id, dict(r.data.tags), status=r.info.status) for r in runs]
        return items

    def abandon_stale_attempts(self, model_name: str, attempt: Attempt) -> list[Stale]:
        """Mark what earlier tries of ``attempt``'s task left behind (core/attempts.py decides what): tags
        ``attempt_status=abandoned`` with the reason and the superseding attempt, and a run still open ends
        KILLED. Nothing is deleted. Returns what was marked. When a *later* try already made a run or a
        version, ``attempt`` is an orphan: its own leftovers are marked and VersionAbandoned is raised."""
        from mlops_pack.core.attempts import stale_items, superseded_items, superseding_attempt

        items = self.attempt_items(model_name, attempt)
        if not items:
            return []
        # MLflow 3's search_model_versions returns no aliases: read champion/previous from the model itself.
        state = self.registry_state(model_name) if any(i.kind == "version" for i in items) else None
        protected = {v for v in (state.champion, state.previous) if v} if state else set()
        later = superseding_attempt(attempt, items)
        stale = stale_items(attempt, items, protected_versions=protected)
        if later is not None:
            stale += superseded_items(attempt, later, items, protected_versions=protected)
        self._mark_abandoned(model_name, stale)
        if later is not None:
            raise VersionAbandoned(f"{attempt.label()} is an orphan: {later.label()} of the same task already "
                                   "made a run or a version; this try's leftovers are marked abandoned")
        return stale

    def _mark_abandoned(self, model_name: str, stale: list[Stale]) -> None:
        for found in stale:
            if found.item.kind == "version":
                self.tag_version(model_name, found.item.key, found.tags)
            else:
                for key, value in found.tags.items():
                    self.client.set_tag(found.item.key, key, value)
                if found.kill_run:
                    self.client.set_terminated(found.item.key, status="KILLED")
            self.log.warning("Marked %s %s of %s abandoned: %s", found.item.kind, found.item.key, model_name,
                             found.tags["abandoned_reason"])

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

        from mlops_pack.core.registry_lock import fault_point
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


class RegistryLease:
    """One acquisition of the promotion lock: its owner token, its heartbeat thread, and the fence.

    ``broken`` lists the tags of stale acquisitions this one broke to get the lock (their holders'
    attempts are recorded by the new holder). ``lost`` says why the lease can no longer be trusted.
    """

    def __init__(self, hook: MlflowHook, model_name: str, token: str, holder: str, terms: Any, *,
                 renewed_at: float):
        from mlops_pack.core.registry_lock import lock_name

        self.hook, self.model_name, self.name = hook, model_name, lock_name(model_name)
        self.token, self.holder, self.terms = token, holder, terms
        self.renewed_at = renewed_at  # monotonic start of the last successful renewal (or the create)
        self.broken: list[dict[str, str]] = []
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fence(self, step: str) -> None:
        """Prove, immediately before a registry write, that this token still owns the lock.

        Reads the lock (its token must be ours) and then checks the local lease: a breaker waits a
        whole lease after the last renewal it saw, we stop ``margin`` seconds before that.
        """
        from mlflow.exceptions import MlflowException

        from mlops_pack.core.registry_lock import lease_valid, owns

        try:
            tags = self.hook._lock_tags(self.name) if self.lost is None else {}
        except MlflowException as exc:
            raise RegistryError(f"cannot check the promotion lock of {self.model_name} before: {step} at "
                                f"{self.hook.connection.tracking_uri}: {exc}") from exc
        if self.lost is None and not owns(tags, self.token):
            self.lost = "its lock model now belongs to another holder or is gone"
        if self.lost is None and not lease_valid(self.renewed_at, self.terms, time.monotonic()):
            self.lost = f"lease not renewed for {time.monotonic() - self.renewed_at:.0f}s"
        if self.lost:
            raise LockLost(f"lost the promotion lock of {self.model_name} before: {step} ({self.lost}); "
                           "nothing more is written, the next holder repairs and records this attempt")

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"promotion-lock-heartbeat-{self.model_name}")
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.terms.beat)

    def _beat(self) -> None:
        from mlops_pack.core.registry_lock import fault_point, heartbeat_tag, owns

        while not self._stop.wait(self.terms.beat):
            started = time.monotonic()
            try:
                fault_point("lock.heartbeat")
                if not owns(self.hook._lock_tags(self.name), self.token):
                    self.lost = "the lock was broken or taken by another holder"
                    return
                for key, value in heartbeat_tag(self.terms, time.time()).items():
                    self.hook.client.set_registered_model_tag(self.name, key, value)
                self.renewed_at = started
            except Exception as exc:  # noqa: BLE001 - keep beating; the fence stops writes if the lease runs out
                self.hook.log.warning("Promotion lock heartbeat of %s failed: %s", self.model_name, exc)


class _Outage:
    """Lets a lock waiter ride out a registry that stops answering (a restart) for a bounded time."""

    def __init__(self, hook: MlflowHook, model_name: str, seconds: float):
        self.hook, self.model_name, self.seconds = hook, model_name, seconds
        self.since: float | None = None

    def call(self, fn: Any, *args: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            result = fn(*args)
        except MlflowException as exc:
            if exc.error_code not in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"):
                raise RegistryError(f"cannot take the promotion lock of {self.model_name} at "
                                    f"{self.hook.connection.tracking_uri}: {exc}") from exc
            self.since = self.since or time.monotonic()
            if time.monotonic() - self.since > self.seconds:
                raise RegistryError(f"cannot take the promotion lock of {self.model_name}: "
                                    f"{self.hook.connection.tracking_uri} did not answer for "
                                    f"{self.seconds:.0f}s: {exc}") from exc
            self.hook.log.warning("Registry %s not answering while waiting for the lock: %s",
                                  self.hook.connection.tracking_uri, exc)
            time.sleep(1)
            return None
        self.since = None
        return result
