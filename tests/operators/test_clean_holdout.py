"""The gate never scores the champion on a row it trained on, with a stratified (random) holdout.

scikit-learn's wine data served by a local site, one day per partition (ids unique per day), a
3-class classifier with ``model.stratify: true``, run for real (dag.test, GX, MLflow on SQLite). Day 1
makes champion v1. Day 2's retrain holds out a stratified sample of days 1 and 2, so part of its
holdout is day-1 rows v1 trained on: the gate must leave them out, record how many, refuse when too
few rows are left, and score both models on the same clean rows otherwise. The tests run in file order.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from tests.cli.dataset_site import Site, serve, spec_yaml
from tests.support.env import HOME
from tests.support.specs import write_dag_file

NAME = "winegate"
METRICS = "    log_loss: {min_delta: 0.0}\n    accuracy: {min: 0.5}"
MIN_ROWS = 60  # between the day-2 holdout's clean rows (~43 of 71) and all of its rows: the refusal case


class Wine:
    def __init__(self, site: Site, spec_path):
        self.site, self.spec_path = site, spec_path

    def run(self, stage: str) -> str:
        from mlops_pack.dag_factory import build_dags

        return build_dags(self.spec_path)[f"{NAME}__{stage}"].test().state

    def set_min_rows(self, rows: int) -> None:
        text = self.spec_path.read_text()
        self.spec_path.write_text(text.replace(text[text.index("  min_holdout_rows:"):].split("\n")[0],
                                               f"  min_holdout_rows: {rows}"))

    @property
    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(f"sqlite:///{HOME / 'mlflow.db'}")

    def champion(self) -> str:
        return str(self.client.get_model_version_by_alias(NAME, "champion").version)

    def tags(self, version: str) -> dict[str, str]:
        return self.client.get_model_version(NAME, version).tags

    def frame(self, uri: str) -> pd.DataFrame:
        from mlops_pack.core.storage import read_partition

        return read_partition(ObjectStoragePath(uri).parent)

    def record(self, version: str) -> dict:
        folder = ObjectStoragePath(f"file://{HOME / 'data'}/{NAME}/promotions")
        [record] = [json.loads(p.read_text()) for p in folder.iterdir() if f"_v{version}_" in p.name]
        return record


@pytest.fixture(scope="module")
def wine(airflow_db):
    site = Site({"wine": None})
    site.set_day("wine", 1)
    server = serve(site)
    host = f"127.0.0.1:{server.server_address[1]}"
    spec = HOME / "pipelines" / f"{NAME}.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(spec_yaml("wine", site.days["wine"].features, host, metrics=METRICS, retrain="[new_data]",
                              stratify=True, min_holdout_rows=20).replace("name: wine", f"name: {NAME}"))
    write_dag_file(spec, NAME)
    yield Wine(site, spec)
    server.shutdown()


def test_first_champion_is_judged_on_its_whole_holdout(wine):
    assert wine.run("ingest") == "success" and wine.run("train") == "success"
    assert wine.champion() == "1"
    holdout = wine.record("1")["holdout"]
    assert holdout["removed"] == [] and holdout["rows_used"] == holdout["source_rows"] == 36  # 20% of 178
    assert wine.tags("1")["gate_holdout_removed"] == "0"


def test_too_few_rows_left_after_removing_the_champions_training_rows_refuses(wine):
    wine.site.set_day("wine", 2)
    wine.set_min_rows(MIN_ROWS)
    assert wine.run("ingest") == "success" and wine.run("train") == "success"
    tags = wine.tags("2")
    holdout, champion_train = wine.frame(tags["holdout_uri"]), wine.frame(wine.tags("1")["train_uri"])
    seen = holdout["id"].isin(champion_train["id"])
    assert len(holdout) >= MIN_ROWS > (~seen).sum() > 0  # the old gate would have judged on all of them
    record = wine.record("2")
    assert record["decision"] == "rejected" and wine.champion() == "1"
    assert record["reason"].startswith(f"clean holdout has {(~seen).sum()} rows, fewer than "
                                       f"min_holdout_rows={MIN_ROWS}: {seen.sum()} of {len(holdout)} rows removed "
                                       f"({seen.sum()} champion v1 trained on)")
    assert record["holdout"]["rows_used"] == record["holdout_rows"] == (~seen).sum()
    assert record["holdout"]["removed"][0]["model"] == "champion v1"
    assert set(record["holdout"]["removed"][0]["examples"]) <= set(holdout["id"][seen])
    assert (tags["decision"], tags["gate_holdout_rows"], tags["gate_holdout_removed"]) == (
        "rejected", str((~seen).sum()), str(seen.sum()))


def test_the_champion_is_scored_only_on_rows_neither_model_trained_on(wine):
    wine.set_min_rows(20)
    assert wine.run("train") == "success"  # the same window and seed: the same holdout as v2's
    tags = wine.tags("3")
    assert tags["holdout_uri"] == wine.tags("2")["holdout_uri"]
    holdout, champion_train = wine.frame(tags["holdout_uri"]), wine.frame(wine.tags("1")["train_uri"])
    seen = holdout["id"].isin(champion_train["id"])
    record = wine.record("3")
    assert record["champion_before"] == "1" and record["decision"] in {"promoted", "rejected"}
    assert (record["holdout"]["rows_used"], record["holdout"]["rows_removed"]) == ((~seen).sum(), seen.sum())
    assert record["holdout_rows"] == (~seen).sum()

    # The champion's logged log_loss is its log_loss on the clean rows, not on the holdout it partly memorised.
    import mlflow.sklearn
    from mlops_pack.core.metrics import compute, predictions_of

    mlflow.set_registry_uri(f"sqlite:///{HOME / 'mlflow.db'}")
    v1 = mlflow.sklearn.load_model(f"models:/{NAME}/1")
    features = [c for c in holdout.columns if c not in ("id", "day", "label")]

    def log_loss(rows: pd.DataFrame) -> float:
        return compute("log_loss", rows["label"].to_numpy(), predictions_of(v1, rows[features], "classification", True))

    clean, memorised = log_loss(holdout[~seen]), log_loss(holdout[seen])
    assert record["champion_metrics"]["log_loss"] == pytest.approx(clean, rel=1e-9)
    assert memorised < clean  # what the old gate mixed in: rows v1 had seen look easy to it
    assert record["champion_metrics"]["log_loss"] != pytest.approx(log_loss(holdout), rel=1e-6)
    interval = record["intervals"][0]
    assert interval["metric"] == "log_loss" and np.isfinite(interval["low"])

    # The health page shows this very comparison: both models on the same clean rows, from the record.
    from mlops_pack.ui.health import gather, render

    html = render(gather(NAME, ObjectStoragePath(f"file://{HOME / 'data'}/{NAME}")))
    assert f"v3 vs v1 ({(~seen).sum()} rows)" in html
    assert f"<td>{(~seen).sum()} ({seen.sum()} removed)</td>" in html
    low, high = interval["champion_ci"]
    assert f"<td>{interval['champion']:.4g} [{low:.4g}, {high:.4g}]</td><td>{interval['challenger']:.4g} [" in html
