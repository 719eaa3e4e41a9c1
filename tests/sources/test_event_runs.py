"""Event-driven ingest with real Airflow processes (api-server, scheduler, dag-processor, triggerer):
a Redis pub/sub message, an SQS message (moto server) and another team's asset event each start
``<name>__ingest`` on the partition they name; the same message twice changes no row; a ``@champion``
moved by hand in the registry is recorded in the promotion log and re-scores; a message that names
nothing fails its run with an error naming the message. Queues are watched through Airflow's
MessageQueueTrigger (the redis and amazon providers' triggers).

One Airflow for the module; the tests run in file order on one pipeline (``evq``, a ``files`` source
with no ``partition.column``: only the message can name the partition). The champion test also runs
alone (``-k champion``): it ingests a partition itself when there is none.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid

import pandas as pd
import pytest

from tests.sources.conftest import AWS_KEYS, aws_connection, boto_client
from tests.sources.specs import day_rows, table_spec
from tests.support.env import REPO
from tests.support.ports import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
NAME = "evq"
TERMINAL = {"success", "failed"}
MLFLOW_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, moto_url, redis_up):
    from mlops_pack.cli import runner

    home = tmp_path_factory.mktemp("events-home")
    inbox, api_port = home / "in", free_port()
    inbox.mkdir()
    channel, label_channel = f"evq-{uuid.uuid4().hex[:8]}", f"evq-labels-{uuid.uuid4().hex[:8]}"
    queue_url = boto_client("sqs", moto_url).create_queue(QueueName=f"evq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    spec = table_spec(home / "pipelines", NAME, {"kind": "files", "url": f"file://{inbox}", "pattern": "*.csv"},
                      events={"queues": [{"scheme": "redis+pubsub", "queue": channel, "conn_id": "evq_redis",
                                          "poll_seconds": 0.5},
                                         {"scheme": "sqs", "queue": queue_url, "conn_id": "evq_aws",
                                          "poll_seconds": 1}],
                              "upstream_assets": [{"name": "team_upstream.listings_export",
                                                   "uri": "upstream://team/listings_export"}],
                              "champion_poll_seconds": 5},
                      labels={"kind": "events", "queues": [{"scheme": "redis+pubsub", "queue": label_channel,
                                                            "conn_id": "evq_redis", "poll_seconds": 0.5}]},
                      # This module tests how runs start; the suite's checks are test_source_kinds.py's job.
                      validation={"expectations": [
                          {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 100}},
                          {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "listing_id"}}]})
    dags = runner.write_dag_files(home, {NAME: spec})
    shutil.copy(REPO / "include" / "examples" / "upstream_export.py", dags / "upstream_export.py")
    runner.write_config(home, api_port, home / "pipelines", dags_folder=dags, paused=True)
    airflow = runner.Airflow(home, api_port, [NAME], triggerer=True, extra_env={
        **AWS_KEYS, "AIRFLOW_CONN_EVQ_REDIS": "redis://127.0.0.1:6379/0",
        "AIRFLOW_CONN_EVQ_AWS": aws_connection(moto_url)})
    # mlflow.set_tracking_uri/set_registry_uri (MlflowHook.client, in any test that ran a task in this
    # process: tests/ui's dag.test()) also set MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI in os.environ. Inherited,
    # they sent this module's hand-made model versions and alias moves to that test's registry while the
    # triggerer watched this home's: the champion watch then had nothing to see (issue 13).
    for key in MLFLOW_URI_VARS:
        airflow.env.pop(key, None)
    mlflow_init = runner.init_mlflow(home, wait=False)
    airflow.migrate()
    runner.finish_init(mlflow_init)
    airflow.start()
    try:
        started = (f"{NAME}__ingest", f"{NAME}__champion_watch", f"{NAME}__labels", "team_upstream_export")
        wait_for_dags(airflow, set(started))
        for dag_id in started:
            airflow.set_paused(dag_id, False)
        stack = Stack(airflow, home, inbox, channel, queue_url, moto_url)
        stack.label_channel = label_channel
        yield stack
    finally:
        airflow.stop()


class Stack:
    def __init__(self, airflow, home, inbox, channel, queue_url, moto_url):
        self.airflow, self.home, self.inbox = airflow, home, inbox
        self.channel, self.queue_url, self.moto_url = channel, queue_url, moto_url
        self.data = home / "mlops-data" / NAME

    def runs(self, dag_id: str) -> list[dict]:
        return self.airflow.runs(dag_id)

    def wait_runs(self, dag_id: str, count: int) -> list[dict]:
        """The DAG's runs once at least ``count`` exist and all have finished."""
        import httpx

        def finished() -> list[dict] | None:
            try:
                runs = self.runs(dag_id)
            except httpx.TimeoutException:  # a busy api-server: ask again
                return None
            return runs if len(runs) >= count and all(r["state"] in TERMINAL for r in runs) else None

        return wait_until(finished, f"{dag_id}: {count} finished runs (see {self.home / 'logs'})",
                          check=self.airflow.check_alive)

    def validated(self) -> dict[str, tuple[int, str]]:
        found = {}
        for manifest in sorted((self.data / "validated").glob("*/manifest.json")):
            m = json.loads(manifest.read_text())
            found[manifest.parent.name] = (m["rows"], m["version"])
        return found

    def publish_redis(self, message: dict | str, channel: str | None = None) -> None:
        import redis

        channel = channel or self.channel
        client = redis.Redis(host="127.0.0.1", port=6379)
        wait_until(lambda: dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) >= 1,
                   f"a subscriber on {channel} (is the triggerer running the watcher?)", poll=1)
        client.publish(channel, message if isinstance(message, str) else json.dumps(message))

    def labels(self, partition: str) -> tuple[dict, pd.DataFrame]:
        folder = self.data / "labels" / partition
        manifest = json.loads((folder / "manifest.json").read_text())
        return manifest, pd.read_parquet(manifest["uri"].removeprefix("file://")).set_index("listing_id")


