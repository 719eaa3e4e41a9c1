"""The whole loop with real Airflow processes: the drift event retrains through the real scheduler."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.support.ports import free_port
from tests.support.waiting import DEADLINE
from tests.support.webhook import http_receiver, webhook_receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-home")


# The loop's spec gets a deadline of seconds on its train DAG (every train run overshoots it) whose alert
# goes to a local webhook; Airflow's OpenLineage provider sends every task's events to a local receiver.
DEADLINE_EDITS = {"ingest: null": "ingest: null\n  deadline: {dags: [train], after: 3s}",
                  "\nscoring:\n": "\nalerts:\n  webhook_conn_id: loop_hook\n  events: [deadline_missed]\nscoring:\n"}


@pytest.fixture(scope="module")
def received():
    """(OpenLineage events, webhook posts) the loop's processes sent to receivers on 127.0.0.1."""
    with http_receiver() as (lineage_url, events), webhook_receiver("loop_hook") as posts, \
            pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(
            {"type": "http", "url": lineage_url, "endpoint": "api/v1/lineage", "timeout": 30}))
        env.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "mlops-e2e")
        yield events, posts


@pytest.fixture(scope="module")
def summary(home, received):
    from demo_site.loop import run_loop

    return run_loop(home, records=1000, site_port=free_port(), api_port=free_port(), timeout=DEADLINE,
                    spec_edits=DEADLINE_EDITS)


FLOOD = 20  # lines one library's logger may write to one task log (GX wrote ~210 to validate's, skops ~1,160)


def task_logs(home) -> dict[str, list[dict]]:
    """Every task log of the loop, ``<dag>.<task>[<map index>] <run id>`` -> its entries (JSON lines; a
    line that is not JSON, e.g. raw stderr, is kept as a warning of logger ``raw``)."""
    import json

    logs = {}
    for path in sorted(home.glob("logs/dag_id=*/run_id=*/task_id=*/**/attempt=*.log")):
        parts = {p.split("=", 1)[0]: p.split("=", 1)[1] for p in path.relative_to(home / "logs").parts if "=" in p}
        name = f"{parts['dag_id']}.{parts['task_id']}[{parts.get('map_index', '')}] {parts['run_id']}"
        logs[name] = [json.loads(line) if line.startswith("{") else {"level": "warning", "logger": "raw",
                                                                      "event": line}
                      for line in path.read_text().splitlines() if line.strip()]
    return logs


def from_the_pack(entry: dict) -> bool:
    return "mlops_pack" in str(entry.get("logger")) or "/mlops_pack/" in str(entry.get("filename"))


def test_every_task_log_of_the_loop_is_free_of_third_party_warnings_and_floods(summary, home):
    logs = task_logs(home)
    tasks = {name.split("[")[0] for name in logs}
    assert {"listings__ingest.scrape", "listings__ingest.validate", "listings__train.train",
            "listings__train.promote", "listings__score.score", "listings__monitor.drift_report"} <= tasks, tasks
    warned, flooded = {}, {}
    for name, entries in logs.items():
        # Python warnings (logger py.warnings) and library loggers' warnings; the pack's own stay allowed.
        lines = [f"{e.get('logger')}: {str(e.get('event'))[:160]}" for e in entries
                 if e.get("level") == "warning" and not from_the_pack(e)]
        if lines:
            warned[name] = lines
        by_library = Counter(str(e.get("logger")).split(".")[0] for e in entries if not from_the_pack(e)
                             and not str(e.get("logger")).startswith(("airflow", "task")))
        flooded.update({f"{name} {lib}": n for lib, n in by_library.items() if n > FLOOD})
    assert warned == {}, {name: (len(lines), lines[:3]) for name, lines in warned.items()}
    assert flooded == {}
    train = next(entries for name, entries in logs.items() if name.startswith("listings__train.train["))
    errors = [entry["event"] for entry in train if entry.get("level") in ("error", "critical")]
    assert errors == []  # MLflow's "Created version ..." is INFO, not an error


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


