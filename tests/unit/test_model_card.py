"""The model card: what it gathers about one version from storage, what it shows, and that it is escaped."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_pack.core.model_card import assemble, card_folder, gather_evidence, render_html

HOSTILE = "<script>alert('x')</script>"


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def storage(root: Path) -> Path:
    """A pipeline's storage with decisions, drift and performance of versions 1 and 2."""
    write(root / "promotions" / "2026-11-01T000000_v1.json", {
        "version": "1", "decision": "promoted", "decided_at": "2026-11-01T00:00:00", "reason": "first model",
        "approved_by": "policy", "champion_before": None, "champion_after": "1", "challenger_metrics": {"rmse": 120.0},
        "dag_id": "p__train", "run_id": "manual__1"})
    write(root / "promotions" / "2026-11-02T000000_v2.json", {
        "version": "2", "decision": "promoted", "decided_at": "2026-11-02T00:00:00", "reason": f"better {HOSTILE}",
        "approved_by": "alice", "champion_before": "1", "champion_after": "2", "challenger_metrics": {"rmse": 100.0},
        "champion_metrics": {"rmse": 120.0}, "holdout": {"rows_used": 300},
        "intervals": [{"metric": "rmse", "champion": 120.0, "challenger": 100.0, "improvement": 20.0, "low": 5.0,
                       "high": 30.0, "confidence": 0.95, "required": 0.0, "cleared": True,
                       "challenger_ci": [95.0, 105.0], "champion_ci": [115.0, 125.0]}],
        "slices_failed": [], "dag_id": "p__train", "run_id": "asset_triggered__2"})
    write(root / "promotions" / "untagged" / "x.json", {"version": "2"})  # not a decision: a pending tag
    (root / "promotions" / "broken.json").write_text("{not json")
    write(root / "reports" / "drift" / "2026-11-02__v1" / "summary.json", {
        "partition": "2026-11-02__v1", "model_version": "1", "share": 0.6, "threshold": 0.5, "drift": True,
        "drifted_columns": ["area", HOSTILE]})
    write(root / "reports" / "drift" / "2026-11-03__v2" / "summary.json", {
        "partition": "2026-11-03__v2", "model_version": "2", "share": 0.1, "threshold": 0.5, "drift": False,
        "drifted_columns": []})
    write(root / "performance" / "2026-11-03__v2" / "summary.json", {
        "partition": "2026-11-03__v2", "model_version": "2", "status": "ok", "labelled_rows": 90,
        "predicted_rows": 100, "coverage": 0.9, "decayed": False, "baselines": {"rmse": 100.0},
        "metrics": {"rmse": {"value": 104.0, "low": 99.0, "high": 110.0}},
        "quality_report": {"path": "reports/quality/2026-11-03__v2/report.html"}})
    return root


def card_of(root: Path, version: str, **overrides) -> dict:
    tags = {"decision": "promoted", "data_version": "t123", "train_uri": "file:///d/train/data-t.parquet",
            "holdout_uri": "file:///d/holdout/data-h.parquet", "holdout_rmse": "100.5", "holdout_r2": "0.9",
            "holdout_precision.a": "1", "code.pipeline": "pkg.models:build", "code.sha256": "abc",
            "data_partitions": "2026-11-01,2026-11-02", "retrain_reason": "input drift"}
    args = {"pipeline": "p", "version": version, "tags": tags, "run_id": "r1", "created_at": "2026-11-02T00:00:00",
            "params": {"pipeline": "pkg.models:build", "model.alpha": "2.0", "train_rows": "400", "holdout_rows": "100"},
            "inputs": {"partitions": [{"key": "2026-11-01", "version": "aaa"}, {"key": "2026-11-02", "version": "bbb"}],
                       "holdout_version": "h456", "record_key": "id", "seeds": {"estimator": 0},
                       "libraries": {"python": "3.11", "scikit-learn": "1.9.1", "scipy": "1"}},
            "aliases": ["champion"], "evidence": gather_evidence(root, version), "slices": ["city"],
            "updated_at": "2026-11-04T00:00:00"}
    return assemble(**{**args, **overrides})


