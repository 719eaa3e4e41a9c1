"""Gate decisions on constructed holdouts: clear win, win inside the noise, slice regression,
too-small holdout, first model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlops_pack.core.promote import judge
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
