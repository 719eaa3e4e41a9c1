"""Outcomes through the real scheduler: decay retrains when the truth changes, an input shift that costs
nothing does not (with ``retrain.require_decay_for_drift``).

Two Airflow homes (api-server, scheduler, dag-processor; LocalExecutor on SQLite), each driven two demo
days through the REST API. Labels come from later validated partitions (the scraped price). Concept
drift: day 2's inputs keep day 1's distribution but prices are half as high again; the drift report
stays quiet, the champion's realized rmse decays, the decay event retrains, and the new champion wins
on the new truth. The converse: day 2's mix of cities, conditions and ages shifts (drift), prices follow
the same rule, the champion's realized quality holds, and the drift-triggered train run does not train.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.support.ports import free_port
from tests.support.waiting import DEADLINE

pytestmark = pytest.mark.e2e

PIPELINE = "listings"
LABELS = ("labels:\n  kind: later_partitions\n  min_labelled: 100\n  decay: {max_relative_drop: 0.25}\n"
          "  cooldown_minutes: 60\n")


def run_days(home, days: list[dict], retrain: str) -> dict:
    from demo_site.generator import SiteState
    from demo_site.loop import collect_summary, prepare
    from demo_site.server import serve

    site_port, api_port = free_port(), free_port()
    airflow = prepare(home, site_port, api_port, spec_edits={"\npromotion:\n": f"\n{retrain}{LABELS}promotion:\n"})
    airflow.dags += [f"{PIPELINE}__labels", f"{PIPELINE}__outcomes"]  # served before the loop starts
    server, site = serve(site_port, SiteState(day=1, records_per_day=1000))
    airflow.start()
    try:
        airflow.wait_ready(DEADLINE)
        for changes in days:
            site.set_state(dataclasses.replace(site.state, **changes))
            airflow.trigger(f"{PIPELINE}__ingest")
            airflow.wait_quiet(DEADLINE)
        summary = collect_summary(airflow, home)
        summary["outcome_runs"] = [{"dag_id": d, "state": r["state"]} for d in airflow.dags[-2:]
                                   for r in airflow.runs(d)]
    finally:
        airflow.stop()
        server.shutdown()
    data = home / "mlops-data" / PIPELINE
    summary["performance"] = {p.parent.name: json.loads(p.read_text())
                              for p in (data / "performance").glob("*/summary.json")}
    summary["promotions"] = [json.loads(p.read_text()) for p in sorted((data / "promotions").glob("*.json"))]
    return summary


def trains(summary: dict, asset: str) -> list[dict]:
    return [r for r in summary["runs"] if r["dag_id"] == f"{PIPELINE}__train" and asset in r.get("triggered_by", [])]


def rmse(record: dict) -> float:
    return record["metrics"]["rmse"]["value"]


@pytest.fixture(scope="module")
def concept(tmp_path_factory):
    return run_days(tmp_path_factory.mktemp("concept-home"), [{"day": 1}, {"day": 2, "price_factor": 1.5}],
                    "retrain:\n  triggers: [drift, performance]\n")


@pytest.fixture(scope="module")
def converse(tmp_path_factory):
    return run_days(tmp_path_factory.mktemp("converse-home"), [{"day": 1}, {"day": 2, "mix_shift": True}],
                    "retrain:\n  triggers: [drift, performance]\n  require_decay_for_drift: true\n")


def test_concept_drift_leaves_the_drift_report_quiet_but_decays_the_champion(concept):
    assert [r for r in concept["runs"] + concept["outcome_runs"] if r["state"] != "success"] == []
    day2 = next(m for m in concept["monitor_runs"] if m["partition"] == "2026-11-02__v1")
    assert not day2["drift"], day2
    before, after = concept["performance"]["2026-11-01__v1"], concept["performance"]["2026-11-02__v1"]
    assert before["status"] == after["status"] == "ok" and not before["decayed"] and after["decayed"]
    assert after["metrics"]["rmse"]["low"] > 1.25 * after["baselines"]["rmse"]


def test_the_decay_event_retrains_and_the_decision_names_its_evidence(concept):
    retrains = trains(concept, f"{PIPELINE}.performance")
    assert [r["train_state"] for r in retrains] == ["success"]  # the cooldown keeps it to one
    assert trains(concept, f"{PIPELINE}.drift") == []
    promoted = [p for p in concept["promotions"] if p["run_id"] == retrains[0]["run_id"]]
    assert [(p["version"], p["decision"], p["retrain_evidence"]) for p in promoted] == [("2", "promoted", "decay")]
    assert concept["aliases"]["champion"] == "2"
    v2 = next(v for v in concept["model_versions"] if v["version"] == "2")
    assert v2["data_partitions"] == "2026-11-01,2026-11-02"  # the decayed day is in the window


def test_the_new_champion_wins_on_the_new_truth(concept):
    new, old = concept["performance"]["2026-11-02__v2"], concept["performance"]["2026-11-02__v1"]
    assert new["status"] == "ok" and new["labelled_rows"] == old["labelled_rows"] == 1000
    assert new["metrics"]["rmse"]["high"] < old["metrics"]["rmse"]["low"]


def test_an_input_shift_that_costs_nothing_does_not_retrain_under_require_decay(converse):
    assert [r for r in converse["runs"] + converse["outcome_runs"] if r["state"] != "success"] == []
    day2 = next(m for m in converse["monitor_runs"] if m["partition"] == "2026-11-02__v1")
    assert day2["drift"], day2
    held = converse["performance"]["2026-11-02__v1"]
    assert held["status"] == "ok" and not held["decayed"]
    assert rmse(held) < 1.25 * held["baselines"]["rmse"]
    drift_runs = trains(converse, f"{PIPELINE}.drift")
    assert drift_runs and all(r["train_state"] == "skipped" for r in drift_runs)
    assert converse["aliases"]["champion"] == "1" and [v["version"] for v in converse["model_versions"]] == ["1"]