LOOP = ["source", "raw", "validated", "training set", "model version", "predictions", "drift report"]


def test_openlineage_events_draw_the_loop_from_source_to_drift_report(summary, received, home):
    """Airflow's OpenLineage provider (a real listener in the real workers) sends each task's datasets: the
    graph they draw runs source -> raw -> validated -> training set -> model version -> predictions -> drift
    report, each step an edge from a task's input to its output (training set -> model version: the version's
    dataset-level lineage, it was fit on that set)."""
    from mlops_pack.core.lineage import kind_path_exists, lineage_graph
    from mlops_pack.ui.svg import lineage_chart

    events = [body for path, _, body in received[0] if path.endswith("/api/v1/lineage")]
    graph = lineage_graph(events)
    # Kept with the home: docs/img/lineage.svg is this picture (docs/governance.md).
    (home / "openlineage-events.json").write_text(json.dumps(events, indent=1))
    (home / "lineage.svg").write_text(lineage_chart(graph))
    path = kind_path_exists(graph, LOOP)
    assert path, (sorted(graph["jobs"]), sorted(set(graph["datasets"].values())))
    jobs = graph["jobs"]
    assert path[0] in jobs["listings__ingest.scrape"]["inputs"] and path[1] in jobs["listings__ingest.scrape"]["outputs"]
    assert {path[3], path[4]} <= jobs["listings__train.train"]["outputs"]
    assert path[4] in jobs["listings__score.score"]["inputs"] and path[5] in jobs["listings__score.score"]["outputs"]
    assert path[-1] in jobs["listings__monitor.drift_report"]["outputs"]
    assert path[4][0].startswith("sqlite:///") and path[4][1].startswith("listings/versions/")  # the registry
    assert all(d[0] == "file" and "/mlops-data/listings/" in d[1] for d in path[1:4] + path[5:])
    complete = [e for e in events if e["eventType"] == "COMPLETE"]
    gates = [e["run"]["facets"]["promotionDecision"] for e in complete if "promotionDecision" in e["run"]["facets"]]
    assert [g["decision"] for g in gates] == [r["decision"] for r in summary["champion_history"]]
    drift = [e["run"]["facets"]["drift"] for e in complete if "drift" in e["run"]["facets"]]
    assert {d["partition"]: d["drift"] for d in drift} == {m["partition"]: m["drift"] for m in summary["monitor_runs"]}
    assert all(e["job"]["namespace"] == "mlops-e2e" for e in events)
    # Every dataset is one a person can find: a task that recorded nothing got the provider's hook-level
    # lineage, which named the cooldown marker's temporary file (signal_drift, before it recorded its own).
    names = {d["name"] for e in complete for side in ("inputs", "outputs") for d in e.get(side) or []}
    assert not [n for n in names if n.endswith(".tmp")], names
    signal = jobs["listings__monitor.signal_drift"]  # the drift retrain's signal: the report it judged
    assert signal["inputs"] and signal["inputs"] <= jobs["listings__monitor.drift_report"]["outputs"]


def test_a_train_run_past_its_deadline_alerts_the_specs_webhook(summary, received):
    """schedule.deadline (3 s on the train DAG) through the real scheduler: a run that trains overshoots it,
    the scheduler has the executor run the pack's callback, which posts to the spec's webhook while the run
    goes on (and succeeds: test_every_run_of_the_loop_succeeded)."""
    posts = received[1]
    events = [p[2]["event"] for p in posts]
    trained = {r["run_id"] for r in summary["runs"] if r["dag_id"] == "listings__train" and r["train_state"] == "success"}
    assert len(trained) == 2 and trained <= {e["run_id"] for e in events}, (trained, events)
    assert {e["event"] for e in events} == {"deadline_missed"} and {e["dag_id"] for e in events} == {"listings__train"}
    assert all(e["after"] == "3s" and e["reference"] == "queued_at" and e["deadline_time"] for e in events)
    assert f"run {events[0]['run_id']} of listings__train missed its deadline" in posts[0][2]["text"]
