"""The whole loop with real Airflow processes: the drift event retrains through the real scheduler."""

from __future__ import annotations

import pytest

from tests.support.ports import free_port
from tests.support.waiting import DEADLINE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture(scope="module")
def summary(home):
    from demo_site.loop import run_loop

    return run_loop(home, records=1000, site_port=free_port(), api_port=free_port(), timeout=DEADLINE)


def test_a_successful_train_task_logs_no_error_and_no_deprecation_flood(summary, home):
    import json

    logs = sorted(home.glob("logs/dag_id=listings__train/*/task_id=train/attempt=1.log"))
    assert logs, "no train task log"
    lines = [json.loads(line) for line in logs[0].read_text().splitlines() if line.startswith("{")]
    errors = [entry["event"] for entry in lines if entry.get("level") in ("error", "critical")]
    assert errors == []  # MLflow's "Created version ..." is INFO, not an error
    flood = [entry["event"] for entry in lines if "airflow.utils" in str(entry.get("event")) and "deprecated" in
             str(entry.get("event"))]
    assert flood == [], f"{len(flood)} deprecation lines, e.g. {flood[:2]}"


def test_every_run_of_the_loop_succeeded(summary):
    failed = [r for r in summary["runs"] if r["state"] != "success"]
    assert failed == []
    ingests = [r for r in summary["runs"] if r["dag_id"] == "listings__ingest"]
    assert [r["run_type"] for r in ingests] == ["manual"] * 3


def test_drift_event_triggered_a_retrain_through_the_scheduler(summary):
    drift_runs = [m for m in summary["monitor_runs"] if m["drift"]]
    assert drift_runs, summary["monitor_runs"]
    assert {"area_m2", "distance_km"} <= set(drift_runs[0]["drifted_columns"])
    retrains = [r for r in summary["runs"] if r["dag_id"] == "listings__train" and
                "listings.drift" in r.get("triggered_by", []) and r["train_state"] == "success"]
    assert len(retrains) == 1  # the cooldown stops a retrain storm, the policy a retrain on trained data
    assert retrains[0]["run_type"] == "asset_triggered"
    shifted = next(v for v in summary["model_versions"] if v["version"] == "2")
    assert shifted["data_partitions"].endswith("2026-11-03")  # the drift retrain holds the drifted day


def test_new_data_alone_does_not_retrain_under_the_demos_policy(summary):
    by_validated = [r for r in summary["runs"] if r["dag_id"] == "listings__train" and
                    r.get("triggered_by") == ["listings.validated"]]
    assert [r["train_state"] for r in by_validated][1:] and all(
        r["train_state"] == "skipped" for r in by_validated[1:]), by_validated  # the first one trains v1


def test_clean_days_report_no_drift(summary):
    before_shift = [m for m in summary["monitor_runs"] if m["model_version"] == "1"]
    assert before_shift and not before_shift[0]["drift"]


def test_champion_history_matches_the_registry(summary):
    history = summary["champion_history"]
    assert history[0] == {**history[0], "version": "1", "decision": "promoted", "champion_before": None,
                          "champion_after": "1"}
    champion = None
    for record in history:
        assert record["champion_before"] == champion
        champion = record["champion_after"]
        assert record["reason"]
    assert summary["aliases"]["champion"] == champion
    trains = [r for r in summary["runs"] if r["dag_id"] == "listings__train" and r["train_state"] == "success"]
    assert len(history) == len(trains)
    tags = {v["version"]: v["decision"] for v in summary["model_versions"]}
    assert tags == {r["version"]: r["decision"] for r in history}