def wait_for_dags(airflow, wanted: set[str]) -> None:
    import httpx

    def served() -> bool:
        try:
            airflow.log_in()
            return wanted <= {d["dag_id"] for d in airflow.get("/api/v2/dags", limit=100)["dags"]}
        except (httpx.HTTPError, KeyError, ValueError, OSError):
            return False

    wait_until(served, f"Airflow serving {wanted}", check=airflow.check_alive)


def write_day(stack: Stack, day: int, name: str) -> None:
    pd.DataFrame(day_rows(day)).to_csv(stack.inbox / name, index=False)


def test_a_redis_message_starts_ingest_of_the_partition_it_names(stack):
    write_day(stack, 1, "day1.csv")
    stack.publish_redis({"file": "day1.csv", "partition": "2026-11-01"})
    [run] = stack.wait_runs(f"{NAME}__ingest", 1)
    assert run["state"] == "success" and run["run_type"] == "asset_triggered" and run["logical_date"] is None
    assert list(stack.validated()) == ["2026-11-01"] and stack.validated()["2026-11-01"][0] == 150


def test_the_same_message_twice_does_not_duplicate_data(stack):
    before, count = stack.validated(), len(stack.runs(f"{NAME}__ingest"))
    # One at a time: the redis provider's trigger ends after each message and the triggerer starts it
    # again, and pub/sub keeps nothing for a moment without a subscriber (docs/ingestion.md).
    for delivered in (1, 2):
        stack.publish_redis({"file": "day1.csv", "partition": "2026-11-01"})
        runs = stack.wait_runs(f"{NAME}__ingest", count + delivered)
    assert len(runs) == count + 2 and all(r["state"] == "success" for r in runs)
    assert stack.validated() == before  # same partition, same rows, same version
    assert len(pd.read_parquet(next((stack.data / "validated" / "2026-11-01").glob("data-*.parquet")))) == 150


