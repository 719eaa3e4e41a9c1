"""The pack's one operator family: what every operator (and the sensor) shares.

``PipelineTaskMixin`` gives a task its pipeline spec, its storage (honouring ``storage_root``), its
run's data key and asset-event emission; ``PipelineOperator``, ``MlflowOperator`` and
``RegistryOperator`` (judging, the promotion lock, decision records) build on it, and the sensor
mixes it into Airflow's sensor base.

When the spec is read: the DAG factory reads it at parse time for the DAGs' shape (tasks,
schedules, Params defaults); each task reads it again, once, when it executes (``self.spec``), for
every value it uses. An edited spec therefore reshapes the DAGs at the next parse and changes
behaviour from the next task that starts.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_pack.core.spec import PipelineSpec
    from mlops_pack.hooks.mlflow import MlflowHook
    from mlops_pack.hooks.storage import PipelineStorageHook


def check_spec_path(spec_path: str) -> str:
    """``spec_path`` as a string; a ValueError names it unless it is a .yaml file or a template."""
    if not str(spec_path).endswith((".yaml", ".yml")) and "{{" not in str(spec_path):
        raise ValueError(f"spec_path must be a pipeline spec .yaml file, got {spec_path!r}")
    return str(spec_path)


class PipelineTaskMixin:
    """Spec, storage, data key and asset events for a task working on one pipeline.

    The class using it sets ``spec_path`` and ``storage_root`` in ``__init__``.
    """

    spec_path: str
    storage_root: str | None
    outlets: list

    @cached_property
    def spec(self) -> PipelineSpec:
        """The pipeline spec; an invalid one fails the task without retries (a retry reads the same file)."""
        from mlops_pack.core.spec import SpecError, load_spec

        try:
            return load_spec(Path(self.spec_path))
        except SpecError as exc:
            raise AirflowFailException(str(exc)) from exc

    @cached_property
    def storage(self) -> PipelineStorageHook:
        from mlops_pack.hooks.storage import PipelineStorageHook

        return PipelineStorageHook(self.spec.name, storage_root=self.storage_root)

    def data_key(self, context: Context) -> str | None:
        """The run's data key (docs/storage.md): conf ``partition``, the run's ``partition_key``, the
        triggering events' ``partition``, else the logical date; None when the run has none."""
        from mlops_pack.core.partitions import run_data_key

        dag_run = context.get("dag_run")
        requested = (context.get("params") or {}).get("partition") or (getattr(dag_run, "conf", None) or {}).get(
            "partition")
        return run_data_key(requested=requested, run_partition_key=getattr(dag_run, "partition_key", None),
                            event_keys=event_partition_keys(context), logical_date=context.get("logical_date"),
                            date_format=self.spec.partition.date_format)

    def emit(self, context: Context, extra: dict[str, Any]) -> None:
        """Put ``extra`` (small JSON) on the asset event of each of this task's outlets."""
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra


def event_partition_keys(context: Context, asset: Any = None) -> list[str]:
    """Partition keys named by the run's triggering asset events (of ``asset``, or of any asset)."""
    from mlops_pack.core.inbox import MessageError, partitions_named, queue_messages

    events = context.get("triggering_asset_events") or {}
    groups = [events.get(asset, [])] if asset is not None else list(events.values())
    keys: list[str] = []
    for group in groups:
        for event in group:
            extra = event.extra or {}
            named = [p["key"] for p in extra.get("partitions", []) if isinstance(p, dict) and "key" in p]
            # Queue messages (AssetWatcher) land in extra["payload"] in the provider trigger's shape, and a
            # malformed one fails the run naming it (core/inbox.py), without retries: the message won't change.
            try:
                messages = partitions_named(extra) if queue_messages(extra) is not None else []
            except MessageError as exc:
                raise AirflowFailException(str(exc)) from exc
            payload = extra.get("payload") if isinstance(extra.get("payload"), dict) else {}
            keys.extend(named or messages or [str(k) for k in (extra.get("partition"), payload.get("partition"),
                                                                getattr(event, "partition_key", None)) if k])
    return list(dict.fromkeys(keys))


