"""Hyperparameter search decisions (``model.search``): which trials, which folds, which trial won.
Plain functions, no Airflow, no MLflow; Optuna only inside the functions that need it.

The train DAG runs each trial as a mapped task (operators/search.py). Every trial is scored by
cross-validation on the training rows only (the holdout is another file the trials never read):
time-ordered folds when ``model.order_by`` is set (every training row of a fold is older than every row
it is scored on, ties kept on one side), stratified folds for a classifier, shuffled k-fold otherwise.
The trials' ledger is an Optuna study in a SQL store the workers share; its name is fixed by what the
search depends on (``study_name``), so a re-run of the same search finds its finished trials there.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from typing import TYPE_CHECKING, Any

from mlops_pack.core.errors import MlopsError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pandas as pd

    from mlops_pack.core.spec import ModelSpec, SearchSpec

OK, FAILED, TIMEOUT = "ok", "failed", "timeout"


class SearchFailed(MlopsError, RuntimeError):
    """No trial of a search produced a score; the message lists each trial's reason."""


def grid_points(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the listed values, parameters in name order, values in the order given."""
    names = sorted(space)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(space[n] for n in names))]


def random_points(space: dict[str, Any], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` seeded draws: a list is a choice; a range ``{low, high, log, integer}`` a uniform draw
    (of the log with ``log``), rounded with ``integer``."""
    import math

    rng = random.Random(seed)
    points = []
    for _ in range(count):
        point = {}
        for name in sorted(space):
            dim = space[name]
            if isinstance(dim, list):
                point[name] = rng.choice(dim)
                continue
            low, high = (math.log(dim.low), math.log(dim.high)) if dim.log else (dim.low, dim.high)
            value = rng.uniform(low, high)
            value = math.exp(value) if dim.log else value
            point[name] = int(round(value)) if dim.integer else value
        points.append(point)
    return points


def planned_trials(search: SearchSpec) -> list[dict[str, Any]]:
    """The trials of ``search`` as ``[{"slot": i, "params": {...}}]``; TPE's params are None (each trial
    asks the study for them when it starts, after what finished before it)."""
    space = dict(search.space)
    if search.method == "grid":
        points = grid_points(space)[:search.max_trials]
    elif search.method == "random":
        points = random_points(space, search.max_trials, search.seed)
    else:
        points = [None] * search.max_trials
    return [{"slot": i, "params": p} for i, p in enumerate(points)]


def distributions(space: dict[str, Any]) -> dict[str, Any]:
    """Optuna distributions of the space (lists: categorical; ranges: float or int, log or not)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, dim in space.items():
        if isinstance(dim, list):
            out[name] = CategoricalDistribution(dim)
        elif dim.integer:
            out[name] = IntDistribution(int(dim.low), int(dim.high), log=dim.log)
        else:
            out[name] = FloatDistribution(dim.low, dim.high, log=dim.log)
    return out


def trial_seed(seed: int, slot: int) -> int:
    """The TPE sampler's seed in trial ``slot``: each trial opens the study in its own process, so one seed
    for all would draw the same startup params in every trial; per slot they differ and stay repeatable."""
    return (seed * 7919 + slot) % 2**32


def startup_trials(max_trials: int) -> int:
    """Random trials before TPE models the finished ones: Optuna's 10, but a third of a smaller budget
    (at least 2), so a short search still learns from what finished."""
    return max(2, min(10, max_trials // 3))


def open_study(storage_url: str, name: str, *, direction: str, seed: int, create: bool = False,
               max_trials: int = 30) -> Any:
    """The Optuna study ``name`` in the SQL store ``storage_url`` (TPE sampler seeded with ``seed``, its
    startup trials from ``max_trials``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine = {"connect_args": {"timeout": 60}} if storage_url.startswith("sqlite") else {}
    storage = optuna.storages.RDBStorage(storage_url, engine_kwargs=engine)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(max_trials))
    if create:
        return optuna.create_study(storage=storage, study_name=name, load_if_exists=True, sampler=sampler,
                                   direction="maximize" if direction == "higher" else "minimize")
    return optuna.load_study(storage=storage, study_name=name, sampler=sampler)


def finished_trial(study: Any, slot: int) -> dict[str, Any] | None:
    """The result a finished (COMPLETE) trial of ``slot`` left in ``study``, or None."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get("slot") == slot:
            return {"slot": slot, "params": dict(trial.params), "score": float(trial.value), "status": OK,
                    "error": "", "seconds": trial.user_attrs.get("seconds"), "reused": True,
                    "fold_scores": trial.user_attrs.get("fold_scores", [])}
    return None


def study_name(pipeline: str, *parts: Any) -> str:
    """``<pipeline>-<hash>``: the same search on the same training rows with the same code is one study."""
    import hashlib

    blob = json.dumps(parts, sort_keys=True, default=str)
    return f"{pipeline}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def estimator_params(space_names: list[str], available: list[str]) -> dict[str, str]:
    """Space name -> the ``set_params`` name it sets: the name itself when the model has it, else the
    pack's pipeline step ``model__<name>``; SearchFailed names the unknown ones and what exists."""
    found, unknown = {}, []
    for name in space_names:
        match = name if name in available else f"model__{name}" if f"model__{name}" in available else None
        if match is None:
            unknown.append(name)
        else:
            found[name] = match
    if unknown:
        shown = sorted(p for p in available if "__" not in p or p.startswith("model__"))[:40]
        raise SearchFailed(f"model.search.space: {unknown} are not parameters of the model; it has {shown}")
    return found


def fold_indices(frame: pd.DataFrame, model: ModelSpec, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) positions per fold: time-ordered with ``order_by``, stratified for a
    classifier, else shuffled k-fold."""
    if model.order_by:
        return time_folds(frame[model.order_by].to_numpy(), folds)
    from sklearn.model_selection import KFold, StratifiedKFold

    if model.task == "classification":
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(frame, frame[model.target]))
    return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(frame))


def time_folds(order: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds: rows stably sorted by ``order`` in ``folds + 1`` blocks; fold j trains on the
    blocks before block j+1 and is scored on it, so no training row is newer than a row it is scored on.
    A block edge inside a run of equal ``order`` values moves past the run (no training row as new as a
    scored one) unless that would empty the next block: then, as in the holdout split, equal values are
    cut in their stored order (one day of rows still gives ``folds`` folds)."""
    import numpy as np

    ranked = np.argsort(order, kind="stable")
    values = order[ranked]
    n = len(values)
    if n < folds + 1:
        raise SearchFailed(f"{n} training rows are too few for {folds} time-ordered folds")
    nominal = [int(round(n * j / (folds + 1))) for j in range(1, folds + 1)]
    edges = [0]
    for j, edge in enumerate(nominal):
        moved = edge
        while 0 < moved < n and values[moved] == values[moved - 1]:
            moved += 1
        edges.append(moved if moved < (nominal[j + 1] if j + 1 < len(nominal) else n) else edge)
    edges.append(n)
    return [(ranked[:edges[j]], ranked[edges[j]:edges[j + 1]]) for j in range(1, len(edges) - 1)]


def cv_score(make_model: Callable[[], Any], frame: pd.DataFrame, model: ModelSpec, metric: str,
             folds: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """``metric`` of a fresh ``make_model()`` fitted on each fold's training rows, on its validation rows."""
    from mlops_pack.core.metrics import METRICS, compute, predictions_of

    x, y = frame[model.features.all], frame[model.target].to_numpy()
    scores = []
    for train_rows, valid_rows in folds:
        estimator = make_model()
        estimator.fit(x.iloc[train_rows], y[train_rows])
        predicted = predictions_of(estimator, x.iloc[valid_rows], model.task, METRICS[metric].needs == "proba")
        scores.append(float(compute(metric, y[valid_rows], predicted)))
    return scores


def run_with_timeout(work: Callable[[], Any], seconds: float) -> tuple[str, Any]:
    """``(OK, result)``, ``(FAILED, "Type: message")`` or ``(TIMEOUT, "...")`` after ``seconds``.

    The work runs on a daemon thread: a trial past its time is recorded and the task returns; the thread
    ends with the task's process (the mapped task's execution_timeout is the hard stop)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = work()
        except Exception as exc:  # noqa: BLE001 - a trial's failure is recorded, not raised
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=target, daemon=True, name="search-trial")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return TIMEOUT, f"timed out after {seconds:g} s (model.search.trial_timeout_seconds)"
    if "error" in outcome:
        return FAILED, outcome["error"]
    return OK, outcome["result"]


def pick_best(results: list[dict[str, Any]], higher_is_better: bool) -> dict[str, Any]:
    """The trial with the best ``score`` among those that finished (the lowest slot among equals);
    SearchFailed listing every trial's reason when none did."""
    finished = [r for r in results if r.get("status") == OK and r.get("score") is not None]
    if not finished:
        reasons = "; ".join(f"trial {r.get('slot')} {r.get('params')}: {r.get('status')}: {r.get('error')}"
                            for r in sorted(results, key=lambda r: r.get("slot", 0)))
        raise SearchFailed(f"all {len(results)} search trials failed: {reasons or 'no trial ran'}")
    sign = -1 if higher_is_better else 1
    return min(finished, key=lambda r: (sign * r["score"], r["slot"]))


def trials_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per trial: slot, status, score, seconds, reused, error, then one column per parameter."""
    import pandas as pd

    rows = [{"slot": r.get("slot"), "status": r.get("status"), "score": r.get("score"),
             "seconds": r.get("seconds"), "reused": bool(r.get("reused")), "error": r.get("error") or "",
             **{f"param.{k}": v for k, v in (r.get("params") or {}).items()}}
            for r in sorted(results, key=lambda r: r.get("slot", 0))]
    return pd.DataFrame(rows)


def version_tags(plan: dict[str, Any], best: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, str]:
    """The model version's tags naming the search it came from: its parent run (``search_run_id``, in
    ``search_experiment_id``), study, method, trial count, failed trials, metric, and the winning trial's
    params and cross-validated score. :func:`search_record` reads them back."""
    return {"search_run_id": plan["parent_run_id"], "search_experiment_id": str(plan["experiment_id"]),
            "search_study": plan["study"], "search_method": plan["method"], "search_metric": plan["metric"],
            "search_trials": str(len(results)), "search_failed_trials": str(sum(r.get("status") != OK for r in results)),
            "search_cv_score": repr(float(best["score"])), "search_best_slot": str(best["slot"]),
            "search_best_params": json.dumps(best["params"], sort_keys=True, default=str)}


def search_record(tags: dict[str, str]) -> dict[str, Any] | None:
    """What a promotion record says of the search a version came from (from :func:`version_tags`), or None
    for a version trained without one. Values a tag cannot parse as stay text (the page shows them)."""
    if not tags.get("search_run_id"):
        return None

    def number(text: str | None, kind: type) -> Any:
        try:
            return kind(text)
        except (TypeError, ValueError):
            return text

    try:
        params = json.loads(tags.get("search_best_params") or "{}")
    except ValueError:
        params = tags.get("search_best_params")
    return {"run_id": tags["search_run_id"], "experiment_id": tags.get("search_experiment_id"),
            "study": tags.get("search_study"), "method": tags.get("search_method"), "metric": tags.get("search_metric"),
            "trials": number(tags.get("search_trials"), int), "failed": number(tags.get("search_failed_trials"), int),
            "cv_score": number(tags.get("search_cv_score"), float), "best_params": params}


def version_description(record: dict[str, Any]) -> str:
    """The model version's description (Markdown): the search it came from, what won and a link to its
    parent run (a route of the MLflow UI the description is shown in, so it opens wherever MLflow is)."""
    params = ", ".join(f"{k}={v}" for k, v in sorted((record.get("best_params") or {}).items()))
    link = f"#/experiments/{record['experiment_id']}/runs/{record['run_id']}"
    return (f"Refit of the best trial of a {record['method']} search ({record['trials']} trials, "
            f"{record['failed']} failed): {params}; cross-validated {record['metric']} {record['cv_score']:.6g}. "
            f"Search run: [{record['run_id']}]({link}) (trials.json, trials.png).")
