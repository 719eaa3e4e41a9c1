"""Metrics computed on what each needs: labels, values or class probabilities; binary and multiclass."""

from __future__ import annotations

import numpy as np
import pytest
from mlops_pack.core.metrics import (
    METRICS,
    Predictions,
    compute,
    metrics_for,
    per_class_report,
    predictions_of,
)
from mlops_pack.core.promotion.gate import judge
from mlops_pack.core.spec import PromotionSpec
from sklearn import metrics as sk


@pytest.fixture(scope="module")
def wine():
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_wine(return_X_y=True)
    labels = np.array([f"class_{v}" for v in y])
    order = np.random.default_rng(0).permutation(len(y))
    x, labels = x[order], labels[order]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x[:100], labels[:100])
    return model, x[100:], labels[100:]


def test_multiclass_roc_auc_is_one_vs_rest_macro_from_probabilities(wine):
    model, x, y = wine
    pred = predictions_of(model, x, "classification", needs_proba=True)
    assert list(pred.classes) == ["class_0", "class_1", "class_2"]
    expected = sk.roc_auc_score(y, model.predict_proba(x), multi_class="ovr", average="macro")
    assert compute("roc_auc", y, pred) == pytest.approx(expected)
    assert compute("log_loss", y, pred) == pytest.approx(sk.log_loss(y, model.predict_proba(x)))
    assert compute("f1", y, pred) == pytest.approx(sk.f1_score(y, model.predict(x), average="macro"))


def test_binary_roc_auc_uses_the_second_class_probability():
    y = np.array(["no", "yes", "no", "yes", "yes", "no"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45], [0.7, 0.3]])
    pred = Predictions(np.where(proba[:, 1] > 0.5, "yes", "no"), proba, np.array(["no", "yes"]))
    assert compute("roc_auc", y, pred) == pytest.approx(sk.roc_auc_score(y == "yes", proba[:, 1]))


def test_label_only_predictions_cannot_give_a_probability_metric():
    with pytest.raises(ValueError, match="needs class probabilities"):
        compute("roc_auc", np.array(["a", "b"]), np.array(["a", "b"]))


def test_an_estimator_without_predict_proba_is_named():
    from sklearn.svm import LinearSVC

    model = LinearSVC().fit([[0.0], [1.0], [2.0], [3.0]], ["a", "a", "b", "b"])
    with pytest.raises(ValueError, match="LinearSVC has no predict_proba"):
        predictions_of(model, [[0.5]], "classification", needs_proba=True)


def test_per_class_precision_and_recall():
    report = per_class_report(np.array(["a", "a", "b", "c"]), np.array(["a", "b", "b", "c"]))
    assert report["precision.b"] == 0.5 and report["recall.a"] == 0.5 and report["support.a"] == 2
    assert report["recall.c"] == 1.0


def test_metrics_belong_to_one_task_each():
    assert set(metrics_for("classification")) == {"accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss"}
    assert set(metrics_for("regression")) == {"rmse", "mae", "r2"}
    assert METRICS["log_loss"].direction == "lower"


def test_gate_judges_a_three_class_challenger_on_roc_auc_and_log_loss(wine):
    """The failure this fixes: roc_auc on a 3-class model crashed the gate (labels, not probabilities)."""
    model, x, y = wine
    weak = Predictions(np.full(len(y), "class_1"), np.full((len(y), 3), 1 / 3), np.array(["class_0", "class_1",
                                                                                             "class_2"]))
    strong = predictions_of(model, x, "classification", needs_proba=True)
    policy = PromotionSpec.model_validate({"metrics": {"roc_auc": {"min_delta": 0.0}, "log_loss": {"max": 2.0}},
                                           "min_holdout_rows": 30, "bootstrap_samples": 200})
    first = judge(y, strong, None, policy)
    assert first.promote and first.challenger_metrics["roc_auc"] > 0.9
    result = judge(y, strong, weak, policy)
    assert result.promote, result.reason
    assert result.intervals[0]["metric"] == "roc_auc" and result.intervals[0]["low"] > 0
    assert not judge(y, weak, strong, policy).promote
