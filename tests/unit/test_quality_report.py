"""Evidently's quality report of labelled predictions: its numbers match the pack's, hostile labels stay inert."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlops_pack.core.metrics import compute
from mlops_pack.core.quality_report import labelled_sample, quality_report

RNG = np.random.default_rng(3)


def test_a_regression_report_shows_the_realized_rmse_of_the_labelled_rows(tmp_path):
    keys = [f"k{i}" for i in range(300)]
    predictions = pd.DataFrame({"id": keys, "prediction": RNG.normal(100, 10, 300)})
    labels = pd.Series(predictions["prediction"].to_numpy()[:200] + RNG.normal(0, 5, 200), index=keys[:200])
    frame = labelled_sample(predictions, labels, "id")
    assert len(frame) == 200  # only the labelled rows
    shown = quality_report(frame, "regression", tmp_path / "r.html", tmp_path / "r.json")
    assert shown["rows"] == 200 and (tmp_path / "r.json").exists()
    assert shown["metrics"]["RMSE"] == pytest.approx(compute("rmse", frame["target"].to_numpy(),
                                                             frame["prediction"].to_numpy()))


def test_a_classification_report_with_hostile_labels_embeds_them_inert(tmp_path):
    hostile = "</script><img src=x onerror=alert(1)>"
    y = np.array(["cheap", "dear", hostile])[RNG.integers(0, 3, 300)]
    predicted = np.where(RNG.random(300) < 0.7, y, "cheap")
    shown = quality_report(pd.DataFrame({"target": y, "prediction": predicted}), "classification",
                           tmp_path / "c.html", tmp_path / "c.json")
    assert shown["metrics"]["Accuracy"] == pytest.approx(float(np.mean(y == predicted)))
    html = (tmp_path / "c.html").read_text()
    assert hostile not in html and "onerror=alert(1)>" not in html
    binary = quality_report(pd.DataFrame({"target": [0, 1] * 50, "prediction": [0, 1, 1, 1] * 25}),
                            "classification", tmp_path / "b.html", tmp_path / "b.json")
    assert binary["metrics"]["Accuracy"] == pytest.approx(0.75)
