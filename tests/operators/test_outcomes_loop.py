"""Labels and realized performance for real (dag.test): demo site, GX, MLflow on SQLite, Parquet storage.

The tests run in file order: a champion scored on day 1 and labelled by its own validated data (no
decay), then a day whose inputs keep their distribution while prices follow another rule (concept
drift): the same champion's realized rmse on it decays and the performance asset carries the
evidence. Label files: contradictions are listed, a re-delivered file changes nothing.
"""

from __future__ import annotations

import json

import pytest

from tests.operators.test_loop_operators import Pipeline
from tests.support.env import HOME
from tests.support.specs import write_dag_file, write_spec
from tests.support.webhook import webhook_receiver

NAME = "outloop"
LABELS = ("\npromotion:\n", "\nalerts:\n  webhook_conn_id: outloop_hook\n  events: [decay]\n"
          "retrain:\n  triggers: [drift, performance]\nlabels:\n  kind: later_partitions\n"
          "  min_labelled: 50\n  decay: {max_relative_drop: 0.25}\npromotion:\n")


def events(name: str, kind: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                               .where(AssetModel.name == f"{name}.{kind}").order_by(AssetEvent.id)).scalars()
        return [dict(e.extra) for e in rows]


class OutcomePipeline(Pipeline):
    name = NAME

    def run(self, stage: str, **conf):
        from mlops_pack.dag_factory import build_dags

        return build_dags(self.spec_path)[f"{self.name}__{stage}"].test(run_conf=conf or None)

    def area(self, name: str):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(f"file://{self.root}/{self.name}/{name}")

    def record(self, partition: str) -> dict:
        return json.loads((self.area("performance") / partition / "summary.json").read_text())

    def task_state(self, run, task_id: str) -> str:
        return next(ti.state for ti in run.get_task_instances() if ti.task_id == task_id)


@pytest.fixture(scope="module")
def pipeline(airflow_db, demo_site):
    import dataclasses

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{HOME / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{HOME / 'mlflow.db'}")
    url, site = demo_site
    spec = write_spec(HOME / "pipelines", url, name=NAME, **{"min_holdout_rows: 200": "min_holdout_rows: 50",
                                                             LABELS[0]: LABELS[1]})
    write_dag_file(spec, NAME)
    site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False, price_factor=1.0))
    with webhook_receiver("outloop_hook") as alerts:
        pipeline = OutcomePipeline(site, spec, HOME / "data")
        pipeline.alerts = alerts
        yield pipeline
    site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False, price_factor=1.0))


def test_validated_data_becomes_label_partitions_and_a_redelivery_changes_nothing(pipeline):
    for stage in ("ingest", "train", "score", "labels"):
        assert pipeline.run(stage).state == "success", stage
    [manifest] = pipeline.manifests("labels")
    assert manifest["partition"] == "2026-11-01" and manifest["rows"] == 400 and manifest["contradictions"] == 0
    assert events(NAME, "labels")[-1]["partitions"][0]["key"] == "2026-11-01"
    assert pipeline.run("labels").state == "success"  # nothing new: the task skips, no event
    assert len(events(NAME, "labels")) == 1
    assert pipeline.run("labels", partitions=["2026-11-01"]).state == "success"  # delivered again
    [again] = pipeline.manifests("labels")
    assert (again["version"], again["first_arrived_at"]) == (manifest["version"], manifest["first_arrived_at"])


def test_the_champion_on_the_data_it_learned_from_has_not_decayed(pipeline):
    run = pipeline.run("outcomes")
    assert run.state == "success"
    record = pipeline.record("2026-11-01__v1")
    assert record["status"] == "ok" and record["model_version"] == "1"
    assert record["labelled_rows"] == record["predicted_rows"] == 400 and record["coverage"] == 1.0
    tags = pipeline.client.get_model_version(NAME, "1").tags
    assert record["baselines"]["rmse"] == pytest.approx(float(tags["holdout_rmse"]))
    assert not record["decayed"] and [d["metric"] for d in record["decay"]] == ["rmse", "r2"]
    assert pipeline.task_state(run, "signal_decay") == "skipped" and events(NAME, "performance") == []


