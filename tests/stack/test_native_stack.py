"""The production shape as processes on this machine (deploy/stack.py, ``make stack``): PostgreSQL,
CeleryExecutor with Redis and two workers, MLflow tracking server with S3 artifacts, S3 on moto.

The demo's three market days are driven through the REST API, as in tests/e2e/test_retrain_loop.py;
the shifted third day must retrain through the drift event. The stack starts once for the module.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import secrets
import sys
import time
import uuid

import pytest

from tests.support.env import REPO
from tests.support.ports import free_port, require_service
from tests.support.waiting import DEADLINE

sys.path.insert(0, str(REPO / "deploy"))

import stack  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DAYS = ((1, False, "first data, first champion"), (2, False, "clean day"), (3, True, "the market shifts"))


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    if importlib.util.find_spec("s3fs") is None:
        pytest.fail("s3fs is not installed: s3:// storage needs apache-airflow-providers-amazon[s3fs]")
    import httpx

    tag = uuid.uuid4().hex[:8]
    home = tmp_path_factory.mktemp("native-stack")
    endpoints = stack.Endpoints(s3=f"127.0.0.1:{free_port()}", mlflow=f"127.0.0.1:{free_port()}",
                                api=f"127.0.0.1:{free_port()}", site=f"127.0.0.1:{free_port()}",
                                redis_db=1 + int(tag[:4], 16) % 15)  # a broker DB of its own, most likely
    cfg = stack.StackConfig(home=home, endpoints=endpoints, db_prefix=f"mlops_stack_{tag}",
                            bucket=f"mlops-stack-{tag}", jwt_secret=secrets.token_hex(24),
                            admin_password=secrets.token_urlsafe(12), records=1000)
    native = stack.Stack(cfg)
    started = time.monotonic()
    try:
        native.up()
        client = stack.Client(cfg)
        client.wait_ready(DEADLINE, check=native.check)
        up_s = time.monotonic() - started
        site = httpx.Client(base_url=f"http://{endpoints.site}", timeout=10)
        days = []
        with stack.TaskMemorySampler() as memory:
            for day, shift, what in DAYS:
                day_started = time.monotonic()
                site.post("/admin/state", json={"day": day, "shift": shift}).raise_for_status()
                client.trigger(f"{stack.PIPELINE}__ingest")
                client.wait_quiet(DEADLINE, settle=8, check=native.check)
                days.append({"day": day, "what": what, "seconds": round(time.monotonic() - day_started, 1)})
        summary = collect(client, cfg, memory.peaks)
        summary.update(up_s=round(up_s, 1), days=days, loop_s=round(sum(d["seconds"] for d in days), 1),
                       local_files=sorted(str(p.relative_to(home)) for p in home.rglob("*")
                                          if p.is_file() and p.parts[len(home.parts)] != "logs"),
                       local_task_logs=sorted(str(p) for p in (home / "logs").rglob("attempt=*.log")))
        (home / "stack_summary.json").write_text(json.dumps(summary, indent=2, default=str))
        print(f"\n[native stack] summary in {home / 'stack_summary.json'}:\n"
              f"{json.dumps({k: summary[k] for k in ('up_s', 'days', 'loop_s', 'latency')}, indent=1)}")
        yield summary
    finally:
        native.down()


def collect(client: stack.Client, cfg: stack.StackConfig, peaks: dict[str, int]) -> dict:
    runs, tasks = [], []
    for dag_id in client.dags:
        for run in client.runs(dag_id):
            entry = {"dag_id": dag_id, "run_id": run["dag_run_id"], "state": run["state"],
                     "run_type": run["run_type"]}
            if run["run_type"] == "asset_triggered":
                events = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
                entry["triggered_by"] = sorted({e["name"] for e in events["asset_events"]})
            runs.append(entry)
            for ti in client.task_instances(dag_id, run["dag_run_id"]):
                tasks.append({"dag_id": dag_id, "run_id": run["dag_run_id"], "task_id": ti["task_id"],
                              "map_index": ti["map_index"], "state": ti["state"], "hostname": ti["hostname"],
                              "queue": ti["queue"], "duration": ti["duration"], "start": ti["start_date"],
                              "end": ti["end_date"], "peak_rss_mb": round(peaks.get(ti["id"], 0) / 2**20, 1)})
    events = client.get("/api/v2/assets/events", limit=100, order_by="timestamp")["asset_events"]
    drift = [e for e in events if e["name"] == f"{stack.PIPELINE}.drift"]
    keys = []
    for page in stack.s3_client(cfg).get_paginator("list_objects_v2").paginate(Bucket=cfg.bucket):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return {"runs": runs, "tasks": tasks, "drift_events": [e["timestamp"] for e in drift], "s3_keys": keys,
            "latency": latency(runs, tasks, drift)}


def latency(runs: list[dict], tasks: list[dict], drift: list[dict]) -> dict | None:
    """Drift event -> champion moved (the end of promote in the drift-triggered train run), against
    the sum of that run's task times up to promote."""
    retrain = [r for r in runs if r["dag_id"].endswith("__train") and f"{stack.PIPELINE}.drift" in
               r.get("triggered_by", [])]
    if not retrain or not drift:
        return None
    steps = {t["task_id"]: t for t in tasks if t["run_id"] == retrain[0]["run_id"]}
    event = _time(drift[0]["timestamp"])
    moved = _time(steps["promote"]["end"])
    work = sum(steps[name]["duration"] or 0 for name in ("train", "promote"))
    return {"drift_event": drift[0]["timestamp"], "promote_end": steps["promote"]["end"],
            "latency_s": round((moved - event).total_seconds(), 1), "task_sum_s": round(work, 1),
            "ratio": round((moved - event).total_seconds() / work, 2) if work else None,
            "queued_wait_s": round((_time(steps["train"]["start"]) - event).total_seconds(), 1)}


