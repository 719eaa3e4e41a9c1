"""Realized performance (core/outcomes.py): the streaming join, every metric against scikit-learn's, decay."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlops_pack.core.outcomes import (
    Estimate,
    GroupOutcome,
    PredictionSource,
    decide_decay,
    holdout_baseline,
    metric_direction,
    realized_performance,
)
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

CLASSIFICATION = ["accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss"]


def _binary(n, seed=0):
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p1 ** 1.5).astype(int)  # miscalibrated on purpose: ECE well above zero
    return p1, y, (p1 > 0.5).astype(int)


def _predictions(keys, pred, proba=None, classes=(), version="3"):
    columns = {"listing_id": keys, "prediction": pred}
    columns |= {f"proba_{c}": proba[:, i] for i, c in enumerate(classes)} if proba is not None else {}
    columns |= {"model_name": ["m"] * len(keys), "model_version": [version] * len(keys)}
    return pa.table(columns)


def _ece(y, proba, classes):
    """Expected calibration error from scikit-learn's calibration_curve (10 uniform bins), one-vs-rest."""
    def one(positive, p):
        edges = np.linspace(0, 1, 11)[1:-1]
        counts = np.bincount(np.searchsorted(edges, p), minlength=10)
        frac, mean = calibration_curve(positive, p, n_bins=10, strategy="uniform")
        return float(np.sum(counts[counts > 0] / len(p) * np.abs(frac - mean)))

    per_class = [one(y == c, proba[:, i]) for i, c in enumerate(classes)]
    return per_class[1] if len(classes) == 2 else float(np.mean(per_class))


def test_binary_metrics_match_scikit_learn_read_from_parquet(tmp_path):
    p1, y, pred = _binary(6000)
    keys = [f"id{i:06d}" for i in range(6000)]
    pq.write_table(_predictions(keys, pred, np.c_[1 - p1, p1], (0, 1)), tmp_path / "pred.parquet", row_group_size=1000)
    pq.write_table(pa.table({"listing_id": keys, "price_band": y}), tmp_path / "labels.parquet")
    report = realized_performance([PredictionSource("2026-11-01__v3", str(tmp_path / "pred.parquet"))],
                                  [str(tmp_path / "labels.parquet")], key="listing_id", task="classification",
                                  metrics=CLASSIFICATION, label_column="price_band", buckets=5)
    got = report.group("2026-11-01__v3", "3")
    assert (got.status, got.labelled_rows, got.predicted_rows, got.coverage) == ("ok", 6000, 6000, 1.0)
    proba = np.c_[1 - p1, p1]
    expected = {"accuracy": skm.accuracy_score(y, pred), "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
                "f1": skm.f1_score(y, pred, average="macro"), "roc_auc": skm.roc_auc_score(y, p1),
                "log_loss": skm.log_loss(y, proba), "brier_score": skm.brier_score_loss(y, p1),
                "ece": _ece(y, proba, [0, 1])}
    assert set(got.metrics) == set(expected)
    for name, value in expected.items():
        tolerance = 1e-4 if name == "roc_auc" else 1e-6  # AUC from a 65,536-bin histogram
        assert got.metrics[name].value == pytest.approx(value, abs=tolerance), name
        assert got.metrics[name].low <= got.metrics[name].value <= got.metrics[name].high, name
    assert expected["ece"] > 0.05


def test_multiclass_string_labels_match_scikit_learn():
    rng = np.random.default_rng(3)
    classes = ["high", "low", "mid"]
    logits = rng.normal(size=(4000, 3))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(classes, p=row) for row in proba])
    pred = np.array(classes)[proba.argmax(axis=1)]
    keys = np.arange(4000)
    report = realized_performance([PredictionSource("p__v1", _predictions(keys, pred, proba, classes, "1"))],
                                  pa.table({"listing_id": keys, "label": y}), key="listing_id",
                                  task="classification", metrics=CLASSIFICATION, buckets=3)
    got = report.groups[0].metrics
    assert got["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    assert got["balanced_accuracy"].value == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert got["f1"].value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes),
                                                 abs=1e-4)
    assert got["log_loss"].value == pytest.approx(skm.log_loss(y, proba, labels=classes))
    assert got["brier_score"].value == pytest.approx(skm.brier_score_loss(y, proba, labels=classes))
    assert got["ece"].value == pytest.approx(_ece(y, proba, classes))


