"""MlflowTrainOperator: train a challenger on the latest validated partitions, tracked in MLflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.links import MlflowModelVersionLink, MlflowRunLink
from mlops_pack.operators.base import MlflowOperator, PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_pack.core.attempts import Attempt


class MlflowTrainOperator(MlflowOperator):
    """Fit the spec's scikit-learn pipeline and register it in MLflow with alias ``challenger``.

    The training window is the latest ``window_partitions`` validated partitions (by partition key),
    de-duplicated by the spec's record key (the newest partition's row wins) and split in time:
    the newest rows are held out, and no holdout key is a training key (checked, HoldoutLeak
    otherwise). Train and holdout sets are written to ``training/<first>_to_<last>__<hash>/``. The MLflow run records params, holdout metrics, train and holdout data
    as input datasets (with their data versions), Airflow dag/run ids as tags, a signature and an
    input example. Returns {model_name, version, run_id, experiment_id, data_version, holdout_uri, metrics}.

    Crash hygiene (core/attempts.py): the run and the version carry this attempt (dag, run, task, try,
    map index) from their creation. On start, and again under the promotion lock just before
    ``challenger`` moves (fenced) to the new version, what earlier tries of this task instance left
    (a version never judged, a run never ended) is marked ``attempt_status=abandoned`` and open runs end
    KILLED; nothing is deleted. Promotion refuses an abandoned version.

    With Param ``judge_challenger`` it trains nothing and returns the current ``@challenger`` for the
    gate to judge again (its production evidence may have grown since; skipped without one).

    First it applies the spec's retrain policy (``retrain.triggers``, core/retrain.py) to what triggered the
    run: new validated data, a drift event, a decay (performance) event, the retrain cron or a manual
    run. A run the policy does not retrain on is skipped (with the reason), and so are its promote
    steps. A drift- or decay-triggered window always holds the partitions the event names; a drift
    event arriving when the champion was already trained on them does not retrain. The version is
    tagged ``data_partitions`` (its window) for that check, and ``retrain_evidence`` /
    ``retrain_reason`` with what made this run train (input drift, decay, schedule, new data...).

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
        from mlops_pack.core.retrain import training_window
        from mlops_pack.core.storage import (
            data_version,
            digest,
            list_partitions,
            read_partition,
            write_partition,
        )
        from mlops_pack.core.train import fit

        if (context.get("params") or {}).get("judge_challenger"):
            return self._judge_again()
        attempt = self._attempt(context)
        # A try that died (killed worker, orphaned task) may have left a version and an open run: mark them
        # abandoned before anything else, so nothing below (the policy's look at `challenger`) trusts them.
        self._abandon_stale(attempt)
        window = int(self.window_partitions or self.spec.model.window_partitions)
        available = list_partitions(self.storage.area("validated"))
        if not available:
            raise ValueError(f"no validated partitions under {self.storage.area('validated')}: ingest data first")
        by_key = {m["partition"]: m for m in available}
        keys, decision = self._policy_allows(
            context, lambda drifted: training_window(list(by_key), window, drifted), set(by_key), window)
        partitions = [by_key[k] for k in keys]
        frame = pd.concat([read_partition(self.storage.path(m["folder"])) for m in partitions], ignore_index=True)
        trained = fit(frame, self.spec.model, key=self.spec.source.key, gate_metrics=list(self.spec.promotion.metrics))
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
            attempt=attempt,
        )
        result["retrain"] = {"reason": decision.reason, "evidence": list(decision.evidence)}
        self.mlflow.tag_version(self.spec.name, result["version"], {
            "profile_uri": profile_uri, "data_partitions": ",".join(keys),
            "retrain_evidence": ", ".join(decision.evidence), "retrain_reason": decision.reason[:4000]})
        self._hand_on(attempt, result["version"])
        self.log.info("Registered %s version %s as challenger (run %s): %s", self.spec.name, result["version"],
                      result["run_id"], result["metrics"])
        context["ti"].xcom_push(key="mlflow_run", value={"experiment_id": result["experiment_id"],
                                                         "run_id": result["run_id"]})
        return result

    def _judge_again(self) -> dict[str, Any]:
        """No training: hand the current ``@challenger`` to the gate again (Param ``judge_challenger``), e.g.
        once its shadow scoring has gathered labelled production rows (promotion.production_evidence)."""
        from airflow.sdk.exceptions import AirflowSkipException

        name = self.spec.name
        challenger = self.mlflow.alias_version(name, "challenger")
        champion = self.mlflow.alias_version(name, "champion")
        if challenger is None or str(challenger) == str(champion):
            raise AirflowSkipException(f"{name} has no @challenger other than the champion (v{champion}) to judge")
        self.log.info("Judging %s challenger v%s again, without training", name, challenger)
        return {"model_name": name, "version": str(challenger), "judged_again": True}

    @staticmethod
    def _attempt(context: Context) -> Attempt:
        from mlops_pack.core.attempts import Attempt

        ti = context["ti"]
        map_index = getattr(ti, "map_index", None)
        return Attempt(context["dag"].dag_id, context["run_id"], ti.task_id, int(ti.try_number),
                       -1 if map_index is None else int(map_index))

    def _hand_on(self, attempt: Attempt, version: str) -> None:
        """Move ``challenger`` to ``version`` under the promotion lock, after marking once more what earlier
        tries left: an orphaned earlier try may have registered its version after this one started. Under
        the lock, an orphan finishing later finds its version abandoned and moves nothing."""
        # attempt="" in the lock: a train that dies holding it has no promotion decision to record.
        with self.mlflow.promotion_lock(self.spec.name, attempt.label(), kind="challenger",
                                        version=version) as lease:
            self._abandon_stale(attempt)
            self._superseded_fails(lambda: self.mlflow.set_challenger(lease, version))

    def _abandon_stale(self, attempt: Attempt) -> None:
        self._superseded_fails(lambda: self.mlflow.abandon_stale_attempts(self.spec.name, attempt))

    @staticmethod
    def _superseded_fails(call: Any) -> None:
        """Run ``call``; a superseded (orphaned) try fails for good: a retry of it has nothing to do."""
        from airflow.sdk.exceptions import AirflowFailException

        from mlops_pack.hooks.mlflow import VersionAbandoned

        try:
            call()
        except VersionAbandoned as exc:
            raise AirflowFailException(str(exc)) from exc

    def _policy_allows(self, context: Context, window_of: Any, available: set[str], window: int,
                       ) -> tuple[list[str], Any]:
        """The partitions this run trains on (``window_of(drifted)``) and the retrain decision;
        AirflowSkipException when the retrain policy says this run does not train."""
        from airflow.sdk.exceptions import AirflowSkipException

        from mlops_pack.assets import PipelineAssets
        from mlops_pack.core.retrain import decide, drifted_partitions
        from mlops_pack.operators.base import event_partition_keys

        assets = PipelineAssets.of(self.spec.name)
        events = context.get("triggering_asset_events") or {}
        triggers = [kind for kind, asset in (("new_data", assets.validated), ("drift", assets.drift),
                                             ("performance", assets.performance)) if events.get(asset)]
        dag_run = context.get("dag_run")
        if str(getattr(dag_run, "run_type", "")).lower().endswith("scheduled"):
            triggers.append("schedule")
        drifted = drifted_partitions(event_partition_keys(context, assets.drift)) if "drift" in triggers else []
        # A decay event names the prediction partition that decayed: its data belongs in the window too.
        decayed_data = (drifted_partitions(event_partition_keys(context, assets.performance))
                        if "performance" in triggers else [])
        unknown = [k for k in [*drifted, *decayed_data] if k not in available]
        if unknown:  # e.g. a report key naming several partitions: the newest partitions are in the window anyway
            self.log.warning("Partitions %s named by drift or decay events are not validated partition keys; "
                             "training on the latest %d", unknown, window)
            drifted = [k for k in drifted if k in available]
            decayed_data = [k for k in decayed_data if k in available]
        keys = window_of(sorted({*drifted, *decayed_data}))
        champion = self.mlflow.alias_version(self.spec.name, "champion")
        trained_on, rejected_same = None, None
        if champion is not None:
            tag = self.mlflow.version_tags(self.spec.name, champion).get("data_partitions")
            trained_on = tag.split(",") if tag else None
            latest = self.mlflow.alias_version(self.spec.name, "challenger")
            if latest not in (None, champion):
                tags = self.mlflow.version_tags(self.spec.name, latest)
                if (tags.get("data_partitions") == ",".join(keys) and tags.get("decision") == "rejected"
                        and tags.get("evaluated_against") == champion):
                    rejected_same = latest
        decision = decide(triggers or ["manual"], self.spec.retrain.triggers, champion=champion,
                          champion_partitions=trained_on, drifted=drifted, rejected_same_window=rejected_same,
                          decayed_versions=self._decay_evidence(context, assets, triggers),
                          require_decay_for_drift=self.spec.retrain.require_decay_for_drift)
        self.log.info("Retrain policy %s, triggers %s: %s (evidence: %s)", self.spec.retrain.triggers,
                      triggers or ["manual"], decision.reason, ", ".join(decision.evidence) or "none")
        if not decision.train:
            raise AirflowSkipException(decision.reason)
        return keys, decision

    def _decay_evidence(self, context: Context, assets: Any, triggers: list[str]) -> list[str]:
        """Versions with decay evidence: those the run's performance events name, and (for the
        require-decay policy) each version whose newest realized-performance record says decay."""
        from mlops_pack.core.retrain import decayed_versions
        from mlops_pack.core.storage import list_partitions

        named = [str((e.extra or {}).get("model_version")) for e in
                 (context.get("triggering_asset_events") or {}).get(assets.performance, [])
                 if (e.extra or {}).get("model_version") is not None]
        recorded = []
        if "drift" in triggers and self.spec.retrain.require_decay_for_drift:
            recorded = decayed_versions(list_partitions(self.storage.area("performance")))
        return [*named, *recorded]

    def _write_profile(self, folder, train) -> str:
        """The drift reference profile of the training set, next to it (``<train>/profile.json``)."""
        from mlops_pack.core.drift import spec_columns
        from mlops_pack.core.drift_profile import build_profile
        from mlops_pack.core.storage import write_json

        numeric, categorical = spec_columns(self.spec)
        path = folder / "profile.json"
        write_json(path, build_profile(train, numeric, categorical, bins=self.spec.drift.profile_bins))
        return str(path)