def test_every_run_succeeded_and_the_drift_event_retrained_the_model(loop):
    failed = [r for r in loop["runs"] if r["state"] != "success"]
    assert failed == []
    assert [r["run_type"] for r in loop["runs"] if r["dag_id"].endswith("__ingest")] == ["manual"] * 3
    retrains = [r for r in loop["runs"] if r["dag_id"].endswith("__train") and
                f"{stack.PIPELINE}.drift" in r.get("triggered_by", [])]
    assert len(retrains) == 1  # the cooldown stops a retrain storm
    assert retrains[0]["run_type"] == "asset_triggered"
    assert loop["latency"] is not None


def test_tasks_ran_on_both_workers_and_the_train_task_on_the_training_queue(loop):
    ran = [t for t in loop["tasks"] if t["state"] in ("success", "skipped") and t["hostname"]]
    assert {t["hostname"] for t in ran} == {"worker-1", "worker-2"}
    trains = [t for t in ran if t["task_id"] == "train"]
    # Both workers serve the training queue (failover), so either may have trained.
    assert trains and {t["queue"] for t in trains} == {"training"}
    assert {t["hostname"] for t in trains} <= {"worker-1", "worker-2"}
    assert {t["queue"] for t in ran if t["task_id"] != "train"} == {"default"}


def test_partitions_reports_and_models_are_s3_objects_and_nothing_is_stored_locally(loop):
    keys = loop["s3_keys"]
    prefix = f"mlops/{stack.PIPELINE}/"

    def under(area: str, suffix: str) -> list[str]:
        return [k for k in keys if k.startswith(prefix + area + "/") and k.endswith(suffix) and "/_history/" not in k]

    assert len(under("validated", "/manifest.json")) == 3  # one partition per market day
    assert len(under("validated", ".parquet")) == 3
    assert len(under("raw", "/manifest.json")) == 3
    assert len(under("predictions", "/manifest.json")) >= 3
    assert under("training", "/train/manifest.json") and under("training", "/holdout/manifest.json")
    assert len(under("reports/drift", "/report.html")) >= 3 and under("reports/drift", "/summary.json")
    # Each model trained (the first champion and the drift retrain; new data alone only scores, the
    # demo's retrain policy) is an artifact in the bucket, each decision a promotion record.
    trained = [t for t in loop["tasks"] if t["task_id"] == "train" and t["state"] == "success"]
    models = [k for k in keys if k.startswith("mlflow/") and k.endswith("/model.skops")]
    assert len(models) == len(trained) >= 2
    assert len(under("promotions", ".json")) == len(trained)
    # Task logs are in the bucket too (remote logging), and no worker kept a copy.
    task_logs = [k for k in keys if k.startswith("logs/dag_id=") and "/task_id=" in k]
    assert {k.split("/")[1] for k in task_logs} == {f"dag_id={d}" for d in
                                                  ("listings__ingest", "listings__train", "listings__score",
                                                   "listings__monitor")}
    assert loop["local_task_logs"] == []
    # Local: only configuration the stack wrote (and Airflow's default airflow.cfg); the stack's own
    # process logs (logs/*.log) are excluded.
    assert not [f for f in loop["local_files"] if f.endswith((".parquet", ".html", ".skops", ".db"))]
    assert set(loop["local_files"]) <= {"airflow.cfg", "stack.json", "simple_auth_manager_passwords.json.generated",
                                        f"pipelines/{stack.PIPELINE}.yaml"}, loop["local_files"]


def test_the_stack_never_drops_a_database_it_did_not_create(tmp_path):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    cfg = stack.StackConfig(home=tmp_path, db_prefix=f"mlops_stack_{uuid.uuid4().hex[:8]}")
    conn = stack._admin(cfg)
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{cfg.mlflow_db}"')  # someone else's
        created: list[str] = []
        with pytest.raises(RuntimeError, match="already exist"):
            created = stack.create_databases(cfg)
        stack.drop_databases(cfg, created)  # what Stack.down() drops when start-up failed there
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname IN (%s, %s)", (cfg.airflow_db, cfg.mlflow_db))
            assert [row[0] for row in cur.fetchall()] == [cfg.mlflow_db]  # still there; nothing created
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{cfg.mlflow_db}"')
        conn.close()
