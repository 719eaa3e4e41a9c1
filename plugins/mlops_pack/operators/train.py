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

    First it applies the spec's retrain policy (``retrain.triggers``, core/promotion/retrain.py) to what triggered the
    run: new validated data, a drift event, a decay (performance) event, the retrain cron or a manual
    run. A run the policy does not retrain on is skipped (with the reason), and so are its promote
    steps. A drift- or decay-triggered window always holds the partitions the event names; a drift
    event arriving when the champion was already trained on them does not retrain. The version is
    tagged ``data_partitions`` (its window) for that check, and ``retrain_evidence`` /
    ``retrain_reason`` with what made this run train (input drift, decay, schedule, new data...).

    With ``model.search`` (operators/search.py) the window, split and training sets come from the plan
    task (``search_plan``) and the model is the best of ``trials`` refit on the training set; the version
    is tagged ``search_run_id`` (the search's parent run, which holds ``search/trials.json`` and
    ``search/trials.png``), ``search_best_params``, the method, trial count, metric and CV score
    (core/search.py ``version_tags``), and its description links to the parent run.

    :param window_partitions: override of ``model.window_partitions`` (templated; e.g. from Params).
    :param search_plan: the search plan (XCom ``plan`` of ``plan_search``; templated), or None.
    :param trials: the mapped trials' results (templated), with ``search_plan``.
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``).
    """

    template_fields = (*PipelineOperator.template_fields, "window_partitions", "search_plan", "trials")
    ui_color = "#eef7e8"
    operator_extra_links = (MlflowRunLink(), MlflowModelVersionLink(),)

    def __init__(self, *, window_partitions: int | str | None = None, search_plan: Any = None, trials: Any = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.window_partitions = window_partitions
        self.search_plan = search_plan
        self.trials = trials

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack.core.train import fit

        if (context.get("params") or {}).get("judge_challenger"):
            return self._judge_again()
        attempt = self._attempt(context)
        # A try that died (killed worker, orphaned task) may have left a version and an open run: mark them
        # abandoned before anything else, so nothing below (the policy's look at `challenger`) trusts them.
        self._abandon_stale(attempt)
        if self.search_plan:
            return self._refit_best(context, attempt)
        keys, decision, frame, partitions = self._window(context)
        trained = fit(frame, self.spec.model, key=self.spec.source.key, gate_metrics=list(self.spec.promotion.metrics),
                      code_dirs=self.spec.code_dirs)
        self.log.info("Training window: %d partitions %s, %d rows, %d unique %s; train %d rows, holdout %d rows "
                      "(disjoint by key)", len(keys), keys, len(frame), frame[self.spec.source.key].nunique(),
                      self.spec.source.key, len(trained.train), len(trained.holdout))
        written = self._write_training_set(keys, trained.train, trained.holdout)
        return self._register(context, attempt, trained, keys, {"reason": decision.reason,
                                                                "evidence": list(decision.evidence)}, written,
                              partitions=partitions)

    def _window(self, context: Context) -> tuple[list[str], Any, Any, list[dict[str, Any]]]:
        """(partition keys, retrain decision, rows, the partitions' manifests) of this run's training window;
        skips as the policy says."""
        import pandas as pd

        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.promotion.retrain import training_window
        from mlops_pack.core.storage import list_partitions, read_partition

        window = int(self.window_partitions or self.spec.model.window_partitions)
        available = list_partitions(self.storage.area("validated"))
        if not available:
            raise ValueError(f"no validated partitions under {self.storage.area('validated')}: ingest data first")
        by_key = {m["partition"]: m for m in available}
        keys, decision = self._policy_allows(
            context, lambda drifted: training_window(list(by_key), window, drifted), set(by_key), window)
        partitions = [by_key[k] for k in keys]
        frame = pd.concat([read_partition(self.storage.path(m["folder"])) for m in partitions], ignore_index=True)
        self.lineage.read(*(storage_dataset(str(self.storage.path(m["folder"]))) for m in partitions))
        return keys, decision, frame, partitions

    def _write_training_set(self, keys: list[str], train: Any, holdout: Any) -> dict[str, Any]:
        """Train and holdout sets under ``training/<first>_to_<last>__<hash>/`` with the train set's profile."""
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.partitions import window_key
        from mlops_pack.core.storage import data_version, digest, write_partition

        # Named by the data it holds: the same window trained twice writes the same training set.
        key = window_key(keys, digest(data_version(train), data_version(holdout))[:8])
        folder = self.storage.partition("training", key)
        self.lineage.wrote(storage_dataset(str(folder / "train")), storage_dataset(str(folder / "holdout")))
        return {"key": key, "train": write_partition(folder / "train", train, key=key),
                "holdout": write_partition(folder / "holdout", holdout, key=key),
                "train_folder": str(folder / "train"), "holdout_folder": str(folder / "holdout"),
                "profile_uri": self._write_profile(folder / "train", train)}

    def _register(self, context: Context, attempt: Attempt, trained: Any, keys: list[str], decision: dict[str, Any],
                  written: dict[str, Any], version_tags: dict[str, Any] | None = None, *,
                  partitions: list[dict[str, Any]]) -> dict[str, Any]:
        """Log the run, register the version, tag it and hand ``challenger`` on; the task's result. The run
        gets the record ``mlops-pack reproduce`` re-trains from (core/reproduce.py: ``reproduce/inputs.json``)."""
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.reproduce import training_inputs

        inputs = training_inputs(self.spec, partitions, train_version=written["train"]["version"],
                                 holdout_version=written["holdout"]["version"], code=trained.code,
                                 search=trained.search)
        result = self.mlflow.log_training_run(
            self.spec, trained, train_manifest=written["train"], holdout_manifest=written["holdout"],
            tags={"airflow.dag_id": context["dag"].dag_id, "airflow.run_id": context["run_id"],
                  "data_partitions": ",".join(keys), "training_set": written["key"]},
            attempt=attempt, inputs=inputs,
        )
        result["retrain"] = decision
        fit_on = [storage_dataset(written[part]["folder"]) for part in ("train", "holdout")]
        self.lineage.wrote(self.version_dataset(result["version"]), derived_from=fit_on)
        self.mlflow.tag_version(self.spec.name, result["version"], {
            "profile_uri": written["profile_uri"], "data_partitions": ",".join(keys),
            "retrain_evidence": ", ".join(decision["evidence"]), "retrain_reason": decision["reason"][:4000],
            **(version_tags or {})})
        self._hand_on(attempt, result["version"])
        self.log.info("Registered %s version %s as challenger (run %s): %s", self.spec.name, result["version"],
                      result["run_id"], result["metrics"])
        context["ti"].xcom_push(key="mlflow_run", value={"experiment_id": result["experiment_id"],
                                                         "run_id": result["run_id"]})
        return result

    def _refit_best(self, context: Context, attempt: Attempt) -> dict[str, Any]:
        """The search's best trial refit on the whole training set of the plan, then registered as usual."""
        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.search import search_record, version_description, version_tags
        from mlops_pack.core.storage import read_partition
        from mlops_pack.core.train import fit_split

        plan = dict(self.search_plan)
        results = [dict(r) for r in (self.trials or []) if r]
        best = self._finish_search(plan, results)

        train = read_partition(self.storage.path(plan["train_folder"]))
        holdout = read_partition(self.storage.path(plan["holdout_folder"]))
        self.lineage.read(*(storage_dataset(str(self.storage.path(plan[f]))) for f in ("train_folder", "holdout_folder")))
        search = {"kind": plan["method"], "best_params": best["params"], "cv_score": best["score"],
                  "candidates": len(results), "failed": sum(r.get("status") != "ok" for r in results),
                  "metric": plan["metric"], "parent_run_id": plan["parent_run_id"]}
        trained = fit_split(train, holdout, self.spec.model, list(self.spec.promotion.metrics), self.spec.code_dirs,
                            search=search)
        self.log.info("Refit trial %s (%s %s = %.6g) on %d training rows", best["slot"], plan["metric"],
                      "cv mean", best["score"], len(train))
        written = {"key": plan["training_set"], "train": plan["train_manifest"], "holdout": plan["holdout_manifest"],
                   "profile_uri": plan["profile_uri"]}
        tags = version_tags(plan, best, results)
        result = self._register(context, attempt, trained, plan["keys"], plan["decision"], written, tags,
                                partitions=plan["partitions"])
        # The version links to its search in MLflow's UI too (the tags hold the same, for tools).
        self.mlflow.client.update_model_version(self.spec.name, result["version"],
                                                description=version_description(search_record(tags)))
        return result

    def _finish_search(self, plan: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
        """The best trial; the parent run gets the trials' table and figure and ends (FAILED, and
        SearchFailed with every trial's reason, when no trial finished)."""
        from airflow.sdk.exceptions import AirflowFailException

        from mlops_pack.core.search import SearchFailed, pick_best, trials_table

        client, parent = self.mlflow.client, plan["parent_run_id"]
        table = trials_table(results)
        client.log_table(parent, data=table, artifact_file="search/trials.json")
        self._log_search_figure(parent, table, plan["metric"])
        try:
            best = pick_best(results, plan["direction"] == "higher")
        except SearchFailed as exc:
            client.set_tag(parent, "search.error", str(exc)[:4000])
            client.set_terminated(parent, status="FAILED")
            raise AirflowFailException(str(exc)) from exc
        client.log_metric(parent, f"best_cv_{plan['metric']}", best["score"])
        client.log_param(parent, "search.best_slot", best["slot"])
        for name, value in best["params"].items():
            client.log_param(parent, f"search.best.{name}", value)
        client.set_terminated(parent, status="FINISHED")
        self.log.info("Search %s: %d trials, %d failed; best trial %s %s", plan["study"], len(results),
                      sum(r.get("status") != "ok" for r in results), best["slot"], best["params"])
        return best

    def _log_search_figure(self, run_id: str, table: Any, metric: str) -> None:
        """``search/trials.png``: each parameter against the trials' cross-validated score (scatter)."""
        from mlops_pack.core.plots import search_figure

        figure = search_figure(table, metric)
        if figure is not None:
            self.mlflow.client.log_figure(run_id, figure, "search/trials.png")

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
        from mlops_pack.hooks.mlflow_lock import promotion_lock

        with promotion_lock(self.mlflow, self.spec.name, attempt.label(), kind="challenger", version=version) as lease:
            self._abandon_stale(attempt)
            self._superseded_fails(lambda: lease.set_challenger(version))

    def _abandon_stale(self, attempt: Attempt) -> None:
        from mlops_pack.hooks.mlflow_attempts import abandon_stale_attempts

        self._superseded_fails(lambda: abandon_stale_attempts(self.mlflow, self.spec.name, attempt))

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
        from mlops_pack.core.promotion.retrain import decide, drifted_partitions
        from mlops_pack.tasks import event_partition_keys

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
        from mlops_pack.core.promotion.retrain import decayed_versions
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
