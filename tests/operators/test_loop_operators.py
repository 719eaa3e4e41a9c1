"""Each operator run for real inside its DAG (dag.test): real HTTP site, GX, MLflow on SQLite, Evidently.

The tests share one pipeline and run in file order, as the loop does: ingest, train, score, monitor,
then a shifted day (drift), then a corrupt day (quarantine).
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from tests.support.env import HOME
from tests.support.specs import write_dag_file, write_spec

NAME = "oploop"


class Pipeline:
    def __init__(self, site, spec_path, root):
        self.site, self.root, self.spec_path = site, root, spec_path

    def run(self, stage: str, **conf):
        from mlops_pack.dag_factory import build_dags

        # A fresh DAG each run: dag.test() keeps the last run_conf in the DAG's params.
        return build_dags(self.spec_path)[f"{NAME}__{stage}"].test(run_conf=conf or None)

    def state(self) -> dict[str, list[tuple]]:
        """(partition, rows, version) of every complete partition of every data area."""
        return {area: [(m["partition"], m["rows"], m["version"]) for m in self.manifests(area)]
                for area in ("raw", "validated", "training", "predictions", "reports/drift")}

    def area(self, name: str) -> ObjectStoragePath:
        return ObjectStoragePath(f"file://{self.root}/{NAME}/{name}")

    def manifests(self, area: str) -> list[dict]:
        from mlops_pack.core.storage import list_partitions

        if area == "training":  # training/<window>/{train,holdout}
            root = self.area(area)
            return [m for f in (root.iterdir() if root.exists() else []) for m in list_partitions(f)]
        return list_partitions(self.area(area))

    def set_day(self, **changes) -> None:
        self.site.set_state(dataclasses.replace(self.site.state, **changes))

    @property
    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(f"sqlite:///{HOME / 'mlflow.db'}")

    def alias(self, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(NAME, alias).version)
        except Exception:  # noqa: BLE001
            return None


def asset_events(kind: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                               .where(AssetModel.name == f"{NAME}.{kind}").order_by(AssetEvent.id)).scalars()
        return [dict(e.extra) for e in rows]


@pytest.fixture(scope="module")
def pipeline(airflow_db, demo_site):
    url, site = demo_site
    # 400 listings a day hold out 80 rows: let the gate judge them
    spec = write_spec(HOME / "pipelines", url, name=NAME, **{"min_holdout_rows: 200": "min_holdout_rows: 50"})
    # dag.test() runs DAGs of the dags-folder bundle, so the pipeline gets a thin DAG file there.
    write_dag_file(spec, NAME)
    site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False))
    yield Pipeline(site, spec, HOME / "data")
    site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False))


def test_ingest_writes_a_validated_partition_named_by_its_data_and_event(pipeline):
    assert pipeline.run("ingest").state == "success"
    [manifest] = pipeline.manifests("validated")
    assert manifest["rows"] == 400 and manifest["partition"] == "2026-11-01"  # the listings' date, not the run
    frame = pd.read_parquet(manifest["uri"].removeprefix("file://"))
    assert frame["listing_id"].is_unique and frame["price"].notna().all()
    [event] = asset_events("validated")
    [published] = event["partitions"]
    assert published == {"key": "2026-11-01", **{k: manifest[k] for k in ("uri", "folder", "version", "rows")}}


def test_reingesting_the_same_day_changes_no_row_and_no_version(pipeline):
    from mlops_pack.core.storage import partition_history

    before = pipeline.state()
    assert pipeline.run("ingest").state == "success"  # a manual re-trigger of the same data day
    assert pipeline.state() == before
    history = partition_history(pipeline.area("validated/2026-11-01"))
    assert [m["version"] for m in history] == [before["validated"][0][2]]  # the replaced manifest is kept
    assert asset_events("validated")[-1]["partitions"][0]["version"] == before["validated"][0][2]


def test_train_registers_and_promotes_the_first_model(pipeline):
    assert pipeline.run("train").state == "success"
    assert pipeline.alias("champion") == "1"
    version = pipeline.client.get_model_version(NAME, "1")
    assert version.tags["decision"] == "promoted"
    assert version.tags["reason"].startswith("first model")
    run = pipeline.client.get_run(version.run_id)
    assert float(run.data.metrics["holdout_r2"]) > 0.5
    assert run.data.tags["airflow.dag_id"] == f"{NAME}__train"
    # The attempt that made them, on the run and the version (set at creation: core/attempts.py)
    for tags in (run.data.tags, version.tags):
        assert (tags["airflow.task_id"], tags["airflow.try_number"], tags["airflow.map_index"]) == ("train", "1", "-1")
        assert tags["airflow.run_id"] == run.data.tags["airflow.run_id"]
    assert "attempt_status" not in version.tags
    assert pipeline.alias("challenger") == "1"
    digests = {i.tags[0].value: i.dataset.digest for i in run.inputs.dataset_inputs}
    assert set(digests) == {"training", "holdout"}
    assert digests["training"] == run.data.tags["data_version"] == version.tags["data_version"]
    figures = {f.path for f in pipeline.client.list_artifacts(run.info.run_id, "review")}
    assert figures == {"review/feature_importance.png", "review/residuals.png"}
    [record] = [json.loads(p.read_text()) for p in pipeline.area("promotions").iterdir()]
    assert record["champion_before"] is None and record["champion_after"] == "1"
    assert asset_events("champion")[-1]["version"] == "1"


def test_score_writes_one_prediction_partition_per_data_partition_and_version(pipeline):
    assert pipeline.run("score").state == "success"
    [manifest] = pipeline.manifests("predictions")
    assert manifest["partition"] == "2026-11-01__v1" and manifest["source_partition"] == "2026-11-01"
    frame = pd.read_parquet(manifest["uri"].removeprefix("file://"))
    assert len(frame) == 400 == manifest["rows"]
    assert set(frame["model_version"]) == {"1"} and set(frame["model_name"]) == {NAME}
    assert frame["scoring_run_id"].str.startswith("manual__").all()
    assert frame["prediction"].between(1e4, 5e6).all()


def test_rescoring_the_same_data_replaces_instead_of_adding(pipeline):
    before = pipeline.state()
    assert pipeline.run("score", partitions=["2026-11-01"]).state == "success"
    assert pipeline.state() == before


def test_monitor_on_same_market_finds_no_drift(pipeline):
    assert pipeline.run("monitor").state == "success"
    [folder] = [f for f in pipeline.area("reports/drift").iterdir()]
    assert folder.name == "2026-11-01__v1"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["drift"] is False and summary["drifted_columns"] == []
    assert (folder / "report.html").stat().st_size > 10_000
    page = (folder / "report.html").read_text()  # drawn from the profile (drift.report: profile): every row
    assert "Dataset Drift is NOT detected" in page and "Current: all 400 rows" in page and "No sample" in page
    assert summary["sampled"] is None and summary["report_drifted_columns"] == summary["drifted_columns"]
    report = json.loads((folder / "report.json").read_text())
    assert report["current_rows"] == 400 and set(report["columns"]) == set(summary["columns"])
    assert asset_events("drift") == []
    before = pipeline.state()
    assert pipeline.run("monitor").state == "success"  # the same predictions checked again
    assert pipeline.state() == before


def test_shifted_market_is_reported_as_drift_with_its_columns(pipeline):
    pipeline.set_day(day=2, shift=True)
    for stage in ("ingest", "score", "monitor"):
        assert pipeline.run(stage).state == "success", stage
    [event] = asset_events("drift")
    assert event["share"] >= 0.5
    assert {"area_m2", "distance_km", "age_years"} <= set(event["drifted_columns"])
    assert event["model_version"] == "1"


def test_the_model_card_of_v1_holds_its_window_decision_and_the_drift_since(pipeline):
    """Written when the gate decided, rewritten by each drift report of v1's predictions; logged to MLflow."""
    folder = pipeline.area("reports/model_cards/v1")
    card = json.loads((folder / "card.json").read_text())
    [validated] = [m for m in pipeline.manifests("validated") if m["partition"] == "2026-11-01"]
    assert card["data"]["partitions"] == [{"key": "2026-11-01", "version": validated["version"], "rows": 400,
                                           "folder": validated["folder"]}]
    version = pipeline.client.get_model_version(NAME, "1")
    assert card["data"]["train"]["version"] == version.tags["data_version"]
    assert card["code"]["model"] == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert card["code"]["libraries"]["scikit-learn"] and card["params"]["random_state"] == "0"
    assert {m["metric"] for m in card["holdout_metrics"]} >= {"rmse", "r2"}
    assert [(d["decision"], d["approved_by"]) for d in card["decisions"]] == [("promoted", "policy")]
    assert card["gate"]["reason"].startswith("first model")
    assert [(d["partition"], d["drift"]) for d in card["drift"]] == [("2026-11-01__v1", False), ("2026-11-02__v1", True)]
    page = (folder / "card.html").read_text()
    assert "Model card: oploop v1" in page and "2026-11-02__v1" in page
    assert version.tags["model_card"] == f"/mlops/files/{NAME}/reports/model_cards/v1/card.html"
    logged = {f.path for f in pipeline.client.list_artifacts(version.run_id, "model_card")}
    assert logged == {"model_card/card.json", "model_card/card.html"}
    inputs = {f.path for f in pipeline.client.list_artifacts(version.run_id, "reproduce")}
    assert inputs == {"reproduce/inputs.json"}


