"""Shadow scoring for real (dag.test): a rejected challenger scores beside the champion, the monitor compares.

Real demo site, GX, MLflow on SQLite, Airflow's DAG runs. The tests run in file order: a champion
(no shadow yet), a worse challenger that the gate rejects, scoring with both, the monitor's comparison.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from tests.operators.test_loop_operators import Pipeline
from tests.support.env import HOME
from tests.support.specs import write_dag_file, write_spec

NAME = "shadowloop"


def events(kind: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                               .where(AssetModel.name == f"{NAME}.{kind}").order_by(AssetEvent.id)).scalars()
        return [dict(e.extra) for e in rows]


class ShadowPipeline(Pipeline):
    def run(self, stage: str, **conf):
        from mlops_pack.dag_factory import build_dags

        return build_dags(self.spec_path)[f"{NAME}__{stage}"].test(run_conf=conf or None)

    def area(self, name: str):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(f"file://{self.root}/{NAME}/{name}")

    def alias(self, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(NAME, alias).version)
        except Exception:  # noqa: BLE001
            return None

    def model(self, version: str):
        import mlflow.sklearn

        return mlflow.sklearn.load_model(f"models:/{NAME}/{version}")

    def predictions(self, partition: str) -> tuple[dict, pd.DataFrame]:
        [manifest] = [m for m in self.manifests("predictions") if m["source_partition"] == partition]
        return manifest, pd.read_parquet(manifest["uri"].removeprefix("file://"))

    def edit_spec(self, old: str, new: str) -> None:
        text = self.spec_path.read_text()
        assert old in text, old
        self.spec_path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def pipeline(airflow_db, demo_site):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{HOME / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{HOME / 'mlflow.db'}")
    url, site = demo_site
    spec = write_spec(HOME / "pipelines", url, name=NAME, **{"min_holdout_rows: 200": "min_holdout_rows: 50",
                                                             "chunk_rows: 200000": "chunk_rows: 150\n  shadow: true"})
    write_dag_file(spec, NAME)
    site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False))
    yield ShadowPipeline(site, spec, HOME / "data")
    site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False))


def test_without_a_challenger_other_than_the_champion_nothing_is_shadow_scored(pipeline):
    for stage in ("ingest", "train", "score"):
        assert pipeline.run(stage).state == "success", stage
    assert pipeline.alias("champion") == pipeline.alias("challenger") == "1"
    manifest, frame = pipeline.predictions("2026-11-01")
    assert manifest["shadow_model_version"] is None
    assert not [c for c in frame.columns if c.startswith("shadow_")]
    assert "shadow_model_version" not in events("predictions")[-1]["partitions"][0]


def test_a_rejected_challenger_scores_the_same_rows_beside_the_champion(pipeline):
    pipeline.edit_spec("max_iter: 150", "max_iter: 3")  # a much weaker challenger on the same data
    assert pipeline.run("train").state == "success"
    assert (pipeline.alias("champion"), pipeline.alias("challenger")) == ("1", "2")
    assert pipeline.client.get_model_version(NAME, "2").tags["decision"] == "rejected"
    before, _ = pipeline.predictions("2026-11-01")

    pipeline.set_day(day=2, shift=True)
    assert pipeline.run("ingest").state == "success"
    assert pipeline.run("score", partitions=["2026-11-01", "2026-11-02"]).state == "success"
    manifest, frame = pipeline.predictions("2026-11-01")
    assert manifest["partition"] == "2026-11-01__v1"  # the champion's partition, replaced in place
    assert manifest["shadow_model_version"] == "2" and manifest["version"] != before["version"]
    validated = pd.read_parquet(
        next(m for m in pipeline.manifests("validated") if m["partition"] == "2026-11-01")["uri"]
        .removeprefix("file://")).set_index("listing_id").loc[frame["listing_id"]]
    features = validated[list(pipeline.model("1").feature_names_in_)]
    np.testing.assert_allclose(frame["prediction"], pipeline.model("1").predict(features))
    np.testing.assert_allclose(frame["shadow_prediction"], pipeline.model("2").predict(features))
    assert set(frame["shadow_model_version"]) == {"2"} and set(frame["model_version"]) == {"1"}
    published = {p["key"]: p for e in events("predictions")[-2:] for p in e["partitions"]}
    assert {k: p["shadow_model_version"] for k, p in published.items()} == {"2026-11-01__v1": "2",
                                                                             "2026-11-02__v1": "2"}


def test_the_monitor_compares_champion_and_challenger_in_its_summary_and_drift_event(pipeline):
    assert pipeline.run("monitor", prediction_partitions=["2026-11-01__v1", "2026-11-02__v1"]).state == "success"
    folder = pipeline.area("reports/drift") / "2026-11-01__v1"
    shadow = json.loads((folder / "summary.json").read_text())["shadow"]
    _, frame = pipeline.predictions("2026-11-01")
    prices = pd.read_parquet(
        next(m for m in pipeline.manifests("validated") if m["partition"] == "2026-11-01")["uri"]
        .removeprefix("file://")).set_index("listing_id")["price"].loc[frame["listing_id"]].to_numpy()
    assert shadow["champion_version"] == "1" and shadow["challenger_version"] == "2"
    assert shadow["rows"] == shadow["labelled_rows"] == len(frame) == 400  # the day's prices are its labels
    assert shadow["mean_abs_difference"] == pytest.approx(
        np.abs(frame["prediction"] - frame["shadow_prediction"]).mean(), rel=1e-6)
    assert shadow["champion_error"] == pytest.approx(np.abs(frame["prediction"] - prices).mean(), rel=1e-6)
    assert shadow["challenger_error"] == pytest.approx(np.abs(frame["shadow_prediction"] - prices).mean(), rel=1e-6)
    assert shadow["challenger_error"] > shadow["champion_error"]  # why the gate rejected it
    # The shifted day drifts: its event carries the comparison on that day's rows.
    [event] = events("drift")
    assert event["partition"] == "2026-11-02__v1"
    assert event["shadow"]["challenger_version"] == "2" and event["shadow"]["rows"] == 400
    assert event["shadow"]["prediction_partitions"] == ["2026-11-02__v1"]


def promotion_records() -> list[dict]:
    from airflow.sdk import ObjectStoragePath

    folder = ObjectStoragePath(f"file://{HOME / 'data'}/{NAME}/promotions")
    return sorted((json.loads(p.read_text()) for p in folder.iterdir() if p.name.endswith(".json")),
                  key=lambda r: r["decided_at"])


def test_production_evidence_judges_the_challenger_on_the_labelled_rows_both_models_scored(pipeline):
    """promotion.production_evidence: the rejected challenger, judged again on the shadow-scored days once
    their labels arrived, is refused with the paired CI; too few labelled rows refuse saying how many."""
    pipeline.edit_spec("\npromotion:\n", "\nlabels:\n  kind: later_partitions\n  min_labelled: 50\npromotion:\n"
                       "  production_evidence: {min_rows: 100000}\n")
    assert pipeline.run("labels").state == "success"  # the validated days' prices label the keys scored
    assert pipeline.run("train", judge_challenger=True).state == "success"
    assert pipeline.alias("champion") == "1" and pipeline.alias("challenger") == "2"
    record = promotion_records()[-1]
    evidence = record["production_evidence"]
    assert record["decision"] == "rejected" and (evidence["challenger_version"], evidence["champion_version"]) == (
        "2", "1")
    assert evidence["partitions"] == ["2026-11-01__v1", "2026-11-02__v1"] and not evidence["passed"]
    # Rows either model trained on (day 1's training split) are not evidence; the rest are, once each.
    assert 0 < evidence["rows"] == evidence["cleaned"]["rows_used"] < 800
    assert f"not enough labelled production rows: {evidence['rows']} scored by both champion v1 and challenger v2" \
        in record["reason"]

    pipeline.edit_spec("min_rows: 100000", "min_rows: 50")
    assert pipeline.run("train", judge_challenger=True).state == "success"
    record = promotion_records()[-1]
    evidence, gate = record["production_evidence"], pipeline.client.get_model_version(NAME, "2").tags
    [interval] = evidence["intervals"]
    assert record["decision"] == "rejected" and gate["decision"] == "rejected" and not evidence["passed"]
    assert interval["metric"] == "rmse" and interval["high"] < 0  # the weak challenger: worse on production rows
    assert f"does not beat the champion on {evidence['rows']} production rows" in record["reason"]
    assert f"CI [{interval['low']:.4g}, {interval['high']:.4g}]" in record["reason"]
    assert pipeline.alias("champion") == "1"
