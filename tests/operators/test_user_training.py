"""Training a data scientist owns, run for real (dag.test: demo site, GX, MLflow on SQLite, Optuna on SQLite).

One pipeline, in file order: a day is ingested once; the train DAG trains and promotes the user's own
pipeline function (tests/user_code); then the spec gains a search and the train DAG runs its trials as
mapped tasks.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.env import HOME
from tests.support.specs import write_dag_file, write_spec

NAME = "owncode"
DEFAULT_MODEL = ("  estimator: sklearn.ensemble.HistGradientBoostingRegressor\n"
                 "  params: {max_iter: 150, learning_rate: 0.1, random_state: 0}\n")
OWN_MODEL = "  pipeline: tests.user_code.price_models:price_pipeline\n  params: {max_iter: 60}\n"


class Pipeline:
    def __init__(self, spec_path):
        self.spec_path = spec_path

    def run(self, stage: str):
        from mlops_pack.dag_factory import build_dags

        return build_dags(self.spec_path)[f"{NAME}__{stage}"].test()

    def edit(self, old: str, new: str) -> None:
        text = self.spec_path.read_text()
        assert old in text, old
        self.spec_path.write_text(text.replace(old, new))

    @property
    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(f"sqlite:///{HOME / 'mlflow.db'}")

    def version(self, alias: str):
        return self.client.get_model_version_by_alias(NAME, alias)


@pytest.fixture(scope="module")
def pipeline(airflow_db, demo_site):
    url, site = demo_site
    site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False))
    spec = write_spec(HOME / "pipelines", url, name=NAME, **{"min_holdout_rows: 200": "min_holdout_rows: 50",
                                                              DEFAULT_MODEL: OWN_MODEL})
    write_dag_file(spec, NAME)
    pipe = Pipeline(spec)
    assert pipe.run("ingest").state == "success"
    return pipe


def test_own_pipeline_function_trains_promotes_and_names_its_code(pipeline):
    assert pipeline.run("train").state == "success"
    champion = pipeline.version("champion")
    run = pipeline.client.get_run(champion.run_id)
    assert run.data.params["pipeline"] == "tests.user_code.price_models:price_pipeline"
    assert float(run.data.metrics["holdout_r2"]) > 0.5
    for tags in (run.data.tags, champion.tags):  # the code's identity, on the run and on the version
        assert tags["code.pipeline"] == "tests.user_code.price_models:price_pipeline"
        assert tags["code.file"].endswith("tests/user_code/price_models.py")
        assert len(tags["code.sha256"]) == 64 and len(tags["code.git_commit"]) == 40
    model = pipeline.client.get_model_version(NAME, champion.version)
    assert model.tags["decision"] == "promoted"