def test_retrain_after_drift_records_its_decision(pipeline):
    assert pipeline.run("train").state == "success"
    version = pipeline.client.get_model_version(NAME, "2")
    assert version.tags["decision"] in {"promoted", "rejected"}
    assert version.tags["evaluated_against"] == "1"
    if version.tags["decision"] == "promoted":
        assert (pipeline.alias("champion"), pipeline.alias("previous")) == ("2", "1")
    else:
        assert pipeline.alias("champion") == "1"


def records() -> list[dict]:
    folder = ObjectStoragePath(f"file://{HOME / 'data'}/{NAME}/promotions")
    return sorted((json.loads(p.read_text()) for p in folder.iterdir()), key=lambda r: r["decided_at"])


def test_rollback_restores_the_previous_champion_and_records_it(pipeline):
    assert (pipeline.alias("champion"), pipeline.alias("previous")) == ("2", "1")  # the shifted retrain won
    assert pipeline.run("rollback", reason="v2 misprices old flats").state == "success"
    assert (pipeline.alias("champion"), pipeline.alias("previous")) == ("1", "2")
    last = records()[-1]
    assert last["decision"] == "rolled_back" and last["reason"].endswith("v2 misprices old flats")
    assert (last["champion_before"], last["champion_after"]) == ("2", "1")
    assert asset_events("champion")[-1]["version"] == "1"
    assert pipeline.run("rollback", target_version="2").state == "success"
    assert (pipeline.alias("champion"), pipeline.alias("previous")) == ("2", "1")


