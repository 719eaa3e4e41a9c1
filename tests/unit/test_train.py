from __future__ import annotations

import pandas as pd
import pytest
from mlops_pack.core.spec import load_spec
from mlops_pack.core.train import TrainingError, fit

from tests.support.specs import write_spec


@pytest.fixture
def frame():
    from demo_site.generator import SiteState, day_records

    return pd.concat([pd.DataFrame(day_records(SiteState(day=d, records_per_day=300))) for d in (1, 2)])


def test_time_ordered_holdout_is_the_newest_rows(tmp_path, frame):
    spec = load_spec(write_spec(tmp_path, "http://127.0.0.1:9"))
    trained = fit(frame, spec.model)
    assert trained.train["listed_on"].max() <= trained.holdout["listed_on"].min()
    assert len(trained.holdout) == 120 and trained.metrics["r2"] > 0.5


def test_a_search_result_is_refit_on_the_whole_training_set(tmp_path, frame):
    from mlops_pack.core.train import fit_split, split_window

    spec = load_spec(write_spec(tmp_path, "http://127.0.0.1:9"))
    train, holdout = split_window(frame, spec.model)
    search = {"kind": "grid", "best_params": {"max_iter": 20, "preprocess__numeric__impute__strategy": "mean"},
              "cv_score": 1.0, "candidates": 2}
    trained = fit_split(train, holdout, spec.model, search=search)
    assert trained.pipeline.named_steps["model"].max_iter == 20
    assert trained.pipeline.get_params()["preprocess__numeric__impute__strategy"] == "mean"
    assert trained.pipeline.named_steps["model"].n_iter_ == 20 and len(trained.train) == len(train)


def test_missing_columns_are_named(tmp_path, frame):
    spec = load_spec(write_spec(tmp_path, "http://127.0.0.1:9"))
    with pytest.raises(TrainingError, match=r"lacks column\(s\) \['area_m2'\]"):
        fit(frame.drop(columns=["area_m2"]), spec.model)


def test_window_is_deduplicated_by_key_and_holdout_shares_no_key(tmp_path, frame):
    spec = load_spec(write_spec(tmp_path, "http://127.0.0.1:9"))
    twice = pd.concat([frame, frame], ignore_index=True)  # the same day ingested twice
    trained = fit(twice, spec.model, key="listing_id")
    assert len(trained.train) + len(trained.holdout) == frame["listing_id"].nunique() == 600
    assert not set(trained.train["listing_id"]) & set(trained.holdout["listing_id"])


def test_a_window_without_keys_is_refused_when_a_key_is_named(tmp_path, frame):
    spec = load_spec(write_spec(tmp_path, "http://127.0.0.1:9"))
    with pytest.raises(TrainingError, match="record key 'nope'"):
        fit(frame, spec.model, key="nope")