def test_concept_drift_decays_the_champion_and_the_performance_event_carries_the_evidence(pipeline):
    pipeline.set_day(day=2, price_factor=1.5)  # the same inputs' distribution, prices half as high again
    for stage in ("ingest", "score", "labels", "outcomes"):
        assert pipeline.run(stage).state == "success", stage
    record = pipeline.record("2026-11-02__v1")
    assert record["decayed"]
    rmse = next(d for d in record["decay"] if d["metric"] == "rmse")
    assert rmse["decay"] and rmse["low"] > 1.25 * record["baselines"]["rmse"]
    [event] = events(NAME, "performance")
    assert event["model_version"] == "1" and event["partitions"] == [{"key": "2026-11-02__v1"}]
    assert "rmse" in event["reason"] and any(e["metric"] == "rmse" for e in event["evidence"])
    assert not pipeline.record("2026-11-01__v1")["decayed"]  # the first day's record is kept as it was
    run = pipeline.run("outcomes")  # nothing new: every record is up to date, no second event
    assert pipeline.task_state(run, "realized_performance") == "skipped" and len(events(NAME, "performance")) == 1
    # People see it: one decay alert, and an Evidently quality report of the labelled rows, linked.
    [(_, _, alert)] = pipeline.alerts
    assert alert["event"]["event"] == "decay" and alert["event"]["partition"] == "2026-11-02__v1"
    assert "/files/outloop/reports/quality/2026-11-02__v1/report.html" in alert["text"]
    quality = record["quality_report"]
    assert quality["path"] == "reports/quality/2026-11-02__v1/report.html" and quality["sampled_rows"] == 400
    assert quality["metrics"]["RMSE"] == pytest.approx(rmse["realized"], rel=1e-6)  # all 400 rows sampled
    assert "<!DOCTYPE html>" in (pipeline.area("reports/quality") / "2026-11-02__v1" / "report.html").read_text()
    # The same decay judged again (asked for) signals again but does not alert twice.
    assert pipeline.run("outcomes", prediction_partitions=["2026-11-02__v1"]).state == "success"
    assert len(events(NAME, "performance")) == 2 and len(pipeline.alerts) == 1


def test_label_files_list_contradictions_and_a_redelivered_file_changes_nothing(airflow_db):
    import os

    inbox = HOME / "label-inbox"  # beside the other test pipelines: their DAG files outlive the test
    inbox.mkdir()
    (inbox / "batch-1.csv").write_text("listing_id,price\na,100\nb,200\nc,\n")
    (inbox / "batch-2.csv").write_text("listing_id,price\nb,250\nd,400\nd,410\n")
    files = ("\npromotion:\n", f"\nlabels:\n  kind: files\n  url: file://{inbox}\n  pattern: '*.csv'\npromotion:\n")
    spec = write_spec(HOME / "pipelines", "http://127.0.0.1:9", name="labelfiles", **{files[0]: files[1]})
    write_dag_file(spec, "labelfiles")
    pipeline = OutcomePipeline(None, spec, HOME / "data")
    pipeline.name = "labelfiles"
    assert pipeline.run("labels").state == "success"
    by_key = {m["partition"]: m for m in pipeline.manifests("labels")}
    assert {k: (m["rows"], m["rejects"]) for k, m in by_key.items()} == {"batch-1": (2, 1), "batch-2": (2, 0)}
    listed = [json.loads(line) for line in
              (pipeline.area("labels") / "batch-2" / "contradictions.jsonl").read_text().splitlines()]
    assert {(c["key"], c["label"], c["contradicts"]) for c in listed} == {("d", 410.0, 400.0), ("b", 250.0, 200.0)}
    run = pipeline.run("labels")
    assert pipeline.task_state(run, "labels") == "skipped"  # no new or changed file
    (inbox / "batch-1.csv").write_text("listing_id,price\na,100\nb,200\nc,\n")  # delivered again
    os.utime(inbox / "batch-1.csv", (1, 1))  # a new modification time: the file counts as changed
    assert pipeline.task_state(pipeline.run("labels"), "labels") == "success"
    again = {m["partition"]: m for m in pipeline.manifests("labels")}
    assert again["batch-1"]["version"] == by_key["batch-1"]["version"]
    assert again["batch-1"]["first_arrived_at"] == by_key["batch-1"]["first_arrived_at"]