def test_an_sqs_message_starts_ingest_of_the_partition_it_names(stack):
    count = len(stack.runs(f"{NAME}__ingest"))
    write_day(stack, 2, "day2.csv")
    boto_client("sqs", stack.moto_url).send_message(
        QueueUrl=stack.queue_url, MessageBody=json.dumps({"file": "day2.csv", "partition": "2026-11-02"}))
    wait_for(lambda: "2026-11-02" in stack.validated(), "validated partition 2026-11-02")
    runs = stack.wait_runs(f"{NAME}__ingest", count + 1)
    assert all(r["state"] == "success" for r in runs)
    assert stack.validated()["2026-11-02"][0] == 150


def test_an_upstream_dag_asset_event_starts_ingest(stack):
    count = len(stack.runs(f"{NAME}__ingest"))
    write_day(stack, 3, "day3.csv")
    stack.airflow.trigger("team_upstream_export", {"file": "day3.csv", "partition": "2026-11-03"})
    [upstream] = stack.wait_runs("team_upstream_export", 1)
    assert upstream["state"] == "success"
    wait_for(lambda: "2026-11-03" in stack.validated(), "validated partition 2026-11-03")
    runs = stack.wait_runs(f"{NAME}__ingest", count + 1)
    assert all(r["state"] == "success" for r in runs)
    assert set(stack.validated()) == {"2026-11-01", "2026-11-02", "2026-11-03"}


def test_a_champion_moved_by_hand_is_recorded_and_rescored(stack):
    from mlflow import MlflowClient

    ensure_validated(stack)  # the module's earlier tests made partitions; alone (-k champion) this makes one
    uri = f"sqlite:///{stack.home / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)  # this home's registry, whatever MLFLOW_REGISTRY_URI says
    register_versions(stack, 2)
    stack.airflow.set_paused(f"{NAME}__score", False)
    client.set_registered_model_alias(NAME, "champion", "1")  # in the MLflow UI, by hand
    stack.wait_runs(f"{NAME}__champion_watch", 1)
    wait_for(lambda: list((stack.data / "predictions").glob("*__v1/manifest.json")), "predictions by v1")
    client.set_registered_model_alias(NAME, "champion", "2")
    watch = stack.wait_runs(f"{NAME}__champion_watch", 2)
    assert [r["state"] for r in watch] == ["success", "success"]
    wait_for(lambda: list((stack.data / "predictions").glob("*__v2/manifest.json")), "predictions by v2")
    records = sorted((json.loads(p.read_text()) for p in (stack.data / "promotions").glob("*.json")),
                     key=lambda r: r["decided_at"])
    assert [(r["champion_before"], r["champion_after"], r["decision"]) for r in records] == \
        [(None, "1", "promoted"), ("1", "2", "promoted")]
    assert all("moved outside the pack" in r["approved_by"] for r in records)
    assert str(client.get_model_version_by_alias(NAME, "previous").version) == "1"  # a rollback can undo the move
    # The watcher said why it reported nothing before the model existed, and what it reported after.
    log = (stack.home / "logs" / "triggerer.out").read_text()
    assert f"no registered model '{NAME}' in {uri} yet" in log
    assert f"{NAME}@champion is version 2 in {uri} (last reported: 1): reporting it" in log


def ensure_validated(stack: Stack) -> None:
    """At least one validated partition (the model is trained on them, the score DAG scores them)."""
    if stack.validated():
        return
    write_day(stack, 4, "day4.csv")
    stack.airflow.trigger("team_upstream_export", {"file": "day4.csv", "partition": "2026-11-04"})
    wait_for(lambda: "2026-11-04" in stack.validated(), "validated partition 2026-11-04")
    stack.wait_runs(f"{NAME}__ingest", 1)