def test_regression_metrics_match_scikit_learn_on_large_targets():
    rng = np.random.default_rng(5)
    y = 1e6 + rng.normal(scale=50, size=3000)  # a large offset: r2 from shifted sums stays exact
    pred = y + rng.normal(scale=20, size=3000)
    keys = [f"k{i}" for i in range(3000)]  # keys of several lengths
    report = realized_performance([PredictionSource("p__v2", _predictions(keys, pred, version="2"))],
                                  dict(zip(keys, y, strict=True)), key="listing_id", task="regression",
                                  metrics=["rmse", "mae", "r2"], buckets=4)
    got = report.groups[0].metrics
    assert got["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert got["mae"].value == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["r2"].value == pytest.approx(skm.r2_score(y, pred), abs=1e-6)
    assert "brier_score" not in got


def test_labels_without_probabilities_give_label_metrics_and_say_what_is_missing():
    p1, y, pred = _binary(500)
    keys = np.arange(500)
    report = realized_performance([PredictionSource("p__v1", _predictions(keys, pred, version="1"))],
                                  dict(zip(keys.tolist(), y.tolist(), strict=True)), key="listing_id",
                                  task="classification", metrics=["accuracy", "roc_auc"])
    group = report.groups[0]
    assert set(group.metrics) == {"accuracy"}
    assert "roc_auc" in group.reason and "proba_<class>" in group.reason
    calibrated = realized_performance(
        [PredictionSource("p__v1", _predictions(keys, pred, np.c_[1 - p1, p1], (0, 1), "1"))],
        dict(zip(keys.tolist(), y.tolist(), strict=True)), key="listing_id", task="classification",
        metrics=["ece", "accuracy"]).groups[0]
    assert set(calibrated.metrics) == {"accuracy", "brier_score", "ece"}
    assert calibrated.metrics["brier_score"].value == pytest.approx(skm.brier_score_loss(y, p1))


def test_join_collapses_duplicates_reports_conflicts_and_the_latest_label_wins():
    keys = [f"r{i}" for i in range(200)]
    pred = np.ones(200, dtype=int)
    early = pa.table({"listing_id": keys[:150], "label": [1] * 150})
    # Re-delivered: the same labels again (duplicates), and r0..r9 contradicted by a later source.
    again = pa.table({"listing_id": keys[:150], "label": [1] * 150})
    corrected = pa.table({"listing_id": keys[:10], "label": [0] * 10})
    late = pa.table({"listing_id": keys[150:180], "label": [1] * 30})  # late labels; r180.. never labelled
    missing = pa.table({"listing_id": ["r190", "nobody"], "label": pa.array([None, 1], pa.int64())})
    report = realized_performance([PredictionSource("p__v1", _predictions(keys, pred, version="1"))],
                                  [early, again, corrected, late, missing], key="listing_id",
                                  task="classification", metrics=["accuracy"], min_labelled=1, buckets=3)
    group = report.groups[0]
    assert (group.predicted_rows, group.labelled_rows, group.coverage) == (200, 180, 0.9)
    assert group.metrics["accuracy"].value == pytest.approx(170 / 180)  # r0..r9 now say 0: the latest wins
    assert report.label_rows == 341 and report.labelled_keys == 181  # null label ignored; "nobody" is a key
    assert report.duplicate_labels == 160
    assert report.conflicts.keys == 10
    assert set(report.conflicts.sample) == {f"r{i}" for i in range(10)}
    assert "latest arrival wins" in report.conflicts.rule
    assert json.loads(json.dumps(report.as_dict()))["conflicts"]["keys"] == 10  # XCom-ready


def test_latest_label_time_wins_over_reading_order():
    keys = ["a", "b"]
    t = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    newer = pa.table({"listing_id": keys, "label": [0, 0], "at": [t + dt.timedelta(days=2)] * 2})
    older = pa.table({"listing_id": keys, "label": [1, 1], "at": [t + dt.timedelta(days=1)] * 2})
    report = realized_performance([PredictionSource("p__v1", _predictions(keys, [0, 0], version="1"))],
                                  [newer, older], key="listing_id", task="classification", metrics=["accuracy"],
                                  label_time_column="at", min_labelled=1)
    assert report.groups[0].metrics["accuracy"].value == 1.0
    assert report.conflicts.keys == 2
    untimed = pa.table({"listing_id": keys, "label": [1, 1], "at": pa.array([None, None], pa.timestamp("us", "UTC"))})
    report = realized_performance([PredictionSource("p__v1", _predictions(keys, [0, 0], version="1"), t)],
                                  [newer, untimed], key="listing_id", task="classification", metrics=["accuracy"],
                                  label_time_column="at", min_labelled=1)
    assert report.groups[0].metrics["accuracy"].value == 1.0  # a label without a time is older than any with one
    assert report.groups[0].label_lag_seconds == {"median": 2 * 86400.0, "p90": 2 * 86400.0}


def test_groups_by_partition_and_model_version_with_label_lag():
    scored = dt.datetime(2026, 11, 1)
    one = _predictions(["a", "b", "c", "d"], [1, 1, 0, 0], version="4")
    two = pa.concat_tables([_predictions(["e", "f"], [1, 1], version="4"), _predictions(["g"], [0], version="5")])
    lag_hours = {"a": 1, "b": 2, "c": 3, "d": 10, "e": 5, "f": 5, "g": 7}
    labels = pa.table({"listing_id": list(lag_hours), "label": [1, 0, 0, 0, 1, 1, 1],
                       "at": [scored + dt.timedelta(hours=h) for h in lag_hours.values()]})
    report = realized_performance(
        [PredictionSource("d1__v4", one, predicted_at=scored), PredictionSource("d2", two, predicted_at=scored)],
        labels, key="listing_id", task="classification", metrics=["accuracy"], label_time_column="at",
        min_labelled=1)
    first, second, third = report.group("d1__v4", "4"), report.group("d2", "4"), report.group("d2", "5")
    assert first.metrics["accuracy"].value == 0.75 and second.metrics["accuracy"].value == 1.0
    assert third.metrics["accuracy"].value == 0.0 and third.predicted_rows == 1
    lags = np.array([1, 2, 3, 10]) * 3600.0
    assert first.label_lag_seconds == {"median": np.median(lags), "p90": np.quantile(lags, 0.9)}
    with pytest.raises(KeyError, match="model version 9"):
        report.group("d1__v4", "9")


def test_integer_prediction_keys_join_text_label_keys_and_buckets_do_not_change_results():
    p1, y, pred = _binary(3000, seed=8)
    keys = np.arange(10_000, 13_000)
    predictions = [PredictionSource("p__v1", _predictions(keys, pred, np.c_[1 - p1, p1], (0, 1), "1"))]
    labels = pa.table({"listing_id": [str(k) for k in keys], "label": y.astype(float)})  # "1.0" is class 1
    reports = [realized_performance(predictions, labels, key="listing_id", task="classification",
                                    metrics=CLASSIFICATION, buckets=b).as_dict() for b in (1, 7)]
    one, seven = (r["groups"][0]["metrics"] for r in reports)
    for name, estimate in one.items():  # equal but for the order of floating-point sums
        assert seven[name] == pytest.approx(estimate, rel=1e-9), name
    assert one["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
    assert reports[0]["groups"][0]["labelled_rows"] == reports[1]["groups"][0]["labelled_rows"] == 3000


def test_bootstrap_interval_is_seeded_and_as_wide_as_the_sampling_error():
    p1, y, pred = _binary(20_000, seed=11)
    source = [PredictionSource("p__v1", _predictions(np.arange(20_000), pred, version="1"))]
    labels = pa.table({"listing_id": np.arange(20_000), "label": y})

    def run(seed):
        return realized_performance(source, labels, key="listing_id", task="classification",
                                    metrics=["accuracy"], seed=seed).groups[0].metrics["accuracy"]

    first, again = run(0), run(0)
    assert first == again
    accuracy = first.value
    analytic = 2 * 1.96 * np.sqrt(accuracy * (1 - accuracy) / 20_000)
    assert (first.high - first.low) == pytest.approx(analytic, rel=0.25)


def test_too_few_labels_say_so_instead_of_numbers():
    keys = np.arange(300)
    report = realized_performance([PredictionSource("p__v1", _predictions(keys, np.zeros(300, int), version="1"))],
                                  {int(k): 0 for k in keys[:40]}, key="listing_id", task="classification",
                                  metrics=["accuracy"], min_labelled=50)
    group = report.groups[0]
    assert group.status == "not_enough_labels" and group.metrics == {}
    assert "40 labelled of 300" in group.reason and "min_labelled=50" in group.reason
    decision = decide_decay("accuracy", group, baseline=0.9)
    assert not decision.decay and "not enough labels" in decision.reason


def test_bad_input_is_named():
    table = pa.table({"listing_id": [1], "prediction": [1]})
    with pytest.raises(ValueError, match=r"partition 'p__v1'.*model_version"):
        realized_performance([PredictionSource("p__v1", table)], {1: 1}, key="listing_id",
                             task="classification", metrics=["accuracy"])
    with pytest.raises(ValueError, match="unknown metric"):
        realized_performance([], {}, key="k", task="classification", metrics=["auc"])


def _outcome(metric, value, low, high, n=812):
    return GroupOutcome("d1__v3", "3", "ok", f"{n} labelled", 1000, n, n / 1000, None,
                        {metric: Estimate(value, low, high, 0.95)})


def test_decay_when_the_whole_interval_is_below_the_holdout():
    decision = decide_decay("f1", _outcome("f1", 0.61, 0.57, 0.65), baseline=0.83)
    assert decision.decay and decision.evidence["dropped"] and not decision.evidence["floor_broken"]
    assert decision.reason.startswith("decay: realized f1 0.61 [0.57, 0.65] on 812 labelled rows")
    assert "vs holdout 0.83" in decision.reason


def test_no_decay_while_the_interval_reaches_the_holdout_or_the_drop_is_within_min_drop():
    assert not decide_decay("f1", _outcome("f1", 0.80, 0.76, 0.84), baseline=0.83).decay
    assert not decide_decay("f1", _outcome("f1", 0.80, 0.78, 0.82), baseline=0.83, min_drop=0.05).decay
    assert decide_decay("f1", _outcome("f1", 0.70, 0.66, 0.74), baseline=0.83, min_drop=0.05).decay


def test_decay_direction_follows_the_metric():
    assert metric_direction("rmse") == "lower" and metric_direction("ece") == "lower"
    assert decide_decay("rmse", _outcome("rmse", 14.0, 12.5, 15.5), baseline=10.0).decay
    assert not decide_decay("rmse", _outcome("rmse", 8.0, 7.0, 9.0), baseline=10.0).decay
    with pytest.raises(ValueError, match="unknown metric"):
        metric_direction("auc")


def test_decay_on_a_floor_without_a_baseline():
    decision = decide_decay("accuracy", _outcome("accuracy", 0.68, 0.66, 0.70), baseline=None, min=0.7)
    assert decision.decay and decision.evidence["floor_broken"] and "below the floor min 0.7" in decision.reason
    assert not decide_decay("accuracy", _outcome("accuracy", 0.72, 0.66, 0.78), baseline=None, min=0.7).decay
    assert decide_decay("rmse", _outcome("rmse", 12.0, 11.0, 13.0), baseline=None, max=11.5).decay


def test_holdout_baseline_comes_from_the_version_tags():
    tags = {"holdout_f1": "0.83", "holdout_rmse": "", "data_version": "abc"}
    assert holdout_baseline(tags, "f1") == 0.83
    assert holdout_baseline(tags, "rmse") is None and holdout_baseline(tags, "accuracy") is None
    with pytest.raises(ValueError, match="holdout_f1"):
        holdout_baseline({"holdout_f1": "high"}, "f1")
