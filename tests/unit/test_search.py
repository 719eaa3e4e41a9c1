"""Search decisions (core/search.py): trials planned, folds cut, the best picked, failures reported."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from mlops_pack.core.search import (
    FAILED,
    OK,
    TIMEOUT,
    SearchFailed,
    estimator_params,
    fold_indices,
    pick_best,
    planned_trials,
    random_points,
    run_with_timeout,
    time_folds,
)
from mlops_pack.core.spec import SpecError, load_spec

from tests.support.specs import write_spec

MODEL = "  window_partitions: 5\n"


def spec_with(tmp_path, search: str, **more):
    return load_spec(write_spec(tmp_path, "http://127.0.0.1:9", **{MODEL: MODEL + "  search:\n" + search}, **more))


def test_a_grid_plans_every_combination_in_a_stable_order(tmp_path):
    spec = spec_with(tmp_path, "    method: grid\n    space: {max_iter: [10, 30], learning_rate: [0.05, 0.1, 0.2]}\n")
    trials = planned_trials(spec.model.search)
    assert [t["slot"] for t in trials] == list(range(6))
    assert trials[0]["params"] == {"learning_rate": 0.05, "max_iter": 10}
    assert trials[-1]["params"] == {"learning_rate": 0.2, "max_iter": 30}


def test_random_draws_are_seeded_and_stay_in_their_ranges(tmp_path):
    search = ("    method: random\n    max_trials: 12\n    seed: 3\n    space:\n      max_iter: {low: 10, high: 200, "
              "integer: true}\n      learning_rate: {low: 0.001, high: 0.5, log: true}\n      l2_regularization: "
              "[0.0, 1.0]\n")
    spec = spec_with(tmp_path, search).model.search
    first, again = planned_trials(spec), planned_trials(spec)
    assert first == again and len(first) == 12
    for trial in first:
        p = trial["params"]
        assert isinstance(p["max_iter"], int) and 10 <= p["max_iter"] <= 200
        assert 0.001 <= p["learning_rate"] <= 0.5 and p["l2_regularization"] in (0.0, 1.0)
    assert random_points(dict(spec.space), 12, seed=4) != [t["params"] for t in first]


def test_tpe_trials_ask_the_study_for_their_params(tmp_path):
    spec = spec_with(tmp_path, "    method: tpe\n    max_trials: 4\n    space: {max_iter: {low: 10, high: 50}}\n")
    assert planned_trials(spec.model.search) == [{"slot": i, "params": None} for i in range(4)]


@pytest.mark.parametrize(("search", "message"), [
    ("    space: {max_iter: {low: 10, high: 50}}\n", "model.search.space.max_iter: a grid search needs a list"),
    ("    max_trials: 3\n    space: {max_iter: [1, 2], learning_rate: [0.1, 0.2]}\n",
     "the grid has 4 combinations, more than max_trials 3"),
    ("    method: random\n    space: {learning_rate: {low: 0, high: 1, log: true}}\n", "a log range needs low > 0"),
    ("    metric: accuracy\n    space: {max_iter: [1, 2]}\n",
     "model.search.metric: 'accuracy' measures a classification model but model.task is 'regression'"),
    ("    method: bayes\n    space: {max_iter: [1, 2]}\n", "model.search.method: Input should be 'grid', 'random'"),
])
def test_a_bad_search_is_refused_naming_the_field(tmp_path, search, message):
    with pytest.raises(SpecError) as refused:
        spec_with(tmp_path, search)
    assert message in str(refused.value)


def test_time_folds_never_train_on_a_row_newer_than_one_they_score():
    days = np.array([f"2026-11-0{d}" for d in (5, 1, 3, 2, 2, 4, 1, 3, 5, 4, 2, 1, 3, 3, 4, 5, 1, 2)], dtype=object)
    folds = time_folds(days, 3)
    assert len(folds) == 3
    seen = set()
    for train, valid in folds:
        assert days[train].max() < days[valid].min()  # strictly older: a day's rows sit on one side
        assert not set(train) & set(valid)
        seen |= set(valid)
    assert len(folds[0][0]) < len(folds[1][0]) < len(folds[2][0])  # expanding window
    assert days[sorted(set(range(len(days))) - seen)].max() < days[sorted(seen)].min()


def test_one_days_rows_are_cut_in_their_stored_order():
    day = np.array(["2026-11-01"] * 20, dtype=object)
    folds = time_folds(day, 3)
    assert [(len(t), len(v)) for t, v in folds] == [(5, 5), (10, 5), (15, 5)]
    assert all(t.max() < v.min() for t, v in folds)  # stable: earlier stored rows train, later ones score
    with pytest.raises(SearchFailed, match="3 training rows are too few for 3 time-ordered folds"):
        time_folds(day[:3], 3)


def test_fold_kind_follows_the_spec(tmp_path):
    spec = spec_with(tmp_path, "    space: {max_iter: [1]}\n")
    frame = pd.DataFrame({"listed_on": [f"2026-11-{d:02d}" for d in np.repeat(np.arange(1, 11), 6)][::-1],
                          "price": np.arange(60.0)})
    for train, valid in fold_indices(frame, spec.model, 3, seed=0):  # order_by: listed_on -> time folds
        assert frame["listed_on"].iloc[train].max() < frame["listed_on"].iloc[valid].min()
    unordered = spec.model.model_copy(update={"order_by": None})
    folds = fold_indices(frame, unordered, 3, seed=0)  # shuffled k-fold: every row scored once
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(60))
    classes = frame.assign(kind=["a", "a", "b"] * 20)
    classifier = unordered.model_copy(update={"task": "classification", "target": "kind"})
    for _, valid in fold_indices(classes, classifier, 4, seed=0):  # stratified: 2:1 in every fold
        counts = classes["kind"].iloc[valid].value_counts()
        assert counts["a"] == 2 * counts["b"]


def test_space_names_map_to_the_models_parameters():
    available = ["model", "model__max_iter", "preprocess", "preprocess__numeric__impute__strategy"]
    assert estimator_params(["max_iter", "preprocess__numeric__impute__strategy"], available) == {
        "max_iter": "model__max_iter", "preprocess__numeric__impute__strategy": "preprocess__numeric__impute__strategy"}
    with pytest.raises(SearchFailed, match=r"\['depth'\] are not parameters of the model"):
        estimator_params(["depth"], available)


def test_the_best_trial_follows_the_metric_direction_and_failures_are_named():
    results = [{"slot": 0, "params": {"a": 1}, "status": OK, "score": 3.0},
               {"slot": 1, "params": {"a": 2}, "status": FAILED, "score": None, "error": "ValueError: no"},
               {"slot": 2, "params": {"a": 3}, "status": OK, "score": 2.0},
               {"slot": 3, "params": {"a": 4}, "status": OK, "score": 2.0}]
    assert pick_best(results, higher_is_better=False)["slot"] == 2  # rmse: lowest, the first among equals
    assert pick_best(results, higher_is_better=True)["slot"] == 0
    failed = [{**r, "status": FAILED if r["slot"] % 2 else TIMEOUT, "score": None,
               "error": f"reason {r['slot']}"} for r in results]
    with pytest.raises(SearchFailed) as refused:
        pick_best(failed, higher_is_better=True)
    assert "all 4 search trials failed" in str(refused.value)
    assert "trial 1 {'a': 2}: failed: reason 1" in str(refused.value) and "timeout: reason 2" in str(refused.value)


def test_a_trial_past_its_time_or_failing_is_recorded_not_raised():
    assert run_with_timeout(lambda: 7, 5) == (OK, 7)
    status, error = run_with_timeout(lambda: 1 / 0, 5)
    assert status == FAILED and error == "ZeroDivisionError: division by zero"
    status, error = run_with_timeout(lambda: time.sleep(1), 0.05)
    assert status == TIMEOUT and "timed out after 0.05 s" in error


def test_the_study_keeps_finished_trials_for_a_rerun_and_tpe_asks_within_the_space(tmp_path):
    import optuna
    from mlops_pack.core.search import distributions, finished_trial, open_study

    search = ("    method: tpe\n    max_trials: 4\n    space:\n      max_iter: {low: 10, high: 50, integer: true}\n"
              "      learning_rate: {low: 0.01, high: 0.3, log: true}\n      l2_regularization: [0.0, 1.0]\n")
    space = distributions(dict(spec_with(tmp_path, search).model.search.space))
    url = f"sqlite:///{tmp_path / 'search.db'}"
    study = open_study(url, "listings-abc", direction="lower", seed=0, create=True)
    asked = study.ask(space)
    assert 10 <= asked.params["max_iter"] <= 50 and isinstance(asked.params["max_iter"], int)
    assert 0.01 <= asked.params["learning_rate"] <= 0.3 and asked.params["l2_regularization"] in (0.0, 1.0)
    asked.set_user_attr("slot", 0)
    study.tell(asked, 12.5)
    failed = study.ask(space)
    failed.set_user_attr("slot", 1)
    study.tell(failed, None, state=optuna.trial.TrialState.FAIL)
    again = open_study(url, "listings-abc", direction="lower", seed=0)  # another worker, a later run
    assert finished_trial(again, 0) == {"slot": 0, "params": asked.params, "score": 12.5, "status": "ok", "error": "",
                                        "seconds": None, "reused": True, "fold_scores": []}
    assert finished_trial(again, 1) is None  # a failed trial runs again


def test_tpe_trials_opening_the_study_apart_draw_different_params_repeatably(tmp_path):
    """Each mapped trial opens the study in its own process: with one seed for all, every startup trial
    drew the same params (found by the DAG test); seeded per slot they differ, and a re-run draws the same."""
    from mlops_pack.core.search import distributions, open_study, startup_trials, trial_seed

    space = distributions(dict(spec_with(tmp_path, "    method: tpe\n    max_trials: 4\n    space:\n"
                                         "      max_iter: {low: 10, high: 500, integer: true}\n"
                                         "      learning_rate: {low: 0.01, high: 0.3, log: true}\n").model.search.space))

    def draws(url: str) -> list[dict]:
        open_study(url, "s", direction="lower", seed=0, create=True)
        return [open_study(url, "s", direction="lower", seed=trial_seed(0, slot)).ask(space).params for slot in range(4)]

    first = draws(f"sqlite:///{tmp_path / 'a.db'}")
    assert len({tuple(sorted(p.items())) for p in first}) == 4
    assert draws(f"sqlite:///{tmp_path / 'b.db'}") == first
    assert (startup_trials(4), startup_trials(16), startup_trials(300)) == (2, 5, 10)


def test_a_versions_search_tags_read_back_as_its_promotion_records_search():
    from mlops_pack.core.search import search_record, version_description, version_tags

    plan = {"parent_run_id": "abc", "experiment_id": "7", "study": "shop-1", "method": "tpe", "metric": "rmse"}
    results = [{"slot": 0, "status": "ok", "score": 3.5, "params": {"max_iter": 40}},
               {"slot": 1, "status": "failed", "score": None, "params": {"max_iter": 7}}]
    record = search_record(version_tags(plan, results[0], results))
    assert record == {"run_id": "abc", "experiment_id": "7", "study": "shop-1", "method": "tpe", "metric": "rmse",
                      "trials": 2, "failed": 1, "cv_score": 3.5, "best_params": {"max_iter": 40}}
    assert search_record({"retrain_evidence": "schedule"}) is None  # trained without a search
    assert "[abc](#/experiments/7/runs/abc)" in version_description(record) and "max_iter=40" in version_description(record)
    assert search_record({"search_run_id": "x", "search_trials": "many", "search_best_params": "{bad"})["trials"] == "many"