class PipelineOperator(PipelineTaskMixin, BaseOperator):
    """Base of the pack's operators: each works on one pipeline spec.

    :param spec_path: path of the pipeline spec YAML (templated).
    :param storage_root: override of ``[mlops] storage_root`` (templated).
    """

    template_fields = ("spec_path", "storage_root")

    def __init__(self, *, spec_path: str, storage_root: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec_path = check_spec_path(spec_path)
        self.storage_root = storage_root


class MlflowOperator(PipelineOperator):
    """A pipeline operator that talks to MLflow (tracking or registry).

    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    def __init__(self, *, mlflow_conn_id: str = "mlflow_default", **kwargs: Any):
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def mlflow(self) -> MlflowHook:
        from mlops_pack.hooks.mlflow import MlflowHook

        return MlflowHook(self.mlflow_conn_id)


class ChampionMoved(AirflowFailException):
    """The champion changed after the decision was taken (and approved); judging must start again."""


class RegistryOperator(MlflowOperator):
    """An MLflow operator that judges versions and moves aliases under the promotion lock, recording
    every decision in the registry and in storage (docs/promotion.md has the lock protocol).

    :param lock_wait_seconds: how long to wait for the promotion lock.
    :param lock_lease_seconds: lease of the lock while held (renewed by a heartbeat); a dead holder's
        lock is reclaimable after one lease.
    """

    def __init__(self, *, lock_wait_seconds: float = 300, lock_lease_seconds: float = 36, **kwargs: Any):
        super().__init__(**kwargs)
        if lock_lease_seconds < 3 or lock_wait_seconds < 0:
            raise ValueError(f"lock_lease_seconds must be >= 3 and lock_wait_seconds >= 0, got "
                             f"{lock_lease_seconds} and {lock_wait_seconds}")
        self.lock_wait_seconds, self.lock_lease_seconds = lock_wait_seconds, lock_lease_seconds

    def evaluate(self, version: str, champion: str | None) -> dict[str, Any]:
        """The gate's verdict on ``version`` vs ``champion`` on ``version``'s holdout."""
        from mlops_pack.core.metrics import METRICS, predictions_of
        from mlops_pack.core.promote import judge
        from mlops_pack.core.storage import read_partition

        name, model = self.spec.name, self.spec.model
        tags = self.mlflow.version_tags(name, version)
        if "holdout_uri" not in tags:
            raise ValueError(f"{name} version {version} has no holdout_uri tag: was it trained by this pack?")
        holdout = read_partition(self.storage.path(tags["holdout_uri"]).parent)
        self._refuse_leaked_holdout(name, version, tags, holdout)
        x, y = holdout[model.features.all], holdout[model.target].to_numpy()
        # Each metric gets what it needs: class probabilities for roc_auc/log_loss (core/metrics.py).
        needs_proba = any(METRICS[m].needs == "proba" for m in self.spec.promotion.metrics)
        challenger = predictions_of(self.mlflow.load_model(name, version), x, model.task, needs_proba)
        previous = None
        if champion is not None and champion != version:
            previous = predictions_of(self.mlflow.load_model(name, champion), x, model.task, needs_proba)
        result = judge(y, challenger, previous, self.spec.promotion,
                       slices=holdout[self.spec.promotion.slices] if self.spec.promotion.slices else None)
        return {**result.as_dict(), "model": name, "version": version, "champion_evaluated": champion}

    def _refuse_leaked_holdout(self, name: str, version: str, tags: dict[str, str], holdout) -> None:
        """HoldoutLeak, naming the overlap, when the holdout shares record keys with the version's training
        set: a gate judging on rows the model has seen would promote on inflated metrics."""
        from mlops_pack.core.partitions import check_disjoint
        from mlops_pack.core.storage import read_partition

        key = self.spec.source.key
        if "train_uri" not in tags or key not in holdout.columns:
            raise ValueError(f"{name} version {version} has no train_uri tag or its holdout no {key!r} column: "
                             "the gate cannot check that the holdout is unseen data")
        train_keys = read_partition(self.storage.path(tags["train_uri"]).parent, columns=[key])
        check_disjoint(train_keys, holdout, key)

    def record(self, context: Context, record: dict[str, Any], *, tag_version: bool = True) -> None:
        """Tag the version and append the decision to ``promotions/`` (one object per decision).

        A record with an ``attempt`` id is named after it, so whoever finishes an interrupted attempt
        can tell whether it was recorded. ``tag_version=False`` keeps the version's tags as they are
        (a failed rollback must not strip its target's ``decision=promoted``).
        """
        from mlops_pack.core.storage import write_json

        if tag_version:
            tags = {"decision": record["decision"], "reason": record["reason"][:4000],
                    "decided_by": record["approved_by"], "evaluated_against": record["champion_before"] or "none"}
            if record.get("attempt"):
                tags["decision_attempt"] = record["attempt"]
            self.mlflow.tag_version(self.spec.name, record["version"], tags)
        stamp = record["decided_at"].replace(":", "").replace("+", "Z")
        suffix = f"_{record['attempt']}" if record.get("attempt") else ""
        write_json(self.storage.area("promotions") / f"{stamp}_v{record['version']}{suffix}.json", record)
        self.log.info("%s version %s %s: %s", self.spec.name, record["version"], record["decision"].upper(),
                      record["reason"])

    @staticmethod
    def base_record(context: Context, name: str, version: str) -> dict[str, Any]:
        return {"model": name, "version": str(version), "decided_at": dt.datetime.now(dt.UTC).isoformat(),
                "dag_id": context["dag"].dag_id, "run_id": context["run_id"]}

    # ----- the lock, crash repair and failure records shared by promote and rollback -----

    def holder(self, context: Context) -> str:
        return f"{context['dag'].dag_id}/{context['run_id']}"

    def lock(self, context: Context, attempt: str, version: str, kind: str) -> Any:
        return self.mlflow.promotion_lock(self.spec.name, self.holder(context), wait_seconds=self.lock_wait_seconds,
                                          lease_seconds=self.lock_lease_seconds, attempt=attempt,
                                          version=str(version), kind=kind)

    def recorded(self, attempt: str) -> bool:
        """Does ``promotions/`` hold a record of ``attempt``?"""
        area = self.storage.area("promotions")
        return area.exists() and any(p.name.endswith(f"_{attempt}.json") for p in area.iterdir())

    def repaired_state(self, context: Context, lease: Any) -> Any:
        """The registry state under a fresh lock, after recording the attempts of holders whose lock was
        broken and finishing or undoing an interrupted alias move (each recorded once)."""
        from mlops_pack.core.registry_lock import Intent

        state = self.mlflow.registry_state(self.spec.name)
        intent = Intent.from_tag(state.intent) if state.intent else None
        for dead in lease.broken:
            if dead.get("attempt") and (intent is None or intent.attempt != dead["attempt"]):
                self._record_dead_holder(context, dead, state.champion)
        if intent is None:
            return state
        self._repair(context, lease, intent, state)
        return self.mlflow.registry_state(self.spec.name)

    def _record_dead_holder(self, context: Context, dead: dict[str, str], champion: str | None) -> None:
        if self.recorded(dead["attempt"]) or not dead.get("version"):
            return  # it recorded its decision before it died, or it never got to a version
        record = {**self.base_record(context, self.spec.name, dead["version"]), "attempt": dead["attempt"],
                  "promote": False, "decision": "abandoned", "approved_by": f"lock breaker {self.holder(context)}",
                  "reason": f"{dead.get('kind', 'promote')} by {dead.get('holder')} stopped renewing the promotion "
                            f"lock (killed or cut off) before moving any alias; its lock was broken",
                  "champion_before": champion, "champion_after": champion}
        self.record(context, record, tag_version=dead.get("kind", "promote") == "promote")

    def _repair(self, context: Context, lease: Any, intent: Any, state: Any) -> None:
        from mlops_pack.core.registry_lock import repair_plan

        plan = repair_plan(intent, state.champion, state.previous)
        self.log.warning("Repairing an interrupted %s of %s v%s: %s", intent.kind, self.spec.name, intent.version,
                         plan.reason)
        self.mlflow.move_aliases(lease, plan.moves)
        if not self.recorded(intent.attempt):
            record = {**self.base_record(context, self.spec.name, intent.version), "attempt": intent.attempt,
                      "promote": plan.decision in ("promoted", "rolled_back"), "decision": plan.decision,
                      "reason": plan.reason, "repair": plan.action, "repaired_by": self.holder(context),
                      "approved_by": f"repair by {self.holder(context)} of {intent.holder}",
                      "champion_before": intent.champion_before, "champion_after": plan.champion_after}
            self.record(context, record, tag_version=intent.kind == "promote" or plan.decision != "abandoned")
        self.mlflow.clear_intent(lease)

    def record_failure(self, context: Context, attempt: str, version: str, champion: str | None,
                       exc: BaseException, *, tag_version: bool = True) -> None:
        """One record for an attempt that failed; cleanup errors are logged, never raised over ``exc``."""
        from mlops_pack.hooks.mlflow import LockTimeout

        decision = "abandoned" if isinstance(exc, ChampionMoved | LockTimeout) else "error"
        record = {**self.base_record(context, self.spec.name, version), "attempt": attempt, "promote": False,
                  "decision": decision, "reason": f"{type(exc).__name__}: {exc}", "approved_by": "policy",
                  "champion_before": champion, "champion_after": champion}
        try:
            self.record(context, record, tag_version=tag_version)
        except Exception as cleanup:  # noqa: BLE001 - the original error is what the task must fail with
            self.log.error("Could not record the %s of %s v%s (%s); the task fails with: %s", decision,
                           self.spec.name, version, cleanup, exc)
