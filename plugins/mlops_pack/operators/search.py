"""Hyperparameter search as Airflow tasks: a plan, trials as mapped tasks on the training queue, and the
train task refitting the best (operators/train.py). Decisions live in core/search.py.

    plan_search  ->  trial[0..n] (mapped, ``model.search.parallelism`` at once)  ->  train  ->  promote ...

The plan applies the retrain policy, splits the window into training and holdout sets (written, as
without a search), opens the search's Optuna study (``[mlops] search_storage``) and an MLflow parent run.
Each trial reads the training set only, cross-validates one parameter set, records it in the study and
as an MLflow child run, and returns its result; a trial that fails or times out is recorded and
returns, so the search goes on. A trial whose slot already finished in the same study (a re-run of the
same search on the same rows with the same code) is reused, not run again.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from mlops_pack.links import MlflowRunLink
from mlops_pack.operators.base import MlflowOperator, PipelineOperator
from mlops_pack.operators.train import MlflowTrainOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

PARENT_TAG = "mlflow.parentRunId"  # MLflow nests a run under this parent in its UI


class SearchPlanOperator(MlflowTrainOperator):
    """Prepare ``model.search``: the training window (retrain policy, split, training sets written), the
    Optuna study and the MLflow parent run. Returns the trials (``[{"slot", "params"}]``, params None for
    TPE) for the mapped trial task; the plan (small JSON) is XCom ``plan``.

    :param window_partitions: override of ``model.window_partitions`` (templated).
    """

    ui_color = "#f3efe0"
    operator_extra_links = (MlflowRunLink(),)

    def execute(self, context: Context) -> list[dict[str, Any]]:  # type: ignore[override]
        from mlops_pack import settings
        from mlops_pack.core.search import open_study, planned_trials, study_name
        from mlops_pack.core.train import build_pipeline, code_identity, split_window, with_params

        spec, search = self.spec, self.spec.model.search
        if search is None:
            raise ValueError(f"{self.spec_path}: model.search is not set; this DAG needs re-parsing")
        attempt = self._attempt(context)
        self._abandon_stale(attempt)
        keys, decision, frame, partitions = self._window(context)
        train, holdout = split_window(frame, spec.model, spec.source.key)
        trials = planned_trials(search)
        # The space must name parameters the model has: refuse now, not in every trial.
        model = build_pipeline(spec.model, spec.code_dirs)
        for trial in trials[:1]:
            with_params(model, trial["params"] or {name: _any_value(dim) for name, dim in search.space.items()})
        written = self._write_training_set(keys, train, holdout)
        metric, direction = spec.search_metric, _direction(spec)
        name = study_name(spec.name, search.model_dump(), written["train"]["version"], spec.model.code,
                          code_identity(spec.model), spec.model.params, spec.model.features.all, metric)
        open_study(settings.search_storage(), name, direction=direction, seed=search.seed, create=True)
        experiment_id = self.mlflow.experiment_id(spec.name)
        parent = self.mlflow.client.create_run(experiment_id, run_name=f"search {name}", tags={
            **attempt.tags(), "pipeline": spec.name, "search.study": name, "search.method": search.method,
            "data_version": written["train"]["version"], "training_set": written["key"]})
        self.mlflow.client.log_batch(parent.info.run_id, params=_params({
            "search.method": search.method, "search.metric": metric, "search.cv": search.cv,
            "search.max_trials": search.max_trials, "search.parallelism": search.parallelism,
            "search.space": search.model_dump(mode="json")["space"], "train_rows": len(train)}))
        self.log.info("Search %s (%s, %d trials, %d-fold CV on %d training rows, metric %s, %s is better); "
                      "parent run %s", name, search.method, len(trials), search.cv, len(train), metric, direction,
                      parent.info.run_id)
        context["ti"].xcom_push(key="mlflow_run", value={"experiment_id": experiment_id,
                                                         "run_id": parent.info.run_id})
        context["ti"].xcom_push(key="plan", value={"study": name, "method": search.method, "metric": metric, "direction": direction,
                "parent_run_id": parent.info.run_id, "experiment_id": experiment_id, "keys": keys,
                "partitions": [{k: m[k] for k in ("partition", "version", "rows", "folder")} for m in partitions],
                "decision": {"reason": decision.reason, "evidence": list(decision.evidence)},
                "training_set": written["key"], "train_folder": written["train_folder"],
                "holdout_folder": written["holdout_folder"], "train_manifest": written["train"],
                "holdout_manifest": written["holdout"], "profile_uri": written["profile_uri"]})
        return trials  # the return value: Airflow maps only over a task's return value


class SearchTrialOperator(MlflowOperator):
    """One search trial (mapped over the plan's ``trials``): cross-validate one parameter set on the
    training set, record it in the study and as an MLflow child run of the search. Never fails for the
    trial's own error or timeout: it returns ``{"slot", "params", "score", "status", "error", ...}``.

    :param plan: the plan task's result (templated; an XComArg).
    :param trial: ``{"slot", "params"}`` from the plan (templated; mapped).
    """

    template_fields = (*PipelineOperator.template_fields, "plan", "trial")
    ui_color = "#f3efe0"

    def __init__(self, *, plan: Any, trial: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.plan = plan
        self.trial = trial

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_pack import settings
        from mlops_pack.core.search import finished_trial, open_study, trial_seed
        from mlops_pack.hooks.mlflow_attempts import abandon_stale_attempts

        spec, plan, trial = self.spec, dict(self.plan), dict(self.trial)
        search = spec.model.search
        attempt = MlflowTrainOperator._attempt(context)
        abandon_stale_attempts(self.mlflow, spec.name, attempt)
        study = open_study(settings.search_storage(), plan["study"], direction=plan["direction"],
                           seed=trial_seed(search.seed, trial["slot"]), max_trials=search.max_trials)
        result = finished_trial(study, trial["slot"])
        if result is None:
            result = self._run(study, trial, plan)
        else:
            self.log.info("Trial %s finished in an earlier run of study %s: reused (%s = %.6g)", trial["slot"],
                          plan["study"], plan["metric"], result["score"])
        result["run_id"] = self._child_run(plan, result, attempt.tags())
        self.log.info("Trial %s %s: %s %s (%s)", result["slot"], result["params"], result["status"],
                      result["score"], result["error"] or "no error")
        return result

    def _run(self, study: Any, trial: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
        import optuna

        from mlops_pack.core.lineage import storage_dataset
        from mlops_pack.core.search import OK, cv_score, distributions, fold_indices, run_with_timeout
        from mlops_pack.core.storage import read_partition
        from mlops_pack.core.train import build_pipeline, with_params

        spec, search = self.spec, self.spec.model.search
        space = distributions(dict(search.space))
        asked = study.ask(space) if trial["params"] is None else None  # TPE: learns from the finished trials
        params = dict(asked.params) if asked is not None else dict(trial["params"])
        # The training set only: the holdout is another file, which no trial reads.
        frame = read_partition(self.storage.path(plan["train_folder"]))
        self.lineage.read(storage_dataset(str(self.storage.path(plan["train_folder"]))))
        started = time.monotonic()

        def work() -> list[float]:
            folds = fold_indices(frame, spec.model, search.cv, search.seed)
            return cv_score(lambda: with_params(build_pipeline(spec.model, spec.code_dirs), params), frame,
                            spec.model, plan["metric"], folds)

        status, outcome = run_with_timeout(work, search.trial_timeout_seconds)
        seconds = round(time.monotonic() - started, 3)
        fold_scores = outcome if status == OK else []
        score = float(sum(fold_scores) / len(fold_scores)) if fold_scores else None
        attrs = {"slot": trial["slot"], "seconds": seconds, "fold_scores": fold_scores,
                 "error": "" if status == OK else str(outcome)[:2000], "status": status}
        state = optuna.trial.TrialState.COMPLETE if status == OK else optuna.trial.TrialState.FAIL
        if asked is not None:
            for key, value in attrs.items():
                asked.set_user_attr(key, value)
            study.tell(asked, score if status == OK else None, state=state)
        else:
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions={k: space[k] for k in params}, value=score, state=state,
                user_attrs=attrs))
        return {"slot": trial["slot"], "params": params, "score": score, "status": status,
                "error": attrs["error"], "seconds": seconds, "reused": False, "fold_scores": fold_scores}

    def _child_run(self, plan: dict[str, Any], result: dict[str, Any], attempt_tags: dict[str, str]) -> str:
        from mlops_pack.core.search import OK

        client = self.mlflow.client
        run = client.create_run(plan["experiment_id"], run_name=f"trial {result['slot']}", tags={
            **attempt_tags, PARENT_TAG: plan["parent_run_id"], "pipeline": self.spec.name,
            "search.study": plan["study"], "search.slot": str(result["slot"]), "search.status": result["status"],
            "search.reused": str(bool(result["reused"])).lower(), "search.error": result["error"][:4000],
            "search.train_folder": plan["train_folder"]})
        metrics = {f"cv_{plan['metric']}": result["score"]} if result["score"] is not None else {}
        metrics |= {f"cv_{plan['metric']}_fold{i}": v for i, v in enumerate(result.get("fold_scores") or [])}
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        client.log_batch(run.info.run_id, params=_params(result["params"]),
                         metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        client.set_terminated(run.info.run_id, status="FINISHED" if result["status"] == OK else "FAILED")
        return run.info.run_id


def trial_timeout(spec: Any) -> dt.timedelta:
    """The mapped trial task's execution_timeout: the trial's own timeout plus time to read and record."""
    return dt.timedelta(seconds=spec.model.search.trial_timeout_seconds + 300)


def _direction(spec: Any) -> str:
    from mlops_pack.core.metrics import METRICS

    return METRICS[spec.search_metric].direction


def _any_value(dim: Any) -> Any:
    return dim[0] if isinstance(dim, list) else (int(dim.low) if dim.integer else dim.low)


def _params(values: dict[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(str(k), str(v)[:6000]) for k, v in values.items()]
