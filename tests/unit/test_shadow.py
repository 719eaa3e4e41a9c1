"""core/shadow.py: champion vs challenger predictions on the same rows, and against labels that arrive later."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlops_pack.core.shadow import compare_predictions, later_labels


def batches(frame: pd.DataFrame, size: int) -> list[pa.RecordBatch]:
    return pa.Table.from_pandas(frame, preserve_index=False).to_batches(max_chunksize=size)


def test_regression_difference_and_errors_over_every_batch():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": [f"k{i}" for i in range(1000)], "prediction": rng.normal(100, 10, 1000)})
    frame["shadow_prediction"] = frame["prediction"] + rng.normal(0, 3, 1000)
    truth = frame["prediction"] + rng.normal(0, 5, 1000)
    # labels known for every other row only, in an order unrelated to the predictions'
    labels = pd.Series(truth.to_numpy(), index=frame["id"])[::2].sample(frac=1, random_state=1)
    result = compare_predictions(batches(frame, 128), "regression", key="id", labels=labels)
    known = frame.index % 2 == 0
    assert result["rows"] == 1000 and result["labelled_rows"] == 500 and result["error_metric"] == "mae"
    assert result["mean_abs_difference"] == pytest.approx(
        (frame["prediction"] - frame["shadow_prediction"]).abs().mean(), abs=1e-6)
    assert result["champion_error"] == pytest.approx((frame["prediction"] - truth)[known].abs().mean(), abs=1e-6)
    assert result["challenger_error"] == pytest.approx(
        (frame["shadow_prediction"] - truth)[known].abs().mean(), abs=1e-6)
    assert result["champion_error"] < result["challenger_error"]


def test_classification_agreement_and_error_rates():
    frame = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6], "prediction": ["a", "b", "b", "c", "a", "a"],
                          "shadow_prediction": ["a", "b", "c", "c", "b", "a"]})
    labels = pd.Series(["a", "c", "c", None], index=[1, 3, 4, 6])  # row 6's label is not known yet
    result = compare_predictions(batches(frame, 4), "classification", key="id", labels=labels)
    assert result == {"rows": 6, "agreement": round(4 / 6, 6), "labelled_rows": 3, "error_metric": "error_rate",
                      "champion_error": round(1 / 3, 6), "challenger_error": 0.0}


def test_integer_labels_read_as_floats_still_match_integer_predictions():
    frame = pd.DataFrame({"id": ["x", "y"], "prediction": [1, 0], "shadow_prediction": [1, 1]})
    labels = pd.Series([1.0, 0.0], index=["x", "y"])  # a label column with gaps is read as float
    result = compare_predictions(batches(frame, 10), "classification", key="id", labels=labels)
    assert (result["champion_error"], result["challenger_error"]) == (0.0, 0.5)


def test_without_labels_only_the_models_are_compared():
    frame = pd.DataFrame({"prediction": [1.0, 2.0], "shadow_prediction": [2.0, 4.0]})
    result = compare_predictions(batches(frame, 10), "regression")
    assert result == {"rows": 2, "mean_abs_difference": 1.5, "labelled_rows": 0, "error_metric": "mae",
                      "champion_error": None, "challenger_error": None}


def test_missing_shadow_column_or_bad_task_is_named():
    frame = pd.DataFrame({"id": [1], "prediction": [1.0]})
    with pytest.raises(ValueError, match=r"lack column\(s\) \['shadow_prediction'\]"):
        compare_predictions(batches(frame, 10), "regression")
    with pytest.raises(ValueError, match="task must be"):
        compare_predictions([], "ranking")
    with pytest.raises(ValueError, match="need the key column"):
        compare_predictions([], "regression", labels=pd.Series([1.0]))


def test_a_later_partition_brings_and_corrects_labels():
    day1 = pd.DataFrame({"id": ["a", "b", "c"], "price": [10.0, None, 30.0], "other": [0, 0, 0]})
    day2 = pd.DataFrame({"id": ["b", "c", "d"], "price": [20.0, 33.0, None]})
    labels = later_labels([day1, day2, pd.DataFrame({"id": ["e"]})], "id", "price")  # the last has no labels
    assert labels.to_dict() == {"a": 10.0, "b": 20.0, "c": 33.0}
    assert later_labels([], "id", "price").empty
