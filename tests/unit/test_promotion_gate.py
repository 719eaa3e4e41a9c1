"""Gate decisions on constructed holdouts: clear win, win inside the noise, slice regression,
too-small holdout, first model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlops_pack.core.promotion.gate import judge
from mlops_pack.core.spec import PromotionSpec

RNG = np.random.default_rng(42)
N = 2000
Y = RNG.normal(100, 20, N)


def policy(**kwargs) -> PromotionSpec:
    base = {"metrics": {"rmse": {"min_relative_delta": 0.0}, "r2": {"min": 0.3}}, "min_holdout_rows": 200,
            "bootstrap_samples": 500}
    return PromotionSpec.model_validate({**base, **kwargs})


def noisy(scale: float, seed: int) -> np.ndarray:
    return Y + np.random.default_rng(seed).normal(0, scale, N)


def test_first_model_is_judged_on_value_thresholds_alone():
    result = judge(Y, noisy(5, 1), None, policy())
    assert result.promote and result.reason.startswith("first model")
    bad = judge(Y, noisy(40, 1), None, policy())  # r2 < 0 on this noise
    assert not bad.promote and "fails value thresholds: r2=" in bad.reason


def test_clear_win_promotes_with_an_interval_above_the_required_change():
    result = judge(Y, noisy(5, 1), noisy(10, 2), policy())
    assert result.promote, result.reason
    [interval] = result.intervals
    assert interval["metric"] == "rmse" and interval["low"] > 0
    assert interval["low"] <= interval["improvement"] <= interval["high"]
    # each model's own value on the same rows, with its interval: what the health page draws side by side
    assert interval["rows"] == N
    assert interval["challenger_ci"][0] <= interval["challenger"] <= interval["challenger_ci"][1]
    assert interval["champion_ci"][0] <= interval["champion"] <= interval["champion_ci"][1]
    assert interval["challenger_ci"][1] < interval["champion_ci"][0]  # rmse ~5 vs ~10: apart


def test_win_inside_the_noise_is_rejected_although_the_point_estimate_is_better():
    champion = noisy(10, 2)
    challenger = champion.copy()
    challenger[:20] = Y[:20]  # slightly better on 1% of rows: a better point estimate, not a real gain
    result = judge(Y, challenger, champion, policy(metrics={"rmse": {"min_relative_delta": 0.01}}))
    [interval] = result.intervals
    assert interval["improvement"] > 0
    assert not result.promote and result.reason.startswith("not better")
    assert interval["low"] <= interval["required"]


def test_required_change_must_be_cleared_by_the_interval_bound():
    result = judge(Y, noisy(9, 1), noisy(10, 2), policy(metrics={"rmse": {"min_delta": 5.0}}))
    assert not result.promote and "does not clear the required 5" in result.reason


def test_slice_regression_rejects_an_overall_winner():
    slices = pd.DataFrame({"city": np.where(np.arange(N) < 100, "Lyon", "Lille")})
    champion = noisy(10, 2)
    challenger = noisy(4, 1)
    challenger[:100] = Y[:100] + 15  # much worse in Lyon only, better elsewhere
    result = judge(Y, challenger, champion, policy(slices=["city"], slice_tolerance=0.05), slices=slices)
    assert not result.promote
    assert [s["slice"] for s in result.slices_failed] == ["city=Lyon"]
    assert "slice regression" in result.reason
    assert judge(Y, challenger, champion, policy()).promote  # without the slice rule it would win


def test_too_small_holdout_is_rejected():
    result = judge(Y[:50], noisy(5, 1)[:50], None, policy())
    assert not result.promote and "fewer than min_holdout_rows=200" in result.reason


@pytest.mark.parametrize("metric", ["mae", "r2"])
def test_other_metrics_and_directions(metric):
    result = judge(Y, noisy(5, 1), noisy(10, 2), policy(metrics={metric: {"min_delta": 0.0}}))
    assert result.promote and result.intervals[0]["metric"] == metric


SPEC_METRICS = {"regression": "rmse", "classification": "accuracy"}


@pytest.mark.parametrize(("task", "metric", "fits"), [
    ("regression", "roc_auc", False), ("regression", "accuracy", False), ("regression", "f1", False),
    ("classification", "rmse", False), ("classification", "mae", False), ("classification", "r2", False),
    ("regression", "mae", True), ("classification", "roc_auc", True), ("classification", "f1", True),
])
def test_spec_load_rejects_a_metric_that_does_not_fit_the_task_naming_the_field(tmp_path, task, metric, fits):
    from mlops_pack.core.spec import SpecError, load_spec

    from tests.support.specs import write_spec

    gate = f"    {metric}: {{min_delta: 0.0}}"
    path = write_spec(tmp_path, "http://127.0.0.1:9", **{
        "    rmse: {min_relative_delta: 0.0}": gate, "    r2: {min: 0.5}": "", "  task: regression": f"  task: {task}",
        "sklearn.ensemble.HistGradientBoostingRegressor":
            "sklearn.ensemble.HistGradientBoostingRegressor" if task == "regression"
            else "sklearn.ensemble.HistGradientBoostingClassifier"})
    if fits:
        assert list(load_spec(path).promotion.metrics) == [metric]
        return
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert f"promotion.metrics.{metric}:" in str(err.value) and f"model.task is '{task}'" in str(err.value)


def test_a_classifier_without_promotion_metrics_is_gated_on_accuracy():
    from mlops_pack.core.spec import PipelineSpec, load_spec

    from tests.support.env import REPO

    raw = load_spec(REPO / "include" / "pipelines" / "listings.yaml").model_dump(exclude={"promotion"})
    raw["model"]["task"] = "classification"
    assert list(PipelineSpec.model_validate(raw).promotion.metrics) == ["accuracy"]
    raw["promotion"] = {"min_holdout_rows": 10}
    spec = PipelineSpec.model_validate(raw)
    assert list(spec.promotion.metrics) == ["accuracy"] and spec.promotion.min_holdout_rows == 10


def _verdict(promote: bool, reason: str = "better: rmse ...") -> dict:
    return {"promote": promote, "reason": reason, "holdout_rows": 200, "challenger_metrics": {"rmse": 1.0},
            "champion_metrics": {"rmse": 2.0}, "intervals": [], "slices_failed": []}


def test_decision_record_promotes_only_what_the_gate_and_the_approver_accept():
    from mlops_pack.core.promotion.decision import decision_record

    won = decision_record(_verdict(True), version="3", champion="2", approved=True, approver="policy")
    assert (won["promote"], won["decision"], won["champion_after"]) == (True, "promoted", "3")
    vetoed = decision_record(_verdict(True), version="3", champion="2", approved=False, approver="ana")
    assert (vetoed["decision"], vetoed["champion_after"]) == ("rejected", "2")
    assert vetoed["reason"].startswith("rejected by ana in the approval step; gate said: better")
    lost = decision_record(_verdict(False, "not better: ..."), version="3", champion="2", approved=True,
                           approver="policy")
    assert (lost["decision"], lost["reason"]) == ("rejected", "not better: ...")
    again = decision_record(_verdict(True), version="3", champion="3", approved=True, approver="policy")
    assert not again["promote"] and again["reason"].startswith("already champion")


def test_rollback_refuses_what_never_was_champion():
    from mlops_pack.core.promotion.decision import rollback_refusal

    assert rollback_refusal("m", "2", "3", "promoted") is None
    assert rollback_refusal("m", "2", "3", "rolled_back") is None
    assert "no previous champion" in rollback_refusal("m", None, "3", None)
    assert "already champion" in rollback_refusal("m", "3", "3", "promoted")
    assert "never passed the promotion gate (decision='rejected')" in rollback_refusal("m", "4", "3", "rejected")
