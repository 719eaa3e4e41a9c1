"""The gate's clean holdout: rows either model trained on leave it, by record key, and the reasons stay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlops_pack.core.holdout import clean_holdout, refusal
from mlops_pack.core.promotion.gate import judge
from mlops_pack.core.spec import PromotionSpec

HOLDOUT = pd.Series([f"r{i:03d}" for i in range(100)])


def test_rows_the_champion_trained_on_are_removed_and_counted():
    champion_train = pd.Series([f"r{i:03d}" for i in range(0, 100, 4)] + ["elsewhere"])  # 25 holdout rows
    clean = clean_holdout(HOLDOUT, "id", {"challenger v2": pd.Series(["x1", "x2"]), "champion v1": champion_train})
    assert (clean.source_rows, clean.rows_used, clean.rows_removed) == (100, 75, 25)
    assert set(HOLDOUT[clean.keep]).isdisjoint(champion_train)
    assert clean.removed == [{"model": "champion v1", "rows": 25,
                              "examples": ["r000", "r004", "r008", "r012", "r016"]}]
    assert clean.describe() == "25 of 100 rows removed (25 champion v1 trained on)"
    assert clean.as_dict()["rows_used"] == 75 and clean.as_dict()["key"] == "id"


def test_a_row_both_models_trained_on_counts_for_each_and_leaves_once():
    clean = clean_holdout(HOLDOUT, "id", {"challenger v2": HOLDOUT[:10], "champion v1": HOLDOUT[5:20]})
    assert clean.rows_removed == 20 and clean.rows_used == 80
    assert [(r["model"], r["rows"]) for r in clean.removed] == [("challenger v2", 10), ("champion v1", 15)]


def test_keys_match_as_text_whatever_type_each_window_stored():
    clean = clean_holdout(pd.Series([1, 2, 3, 4]), "id", {"champion v1": pd.Series(["2", "4", None])})
    assert clean.keep.tolist() == [True, False, True, False]


def test_nothing_to_remove_keeps_every_row_and_says_so():
    clean = clean_holdout(HOLDOUT, "id", {"challenger v1": pd.Series(["other"])})
    assert clean.keep.all() and clean.removed == []
    assert clean.describe() == "none of 100 rows removed: neither model trained on any"
    assert refusal(clean, clean.rows_used, 50) is None


def test_too_few_clean_rows_refuses_naming_what_was_removed():
    clean = clean_holdout(HOLDOUT, "id", {"champion v1": HOLDOUT[:70]})
    reason = refusal(clean, clean.rows_used, 50)
    assert reason.startswith("clean holdout has 30 rows, fewer than min_holdout_rows=50: 70 of 100 rows removed "
                             "(70 champion v1 trained on)")
    assert refusal(None, 30, 50) == "holdout has 30 rows, fewer than min_holdout_rows=50"


def test_a_champion_with_unknown_training_rows_refuses():
    clean = clean_holdout(HOLDOUT, "id", {}, unknown={"champion v1": "no train_uri tag"})
    assert clean.keep.all()
    assert "champion v1: no train_uri tag" in refusal(clean, 100, 50)


@pytest.fixture
def policy() -> PromotionSpec:
    return PromotionSpec.model_validate({"metrics": {"rmse": {"min_relative_delta": 0.0}}, "min_holdout_rows": 50,
                                         "bootstrap_samples": 200})


def test_judge_refuses_an_emptied_holdout_and_carries_the_holdout_in_its_result(policy):
    clean = clean_holdout(HOLDOUT, "id", {"champion v1": HOLDOUT})
    result = judge(np.empty(0), np.empty(0), None, policy, holdout=clean)
    assert not result.promote and result.holdout_rows == 0 and result.challenger_metrics == {}
    assert result.reason.startswith("clean holdout has 0 rows")
    assert result.as_dict()["holdout"]["rows_removed"] == 100


def test_judge_decides_on_the_clean_rows_and_records_them(policy):
    clean = clean_holdout(HOLDOUT, "id", {"champion v1": HOLDOUT[:20]})
    y = np.random.default_rng(0).normal(100, 20, clean.rows_used)
    result = judge(y, y + 1, y + 10, policy, holdout=clean)
    assert result.promote and result.holdout_rows == 80
    assert result.holdout == clean.as_dict()
