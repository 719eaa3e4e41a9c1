"""Human approval of a promotion in the Airflow UI's human-in-the-loop step, with real processes:
a rejected promotion leaves no champion and records the rejecter; an approved one records the approver."""

from __future__ import annotations

import json
import time

import pytest
from mlops_pack.cli.runner import TERMINAL, acting_credentials

from tests.support.ports import free_port
from tests.support.waiting import DEADLINE, wait_until

pytestmark = pytest.mark.e2e


def wait_for_task(airflow, dag_id: str, task_id: str, states: set[str], not_in_run: str | None = None) -> dict:
    def reached() -> dict | None:
        for run in reversed(airflow.runs(dag_id)):
            if run["dag_run_id"] == not_in_run:
                continue
            try:
                ti = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances/{task_id}")
            except Exception:  # noqa: BLE001 - not created yet
                continue
            if ti["state"] in states:
                return ti
        return None

    return wait_until(reached, f"{dag_id}.{task_id} in {states}", check=airflow.check_alive)


def answer(airflow, ti: dict, option: str) -> None:
    # A person answers seconds later, not within a second of the task parking: answering faster races the
    # scheduler's bookkeeping of the parked task in Airflow 3.3.2 (it fails and retries the task).
    time.sleep(5)
    response = airflow.http.patch(
        f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/-1/hitlDetails",
        json={"chosen_options": [option]})
    response.raise_for_status()


def answer_until_decided(airflow, ti: dict, option: str) -> str:
    """Answer ``option`` as a person watching the UI would: once per try that asks. Under load Airflow
    3.3.2 can still lose an answer to that race (the try fails, its retry asks again, seen in CI); the
    person then answers the new question. Returns the run's final state."""
    dag_id, run_id, answered = ti["dag_id"], ti["dag_run_id"], set()

    def decided() -> str | None:
        state = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
        if state in TERMINAL:
            return state
        asking = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}")
        if asking["state"] == "awaiting_input" and asking["try_number"] not in answered:
            answered.add(asking["try_number"])
            answer(airflow, asking, option)
        return None

    return wait_until(decided, f"{dag_id} run {run_id} to finish after answering {option!r}",
                      check=airflow.check_alive)


@pytest.fixture(scope="module")
def airflow_with_approval(tmp_path_factory):
    from demo_site.generator import SiteState
    from demo_site.loop import prepare
    from demo_site.server import serve

    home, site_port = tmp_path_factory.mktemp("approval-home"), free_port()
    airflow = prepare(home, site_port, free_port(), {"require_approval: false": "require_approval: true"})
    server, _ = serve(site_port, SiteState(day=1, records_per_day=1000))
    airflow.start()
    try:
        airflow.wait_ready(DEADLINE)
        yield airflow, home
    finally:
        airflow.stop()
        server.shutdown()


def promotions(home) -> list[dict]:
    folder = home / "mlops-data" / "listings" / "promotions"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_reject_then_approve(airflow_with_approval):
    airflow, home = airflow_with_approval
    airflow.trigger("listings__ingest")  # its validated event starts listings__train
    first = wait_for_task(airflow, "listings__train", "approve", {"awaiting_input"})
    detail = airflow.get(f"/api/v2/dags/listings__train/dagRuns/{first['dag_run_id']}/taskInstances/approve/-1"
                         "/hitlDetails")
    assert detail["subject"].startswith("Promote listings v1 to champion (now none)?")
    assert "first model" in detail["body"]
    assert answer_until_decided(airflow, first, "Reject") == "success"
    [rejected] = wait_until(lambda: promotions(home), "the rejection's promotion record")
    assert rejected["decision"] == "rejected" and rejected["champion_after"] is None
    assert rejected["reason"].startswith(f"rejected by {rejected['approved_by']} in the approval step")
    # The home has a login (no local mode): the answer is recorded under the name of the user who gave it,
    # here the user the home's commands act as (cli/runner.py acting_credentials), not "Anonymous".
    assert rejected["approved_by"] == acting_credentials(home)[0] != "Anonymous"

    airflow.trigger("listings__train")  # the same data again: a first model the gate passes
    second = wait_for_task(airflow, "listings__train", "approve", {"awaiting_input"}, not_in_run=first["dag_run_id"])
    assert second["dag_run_id"] != first["dag_run_id"]
    assert answer_until_decided(airflow, second, "Approve") == "success"
    approved = promotions(home)[-1]
    assert approved["decision"] == "promoted" and approved["champion_after"] == "2"
    assert approved["approved_by"] == rejected["approved_by"]
    runs = {r["dag_run_id"]: r["state"] for r in airflow.runs("listings__train")}
    assert runs[first["dag_run_id"]] == runs[second["dag_run_id"]] == "success"
