"""The health page compares like with like: per decision, both models' metric on the same rows (the
gate's own record), and each version's drift against its own reference, with a sentence when a retrain
after drift could not remove it."""

from __future__ import annotations

import json

import numpy as np

HOSTILE = "<script>alert('x')</script>"


def decision(version, champion, y, challenger, previous):
    """A promotion record as operators/promote.py writes it, from the real gate on these predictions."""
    import pandas as pd
    from mlops_pack.core.holdout import clean_holdout
    from mlops_pack.core.promotion.decision import decision_record
    from mlops_pack.core.promotion.gate import judge
    from mlops_pack.core.spec import PromotionSpec

    policy = PromotionSpec.model_validate({"metrics": {"rmse": {"min_relative_delta": 0.0}, "r2": {"min": -100.0}},
                                           "min_holdout_rows": 50, "bootstrap_samples": 300})
    keys = pd.Series([f"id{i}" for i in range(len(y) + 40)])
    clean = clean_holdout(keys, "id", {f"champion v{champion}": keys[len(y):]} if champion else {})
    verdict = {**judge(y, challenger, previous, policy, holdout=clean).as_dict(), "retrain_evidence": "input drift"}
    record = decision_record(verdict, version=version, champion=champion, approved=True, approver="policy")
    return {**record, "model": "shop", "version": version, "decided_at": f"2026-11-0{version}T10:00:00+00:00",
            "reason": record["reason"] + HOSTILE, "retrain_evidence": verdict["retrain_evidence"]}


def write(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_paired_comparison_per_decision_and_drift_against_each_versions_own_reference(tmp_path):
    from mlops_pack.ui.health import gather, render

    rng = np.random.default_rng(7)
    y = rng.normal(1e5, 3e4, 400)
    v1, v2 = y + rng.normal(0, 1.4e5, 400), y + rng.normal(0, 4.8e4, 400)
    root = tmp_path / "shop"
    first = decision("1", None, y, v1, None)
    second = decision("2", "1", y, v2, v1)  # on the same rows as v1: much better
    write(root / "promotions" / "2026-11-01T100000_v1_a.json", first)
    write(root / "promotions" / "2026-11-02T100000_v2_b.json", second)
    for key, version, share in (("2026-11-01__v1", "1", 0.1), ("2026-11-02__v1", "1", 0.9),
                                ("2026-11-03__v2", "2", 0.83)):
        write(root / "reports" / "drift" / key / "summary.json",
              {"share": share, "threshold": 0.5, "drift": share >= 0.5, "drifted_columns": [HOSTILE],
               "model_version": version})
    html = render(gather("shop", root))

    assert "Metrics per version" not in html  # each version on its own holdout: not on this page
    assert "Gate comparisons (both models on the same rows)" in html
    [interval] = second["intervals"]
    old, new = interval["champion_ci"], interval["challenger_ci"]
    assert second["decision"] == "promoted" and new[1] < old[0]  # the paired comparison the gate made
    assert "v2 vs v1 (400 rows)" in html  # the chart's group: rows neither model trained on
    assert (f"<td>400 (40 removed)</td><td>{interval['champion']:.4g} [{old[0]:.4g}, {old[1]:.4g}]</td>"
            f"<td>{interval['challenger']:.4g} [{new[0]:.4g}, {new[1]:.4g}]</td>") in html
    assert "none: first model, judged alone" in html
    # drift: one series per version, each against the data it was trained on
    assert "v1 vs its training data" in html and "v2 vs its training data" in html
    assert "v2 was trained after input drift, but its own predictions still drift" in html
    assert "share 0.83 &gt;= 0.5 on 2026-11-03" in html
    assert HOSTILE not in html and "&lt;script&gt;" in html


def test_no_sentence_when_the_retrain_removed_the_drift(tmp_path):
    from mlops_pack.ui.health import drift_notes

    promotions = [{"decision": "promoted", "version": "2", "champion_before": "1", "retrain_evidence": "input drift"}]
    drift = [{"key": "2026-11-02__v1", "model_version": "1", "share": 0.9, "drift": True},
             {"key": "2026-11-03__v2", "model_version": "2", "share": 0.1, "drift": False}]
    assert drift_notes({"promotions": promotions, "drift": drift}) == []
    assert len(drift_notes({"promotions": promotions, "drift": [*drift, {**drift[1], "key": "2026-11-04__v2",
                                                                          "share": 0.7, "drift": True}]})) == 1