def test_rollback_refuses_a_version_that_failed_the_gate(pipeline):
    training = pipeline.state()["training"]
    assert pipeline.run("train").state == "success"  # same data again: an identical challenger, rejected
    assert pipeline.state()["training"] == training  # the same window is the same training set
    rejected = pipeline.client.get_model_version(NAME, "3")
    assert rejected.tags["decision"] == "rejected" and rejected.tags["reason"].startswith("not better")
    assert pipeline.run("rollback", target_version="3").state == "failed"
    assert (pipeline.alias("champion"), pipeline.alias("previous")) == ("2", "1")


def test_corrupt_day_is_quarantined_and_touches_no_model(pipeline, capfd):
    champion = pipeline.alias("champion")
    validated_before = len(asset_events("validated"))
    pipeline.set_day(day=3, shift=False, corrupt=True)
    capfd.readouterr()
    assert pipeline.run("ingest").state == "failed"
    log = capfd.readouterr()
    assert "ALERT: oploop partition" in log.out + log.err
    assert "failed validation" in log.out + log.err
    quarantined = [f for f in pipeline.area("quarantine").iterdir() if (f / "validation.json").exists()]
    [folder] = quarantined
    result = json.loads((folder / "validation.json").read_text())
    assert not result["success"]
    assert any(f["column"] == "area_m2" for f in result["failures"])
    assert folder.name == "2026-11-03"
    assert [p for p in folder.iterdir() if p.name.startswith("data-")] and (folder / "ingest_rejects.jsonl").exists()
    assert len(asset_events("validated")) == validated_before
    assert pipeline.alias("champion") == champion
    assert folder.name not in {m["partition"] for m in pipeline.manifests("validated")}


def test_the_gate_leaves_out_holdout_rows_the_model_trained_on(pipeline):
    from mlops_pack.core.storage import read_partition, write_partition
    from mlops_pack.operators.promote import MlflowEvaluateOperator

    version = pipeline.alias("champion")
    tags = pipeline.client.get_model_version(NAME, version).tags
    holdout_folder = ObjectStoragePath(tags["holdout_uri"]).parent
    holdout = read_partition(holdout_folder)
    train = read_partition(ObjectStoragePath(tags["train_uri"]).parent)
    # What a re-triggered day did before partitions were named by their data: copies of training rows.
    write_partition(holdout_folder, pd.concat([holdout, train.head(5)], ignore_index=True))
    try:
        gate = MlflowEvaluateOperator(task_id="evaluate", spec_path=str(pipeline.spec_path),
                                      challenger_version=version)
        verdict = gate.evaluate(version, None)
    finally:
        write_partition(holdout_folder, holdout)
    assert verdict["holdout_rows"] == len(holdout)  # judged on the clean rows only
    [removed] = verdict["holdout"]["removed"]
    assert removed["model"] == f"challenger v{version}" and removed["rows"] == 5
    assert set(removed["examples"]) <= set(train["listing_id"].head(5))