def test_the_card_gathers_only_this_versions_decisions_drift_and_performance(tmp_path):
    root = storage(tmp_path)
    evidence = gather_evidence(root, "2")
    assert [d["decision"] for d in evidence["decisions"]] == ["promoted"]
    assert [d["partition"] for d in evidence["drift"]] == ["2026-11-03__v2"]
    assert [r["partition"] for r in evidence["performance"]] == ["2026-11-03__v2"]
    assert evidence["reproduce"] is None
    assert [d["partition"] for d in gather_evidence(root, "1")["drift"]] == ["2026-11-02__v1"]
    assert gather_evidence(tmp_path / "nothing", "1") == {"decisions": [], "drift": [], "performance": [],
                                                          "reproduce": None}
    assert card_folder(2) == "reports/model_cards/v2"


def test_the_card_holds_data_code_params_metrics_with_cis_the_gate_and_what_came_after(tmp_path):
    card = card_of(storage(tmp_path), "2")
    assert card["data"]["partitions"] == [{"key": "2026-11-01", "version": "aaa"}, {"key": "2026-11-02", "version": "bbb"}]
    assert card["data"]["train"] == {"version": "t123", "uri": "file:///d/train/data-t.parquet", "rows": 400}
    assert card["data"]["holdout"]["version"] == "h456"
    assert card["code"]["model"] == "pkg.models:build"
    assert card["code"]["identity"] == {"code.pipeline": "pkg.models:build", "code.sha256": "abc"}
    assert card["code"]["libraries"] == {"python": "3.11", "scikit-learn": "1.9.1"}
    assert card["params"] == {"alpha": "2.0"} and card["seeds"] == {"estimator": 0}
    assert card["holdout_metrics"] == [
        {"metric": "r2", "value": 0.9, "ci": None, "confidence": None},
        {"metric": "rmse", "value": 100.5, "ci": [95.0, 105.0], "confidence": 0.95}]  # per-class ones left out
    assert card["gate"]["against"] == "1" and card["gate"]["rows_used"] == 300
    assert card["slices"] == {"checked": ["city"], "failed": []}
    assert [(d["decision"], d["approved_by"]) for d in card["decisions"]] == [("promoted", "alice")]
    assert card["drift"] == [{"partition": "2026-11-03__v2", "share": 0.1, "threshold": 0.5, "drift": False,
                              "drifted_columns": [], "report": "reports/drift/2026-11-03__v2/report.html"}]
    [realized] = card["performance"]
    assert realized["metrics"]["rmse"]["value"] == 104.0 and realized["baselines"] == {"rmse": 100.0}
    assert realized["report"] == "reports/quality/2026-11-03__v2/report.html"
    assert card["status"] == "promoted" and card["aliases"] == ["champion"]
    json.dumps(card)


def test_a_version_trained_before_inputs_were_recorded_still_gets_a_card(tmp_path):
    card = card_of(storage(tmp_path), "1", inputs=None)
    assert card["data"]["partitions"] == [{"key": "2026-11-01", "version": None}, {"key": "2026-11-02", "version": None}]
    assert card["gate"]["decision"] == "promoted" and card["gate"]["intervals"] == []
    assert "judged alone" in render_html(card)


def test_the_html_escapes_every_value_and_links_stay_inside_the_pipelines_reports(tmp_path):
    root = storage(tmp_path)
    page = render_html(card_of(root, "2"))
    assert "<script>" not in page and "better &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    for expected in ("Model card: p v2", "[95, 105] @0.95", "alice", "2026-11-03__v2", "aaa", "pkg.models:build",
                     '<a href="../../../reports/drift/2026-11-03__v2/report.html">report</a>',
                     '<a href="../../../reports/quality/2026-11-03__v2/report.html">quality report</a>',
                     '<a href="../../../../../mlflow/models/p/versions/2">', '<a href="card.json">',
                     "mlops-pack reproduce p 2"):
        assert expected in page, expected
    hostile = render_html(card_of(root, "1"))  # its drift names a hostile column
    assert "<script>" not in hostile and "area, &lt;script&gt;" in hostile


def test_the_last_reproduce_report_shows_on_the_card(tmp_path):
    root = storage(tmp_path)
    write(root / "reports" / "reproduce" / "v2" / "report.json", {
        "version": "2", "checked_at": "2026-11-05T00:00:00", "reproduced": False,
        "data": [{"problem": "partition 2026-11-02 was replaced"}], "libraries": [], "code": []})
    card = card_of(root, "2")
    assert card["reproduce"]["differences"] == ["partition 2026-11-02 was replaced"]
    page = render_html(card)
    assert "NOT reproduced" in page and '<a href="../../../reports/reproduce/v2/report.json">report</a>' in page
