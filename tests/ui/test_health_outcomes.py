"""The health page's realized-performance section: per version over time against its baseline, escaped."""

from __future__ import annotations

import json


def write(folder, record):
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(record))


def record(partition, version, rmse, decayed, **extra):
    return {"partition": partition, "model_version": version, "status": "ok", "reason": "",
            "predicted_rows": 1000, "labelled_rows": 900, "coverage": 0.9,
            "label_lag_seconds": {"median": 7200.0, "p90": 9000.0},
            "metrics": {"rmse": {"value": rmse, "low": rmse * 0.9, "high": rmse * 1.1, "confidence": 0.95}},
            "baselines": {"rmse": 16000.0}, "decayed": decayed,
            "decay": [{"metric": "rmse", "decay": decayed, "reason": f"decay: realized rmse {rmse} <b>"}], **extra}


def test_realized_metrics_per_version_with_baseline_coverage_lag_and_decay(tmp_path):
    from mlops_pack.ui.health import gather, render

    root = tmp_path / "listings"
    write(root / "performance" / "2026-11-01__v1", record("2026-11-01__v1", "1", 17000.0, False))
    write(root / "performance" / "2026-11-02__v1", record("2026-11-02__v1", "1", 107000.0, True))
    write(root / "performance" / "2026-11-03__v1", {**record("2026-11-03__v1", "1", 0, False), "status":
                                                    "not_enough_labels", "reason": "12 labelled rows < 100",
                                                    "metrics": {}})
    (root / "promotions").mkdir()
    (root / "promotions" / "a.json").write_text(json.dumps(
        {"version": "2", "decision": "promoted", "retrain_evidence": "decay", "reason": "better",
         "decided_at": "2026-11-02T10:00:00+00:00", "champion_before": "1", "champion_after": "2"}))
    data = gather("listings", root)
    html = render(data)
    assert "Realized performance" in html and "realized rmse per partition vs holdout" in html
    assert "v1 realized" in html and "v1 holdout" in html
    assert "900 of 1000" in html and "90%" in html and "2.0 h" in html
    assert "1.07e+05 [9.63e+04, 1.177e+05]" in html
    assert "decay: realized rmse 107000.0 &lt;b&gt;" in html and "rmse 107000.0 <b>" not in html
    assert "12 labelled rows &lt; 100" in html
    assert "<td>decay</td>" in html  # the champion history says why version 2 was trained


def test_no_labels_no_section(tmp_path):
    from mlops_pack.ui.health import gather, render

    assert "Realized performance" not in render(gather("listings", tmp_path / "listings"))


def test_each_judged_partition_links_its_quality_report_and_nothing_outside_reports(tmp_path):
    from mlops_pack.ui.health import gather, render

    root = tmp_path / "listings"
    quality = {"uri": "file:///x", "path": "reports/quality/2026-11-02__v1/report.html", "sampled_rows": 400}
    write(root / "performance" / "2026-11-02__v1", record("2026-11-02__v1", "1", 9.0, True, quality_report=quality))
    hostile = {**quality, "path": "../../etc/passwd"}
    write(root / "performance" / "2026-11-03__v1", record("2026-11-03__v1", "1", 9.0, False, quality_report=hostile))
    html = render(gather("listings", root))
    assert "/files/listings/reports/quality/2026-11-02__v1/report.html" in html and "report (400 rows)" in html
    assert "passwd" not in html and "<th>quality report</th>" in html
