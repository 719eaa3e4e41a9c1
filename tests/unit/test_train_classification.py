"""Training a classifier: stratified holdout, every fitting metric on the holdout, per-class report."""

from __future__ import annotations

import pandas as pd
import pytest
from mlops_pack.core.spec import ModelSpec
from mlops_pack.core.train import TrainingError, fit, stratified_split


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = [str(data.target_names[t]) for t in data.target]
    frame["id"] = [f"r{i}" for i in range(len(frame))]
    return frame  # sorted by class: a time split would hold out one class only


def model(**kwargs) -> ModelSpec:
    return ModelSpec.model_validate({"task": "classification", "target": "species",
                                     "features": {"numeric": ["sepal_length", "sepal_width", "petal_length",
                                                               "petal_width"]},
                                     "estimator": "sklearn.linear_model.LogisticRegression",
                                     "params": {"max_iter": 500}, **kwargs})


def test_stratified_holdout_keeps_the_class_proportions(iris):
    trained = fit(iris, model(stratify=True, holdout_fraction=0.2), key="id")
    assert trained.holdout["species"].value_counts().to_dict() == {"setosa": 10, "versicolor": 10, "virginica": 10}
    assert not set(trained.train["id"]) & set(trained.holdout["id"])
    m = trained.metrics
    assert {"accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss"} <= set(m)
    assert m["roc_auc"] > 0.95 and 0 < m["log_loss"] < 0.5
    assert {"precision.setosa", "recall.virginica", "support.versicolor"} <= set(m)
    assert m["support.versicolor"] == 10


def test_the_newest_rows_of_a_sorted_window_would_be_one_class(iris):
    trained = fit(iris, model(), key="id")
    assert set(trained.holdout["species"]) == {"virginica"}  # why stratify exists


def test_a_probability_gate_metric_needs_predict_proba(iris):
    spec = model(estimator="sklearn.svm.LinearSVC", params={}, stratify=True)
    with pytest.raises(TrainingError, match=r"\['roc_auc'\] need class probabilities but sklearn.svm.LinearSVC"):
        fit(iris, spec, key="id", gate_metrics=["roc_auc", "accuracy"])
    assert "roc_auc" not in fit(iris, spec, key="id", gate_metrics=["accuracy"]).metrics


def test_a_class_with_one_row_cannot_be_stratified(iris):
    lone = pd.concat([iris, iris.head(1).assign(species="rare", id="x")], ignore_index=True)
    with pytest.raises(TrainingError, match=r"class\(es\) \['rare'\] have a single row"):
        stratified_split(lone, "species", 0.2)