def test_the_gate_refuses_a_version_a_retried_train_marked_abandoned(pipeline):
    from mlops_pack.operators.base import AbandonedVersion
    from mlops_pack.operators.promote import MlflowEvaluateOperator

    version = pipeline.alias("champion")
    marks = {"attempt_status": "abandoned", "abandoned_reason": "try 1 of train stopped before finishing",
             "superseded_by": f"{NAME}__train/manual__x/train try 2"}
    for key, value in marks.items():
        pipeline.client.set_model_version_tag(NAME, version, key, value)
    try:
        gate = MlflowEvaluateOperator(task_id="evaluate", spec_path=str(pipeline.spec_path),
                                      challenger_version=version)
        with pytest.raises(AbandonedVersion, match=rf"{NAME} version {version} is tagged attempt_status=abandoned "
                                                    rf".*superseded by {NAME}__train/manual__x/train try 2"):
            gate.evaluate(version, None)
    finally:
        for key in marks:
            pipeline.client.delete_model_version_tag(NAME, version, key)


def reproduce(version: str, tmp_path) -> tuple[int, dict, str]:
    """``mlops-pack reproduce`` of ``version`` as a user runs it (this test home's Airflow configuration):
    (exit code, the report it writes with --json, what it printed)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / f"reproduce-v{version}.json"
    done = subprocess.run([str(Path(sys.executable).parent / "mlops-pack"), "reproduce", NAME, version, "--json",
                           str(out)], capture_output=True, text=True, env=os.environ, timeout=900)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, json.loads(out.read_text()), done.stdout


def window_of(version: str) -> tuple[list[str], int]:
    """(the partitions ``version`` trained on, the rows of its holdout), from what the registry says."""
    from mlflow import MlflowClient
    from mlops_pack.core.storage import read_manifest

    tags = MlflowClient(f"sqlite:///{HOME / 'mlflow.db'}").get_model_version(NAME, version).tags
    return tags["data_partitions"].split(","), read_manifest(ObjectStoragePath(tags["holdout_uri"]).parent)["rows"]




def test_reproduce_rebuilds_the_champion_bit_for_bit_from_its_records(pipeline, tmp_path):
    version = pipeline.alias("champion")
    code, report, printed = reproduce(version, tmp_path)
    assert code == 0, report
    assert report["reproduced"] and report["data"] == [] and report["libraries"] == [] and report["code"] == []
    partitions, rows = window_of(version)
    assert report["partitions_checked"] == partitions
    assert report["predictions"] == {"identical": True, "rows": rows, "differing_rows": 0, "max_abs_diff": 0.0}
    assert f"{NAME} v{version}: REPRODUCED" in printed and f"identical, bit for bit, on {rows} rows" in printed
    kept = json.loads((pipeline.area(f"reports/reproduce/v{version}") / "report.json").read_text())
    assert kept["reproduced"] is True
    card = json.loads((pipeline.area(f"reports/model_cards/v{version}") / "card.json").read_text())
    assert card["reproduce"]["reproduced"] is True  # the card shows the check


def test_reproduce_names_a_partition_whose_file_changed_and_fails(pipeline, tmp_path):
    version = pipeline.alias("champion")
    changed_key = window_of(version)[0][-1]
    [manifest] = [m for m in pipeline.manifests("validated") if m["partition"] == changed_key]
    data_file = ObjectStoragePath(manifest["uri"])
    original = data_file.read_bytes()
    frame = pd.read_parquet(manifest["uri"].removeprefix("file://"))
    frame.loc[0, "price"] = frame.loc[0, "price"] * 2  # one row's label edited in place, manifest untouched
    frame.to_parquet(manifest["uri"].removeprefix("file://"), index=False)
    try:
        code, report, printed = reproduce(version, tmp_path)
    finally:
        data_file.write_bytes(original)
    assert code == 1 and not report["reproduced"]
    [changed] = report["data"]
    assert changed["partition"] == changed_key and changed["recorded"] == manifest["version"]
    assert "changed in place" in changed["problem"] and manifest["uri"] in changed["problem"]
    assert not report["predictions"]["identical"]
    assert f"{NAME} v{version}: NOT REPRODUCED" in printed and f"data differs: partition {changed_key}" in printed
