from __future__ import annotations

from mlops_pack.core.promote import decide
from mlops_pack.core.spec import PromotionSpec

POLICY = PromotionSpec.model_validate({"metric": "rmse", "thresholds": {"r2": {"min": 0.5}},
                                       "min_relative_improvement": 0.01})


def test_first_model_is_judged_on_thresholds_alone():
    assert decide({"rmse": 10.0, "r2": 0.9}, None, POLICY).promote
    rejected = decide({"rmse": 10.0, "r2": 0.2}, None, POLICY)
    assert not rejected.promote and "r2=0.2 < min 0.5" in rejected.reason


def test_challenger_must_beat_champion_by_the_margin():
    assert decide({"rmse": 9.0, "r2": 0.9}, {"rmse": 10.0, "r2": 0.9}, POLICY).promote
    small = decide({"rmse": 9.95, "r2": 0.9}, {"rmse": 10.0, "r2": 0.9}, POLICY)
    assert not small.promote and "not better by more than 1.00%" in small.reason


def test_higher_is_better_metrics():
    policy = PromotionSpec.model_validate({"metric": "r2"})
    assert decide({"r2": 0.8}, {"r2": 0.7}, policy).promote
    assert not decide({"r2": 0.6}, {"r2": 0.7}, policy).promote
