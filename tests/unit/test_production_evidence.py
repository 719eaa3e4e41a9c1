"""Production evidence for promotion: challenger vs champion on the same labelled, shadow-scored rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlops_pack.core.metrics import compute
from mlops_pack.core.production_evidence import judge_production, latest_labels, paired_rows, with_evidence
from mlops_pack.core.spec import PromotionSpec

RNG = np.random.default_rng(7)
N = 600
KEYS = [f"k{i:04d}" for i in range(N)]
TRUTH = RNG.normal(100, 20, N)


def policy(**metrics) -> PromotionSpec:
    return PromotionSpec.model_validate({"metrics": metrics or {"rmse": {"min_delta": 0.0}},
                                         "bootstrap_samples": 400})


def shadow_frame(champion_noise: float, challenger_noise: float, rows=slice(None), seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": KEYS, "prediction": TRUTH + rng.normal(0, champion_noise, N),
                          "shadow_prediction": TRUTH + rng.normal(0, challenger_noise, N)})
    return frame.iloc[rows].reset_index(drop=True)


LABELS = pd.Series(TRUTH, index=KEYS)


def judged(rows, pol=None, min_rows=200):
    return judge_production(rows, pol or policy(), min_rows, challenger_version="2", champion_version="1")


def test_a_better_challenger_beats_the_champion_on_the_same_rows_with_a_ci():
    frame = shadow_frame(10, 4)
    rows = paired_rows([("2026-11-01__v1", frame)], LABELS, "id", "regression")
    evidence = judged(rows)
    assert evidence.passed and evidence.rows == N
    [interval] = evidence.intervals
    assert interval["champion"] == pytest.approx(compute("rmse", TRUTH, frame["prediction"].to_numpy()))
    assert interval["challenger"] == pytest.approx(compute("rmse", TRUTH, frame["shadow_prediction"].to_numpy()))
    assert 0 < interval["low"] <= interval["improvement"] <= interval["high"]
    assert evidence.reason.startswith(f"beats the champion on {N} production rows: rmse")
    assert f"CI [{interval['low']:.4g}, {interval['high']:.4g}]" in evidence.reason
    json.dumps(evidence.as_dict())  # lands in the decision record


def test_a_challenger_inside_the_noise_is_refused_because_the_ci_includes_zero():
    rows = paired_rows([("p", shadow_frame(10, 10, seed=3))], LABELS, "id", "regression")
    evidence = judged(rows)
    assert not evidence.passed and "rmse: the CI includes zero" in evidence.reason
    worse = judged(paired_rows([("p", shadow_frame(4, 12))], LABELS, "id", "regression"))
    assert not worse.passed and "worse, the whole CI is below zero" in worse.reason


def test_too_few_labelled_rows_refuse_and_say_how_many():
    half = LABELS.iloc[:150]  # labels arrived for 150 keys only
    rows = paired_rows([("2026-11-01__v1", shadow_frame(10, 2))], half, "id", "regression")
    evidence = judged(rows)
    assert not evidence.passed and evidence.rows == 150 and evidence.intervals == []
    assert evidence.reason.startswith("not enough labelled production rows: 150 scored by both champion v1 and "
                                      "challenger v2 (from 2026-11-01__v1), 200 needed")


def test_rows_either_model_trained_on_leave_and_unreadable_training_rows_refuse():
    trained = ({"challenger v2": pd.Series(KEYS[:500]), "champion v1": pd.Series(KEYS[450:460])}, {})
    rows = paired_rows([("p", shadow_frame(10, 2))], LABELS, "id", "regression", trained=trained)
    assert len(rows) == 100 and rows.clean.rows_removed == 500
    evidence = judged(rows)
    assert not evidence.passed and "500 of 600 rows removed" in evidence.reason
    assert evidence.cleaned["rows_used"] == 100
    unknown = paired_rows([("p", shadow_frame(10, 2))], LABELS, "id", "regression",
                          trained=({}, {"champion v1": "its training rows cannot be read: gone"}))
    assert "cannot show the production rows are unseen" in judged(unknown).reason


def test_a_key_counts_once_from_its_newest_partition_and_its_latest_label():
    old = shadow_frame(10, 2, rows=slice(0, 300), seed=4)
    new = shadow_frame(10, 2, rows=slice(200, 600), seed=5)
    rows = paired_rows([("a", old), ("b", new)], LABELS, "id", "regression")
    assert len(rows) == N and rows.partitions == ("a", "b")
    merged = pd.concat([old.iloc[:200], new]).reset_index(drop=True)
    np.testing.assert_allclose(rows.champion.labels, merged["prediction"])
    labels = latest_labels([pd.DataFrame({"id": ["a", "b"], "label": [1, 2], "labelled_at": [2, 1]}),
                            pd.DataFrame({"id": ["a", "b", "c"], "label": [3, 4, None], "labelled_at": [1, 2, 3]})],
                           "id")
    assert labels.to_dict() == {"b": 4, "a": 1}  # a: the earlier partition's later arrival; c: no label


def test_classification_with_probabilities_pairs_both_models_proba_columns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, N)
    good = np.clip(y * 0.8 + 0.1 + rng.normal(0, 0.05, N), 0, 1)
    weak = np.clip(0.5 + rng.normal(0, 0.2, N), 0, 1)
    frame = pd.DataFrame({"id": KEYS, "prediction": (weak > 0.5).astype(int), "proba_0": 1 - weak, "proba_1": weak,
                          "shadow_prediction": (good > 0.5).astype(int), "shadow_proba_0": 1 - good,
                          "shadow_proba_1": good})
    rows = paired_rows([("p", frame)], pd.Series(y, index=KEYS), "id", "classification", needs_proba=True)
    evidence = judged(rows, policy(roc_auc={"min_delta": 0.0}))
    assert evidence.passed, evidence.reason
    assert evidence.intervals[0]["challenger"] > 0.95 and list(rows.challenger.classes) == [0, 1]


def test_the_gate_promotes_only_when_holdout_and_production_evidence_agree():
    verdict = {"promote": True, "decision": "promoted", "reason": "better: rmse ..."}
    refused = judged(paired_rows([("p", shadow_frame(10, 10, seed=3))], LABELS, "id", "regression"))
    out = with_evidence(verdict, refused)
    assert not out["promote"] and out["decision"] == "rejected"
    assert out["reason"].startswith("production evidence: does not beat the champion on 600 production rows")
    assert out["production_evidence"]["rows"] == N
    passed = judged(paired_rows([("p", shadow_frame(10, 4))], LABELS, "id", "regression"))
    both = with_evidence(verdict, passed)
    assert both["promote"] and "; production evidence: beats the champion on 600" in both["reason"]
    assert with_evidence(verdict, None) is verdict