def test_a_message_that_names_nothing_fails_the_run_naming_the_message(stack):
    runs = len(stack.runs(f"{NAME}__ingest"))
    stack.publish_redis("day5.csv is ready")  # not JSON: which partition?
    run = stack.wait_runs(f"{NAME}__ingest", runs + 1)[-1]
    assert run["state"] == "failed"
    logs = sorted((stack.home / "logs").glob(
        f"dag_id={NAME}__ingest/run_id={run['dag_run_id']}/task_id=read_files/*.log"))
    assert [p.name for p in logs] == ["attempt=1.log"]  # a malformed message is not retried
    errors = [e for p in logs for e in task_errors(p) if e["exc_type"] in ("MessageError", "AirflowFailException")]
    assert errors, f"no MessageError in the read_files log of {run['dag_run_id']}"
    assert errors[0]["exc_value"].startswith(f"Redis message on channel '{stack.channel}' is not JSON")
    assert "'day5.csv is ready'" in errors[0]["exc_value"]


def task_errors(path) -> list[dict]:
    """The exceptions of a task log (JSON lines: each error record has ``error_detail``)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found.extend(d for d in record.get("error_detail") or [] if isinstance(d, dict) and "exc_type" in d)
    return found


def wait_for(found, what: str):
    return wait_until(found, what)


def register_versions(stack: Stack, count: int) -> None:
    """``count`` versions of a small model trained on the validated data, registered as the pipeline's model."""
    code = f"""
import glob, mlflow, mlflow.sklearn, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from mlops_pack.core.train import trusted_types
mlflow.set_tracking_uri('sqlite:///{stack.home / 'mlflow.db'}')
mlflow.set_registry_uri('sqlite:///{stack.home / 'mlflow.db'}')
mlflow.set_experiment('{NAME}-by-hand')
frame = pd.concat(pd.read_parquet(p) for p in glob.glob('{stack.data}/validated/*/data-*.parquet'))
x = frame[['area_m2', 'rooms', 'age_years', 'distance_km', 'city', 'condition']]
for alpha in range({count}):
    model = make_pipeline(ColumnTransformer([('cat', OneHotEncoder(handle_unknown='ignore'), ['city', 'condition'])],
                                            remainder='passthrough'), Ridge(alpha=1.0 + alpha)).fit(x, frame['price'])
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name='model', registered_model_name='{NAME}',
                                 skops_trusted_types=trusted_types(model))
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env={**stack.airflow.env, "PYTHONPATH": str(REPO / "plugins")})


def test_labels_from_a_redis_message_and_a_rest_event_land_in_the_partition_they_name(stack):
    """labels.kind events: a queue message and a REST asset event each deliver labels into the label
    partition they name; the same labels again change nothing; a changed label is kept and listed."""
    runs = f"{NAME}__labels"
    stack.publish_redis({"partition": "2026-11-01", "labels": [{"listing_id": "a", "price": 100},
                                                               {"listing_id": "b", "price": 200}]},
                        channel=stack.label_channel)
    [run] = stack.wait_runs(runs, 1)
    assert run["state"] == "success" and run["run_type"] == "asset_triggered"
    first, rows = stack.labels("2026-11-01")
    assert first["rows"] == 2 and rows.loc["b", "label"] == 200.0

    [asset] = stack.airflow.get("/api/v2/assets", name_pattern=f"{NAME}.label_inbox")["assets"]
    again = {"partition": "2026-11-01", "labels": [{"listing_id": "a", "price": 100}]}
    stack.airflow.http.post("/api/v2/assets/events", json={"asset_id": asset["id"], "extra": again}
                            ).raise_for_status()
    assert stack.wait_runs(runs, 2)[-1]["state"] == "success"  # delivered again: skipped, nothing written
    assert stack.labels("2026-11-01")[0]["version"] == first["version"]

    changed = {"partition": "2026-11-01", "labels": [{"listing_id": "b", "price": 250}]}
    stack.airflow.http.post("/api/v2/assets/events", json={"asset_id": asset["id"], "extra": changed}
                            ).raise_for_status()
    assert stack.wait_runs(runs, 3)[-1]["state"] == "success"
    manifest, rows = stack.labels("2026-11-01")
    assert manifest["rows"] == 2 and manifest["contradictions"] == 1 and rows.loc["b", "label"] == 250.0
