"""A train attempt killed with SIGKILL after registering its model, with real Airflow processes: the
scheduler notices the lost task by its missing heartbeat, the retry marks the dead attempt's version
and run abandoned, and exactly one version, the retry's, is promoted."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.support.ports import free_port
from tests.support.waiting import DEADLINE, wait_until

pytestmark = pytest.mark.e2e

TRAIN = "listings__train"


def parent_pid(pid: int) -> int:
    stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - a one-line read of procfs
    return int(stat[stat.rindex(")") + 2:].split()[1])  # pid (comm) state ppid ...


def ancestors(pid: int) -> list[int]:
    found = []
    while pid > 1:
        pid = parent_pid(pid)
        found.append(pid)
    return found


def wait_for(what: str, probe, airflow=None):
    """``probe()``'s first truthy answer, under the suite's one deadline (tests/support/waiting.py)."""
    return wait_until(probe, what, poll=1, check=airflow.check_alive if airflow is not None else None)


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    from demo_site.generator import SiteState
    from demo_site.loop import prepare
    from demo_site.server import serve
    from mlflow import MlflowClient
    from mlops_pack.cli.runner import tracking_uri

    home, site_port = tmp_path_factory.mktemp("crash-home"), free_port()
    airflow = prepare(home, site_port, free_port())
    # Test-only hook (core/promotion/lease.fault_point): the first train try blocks right after registering its
    # version, with its MLflow run still open; "@file" makes it fire once, so the retry runs through.
    airflow.env["MLOPS_FAULT_POINT"] = f"train.registered:sleep:3600@{home / 'fault-fired'}"
    # The lost task is found when its heartbeat is this old. The embedded default is 120 s (runner.write_config);
    # this home takes the production stack's 45 s (deploy/stack.py: nine missed beats of a live task's
    # supervisor), so the test waits 75 s less for the state it checks, and a live task still has margin.
    airflow.env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] = "45"
    client = MlflowClient(tracking_uri(home), tracking_uri(home))
    server, _ = serve(site_port, SiteState(day=1, records_per_day=1000))
    airflow.start()
    try:
        airflow.wait_ready(DEADLINE)
        airflow.trigger("listings__ingest")  # its validated event starts listings__train

        def first_try_registered():
            try:
                found = client.search_model_versions("name = 'listings'")
            except Exception:  # noqa: BLE001 - the model does not exist yet
                return None
            return next((v for v in found if v.tags.get("airflow.try_number") == "1"), None)

        version = wait_for("the first train try registering its version", first_try_registered, airflow=airflow)
        run_id = version.tags["airflow.run_id"]
        ti = airflow.get(f"/api/v2/dags/{TRAIN}/dagRuns/{run_id}/taskInstances/train")
        assert ti["state"] == "running" and ti["try_number"] == 1, ti
        # Kill the whole attempt as a lost worker would: the supervisor (a LocalExecutor worker, child of the
        # scheduler) and the task process with its process group, SIGKILL: no cleanup, no final heartbeat.
        task_pid = ti["pid"]
        supervisor = parent_pid(task_pid)
        scheduler = next(p.pid for p in airflow.procs if "scheduler" in p.args)
        # The executor worker comes from the scheduler's forkserver (runner.write_config: it holds the tasks'
        # libraries): scheduler -> forkserver -> executor worker -> task process.
        assert open(f"/proc/{supervisor}/cmdline").read().startswith("airflow worker -- LocalExecutor")  # noqa: SIM115
        assert scheduler in ancestors(supervisor), "expected the scheduler above the executor worker"
        os.kill(supervisor, signal.SIGKILL)
        os.killpg(task_pid, signal.SIGKILL)

        def retried():
            ti = airflow.get(f"/api/v2/dags/{TRAIN}/dagRuns/{run_id}/taskInstances/train")
            return ti if ti["try_number"] == 2 and ti["state"] in ("success", "failed") else None

        # Found by its missing heartbeat (45 s in this home, above), retried after the DAG's retry delay.
        wait_for("the retry of the killed train task", retried, airflow=airflow)
        airflow.wait_quiet(DEADLINE)
        yield {"home": home, "client": client, "run_id": run_id, "killed": str(version.version),
               "killed_run": version.run_id, "airflow": airflow}
    finally:
        airflow.stop()
        server.shutdown()


def test_the_lost_try_failed_and_the_retry_succeeded(crashed):
    airflow, run_id = crashed["airflow"], crashed["run_id"]
    tries = airflow.get(f"/api/v2/dags/{TRAIN}/dagRuns/{run_id}/taskInstances/train/tries")["task_instances"]
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert airflow.get(f"/api/v2/dags/{TRAIN}/dagRuns/{run_id}")["state"] == "success"


def test_the_killed_trys_version_and_run_are_marked_abandoned_not_deleted(crashed):
    client, killed = crashed["client"], crashed["killed"]
    tags = client.get_model_version("listings", killed).tags
    assert tags["attempt_status"] == "abandoned"
    assert tags["superseded_by"] == f"{TRAIN}/{crashed['run_id']}/train try 2"
    assert "try 1 of train stopped before finishing" in tags["abandoned_reason"]
    assert "decision" not in tags  # never judged
    run = client.get_run(crashed["killed_run"])
    assert run.info.status == "KILLED"
    assert run.data.tags["attempt_status"] == "abandoned"
    assert run.data.tags["airflow.try_number"] == "1"


def test_exactly_one_version_the_retrys_is_promoted_and_recorded(crashed):
    client, home = crashed["client"], crashed["home"]
    versions = {str(v.version): v for v in client.search_model_versions("name = 'listings'")}
    assert len(versions) == 2
    [retry] = [v for k, v in versions.items() if k != crashed["killed"]]
    assert retry.tags["airflow.try_number"] == "2" and "attempt_status" not in retry.tags
    assert client.get_run(retry.run_id).info.status == "FINISHED"
    for alias in ("champion", "challenger"):  # MLflow 3 search results carry no aliases: ask by alias
        assert str(client.get_model_version_by_alias("listings", alias).version) == str(retry.version)
    records = [json.loads(p.read_text()) for p in (home / "mlops-data" / "listings" / "promotions").glob("*.json")]
    assert [(r["version"], r["decision"]) for r in records] == [(str(retry.version), "promoted")]
    assert retry.tags["decision"] == "promoted"


def test_nothing_is_left_half_written_in_storage(crashed):
    data = crashed["home"] / "mlops-data" / "listings"
    assert [p for p in data.rglob("*") if p.name.endswith(".tmp")] == []
    # Named by its data: the killed try and the retry wrote the same training set, complete (manifest last).
    [training] = [p for p in (data / "training").iterdir()]
    for part in ("train", "holdout"):
        assert (training / part / "manifest.json").exists()
