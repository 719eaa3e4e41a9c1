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


SEARCH = ("  pipeline: tests.user_code.price_models:picky_pipeline\n  params: {max_iter: 60}\n"
          "  search:\n    method: grid\n    space: {max_iter: [7, 20, 40]}\n    cv: 2\n    parallelism: 2\n")


def trial_runs(pipeline, parent_run_id: str) -> list:
    runs = pipeline.client.search_runs([pipeline.client.get_experiment_by_name(NAME).experiment_id],
                                       filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    return sorted(runs, key=lambda r: int(r.data.tags["search.slot"]))


def test_a_search_runs_trials_as_mapped_tasks_and_refits_the_best(pipeline):
    from mlops_pack.core.storage import read_partition

    pipeline.edit(OWN_MODEL, SEARCH)
    run = pipeline.run("train")
    assert run.state == "success"
    tis = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert {k for k in tis if k[0] == "trial"} == {("trial", 0), ("trial", 1), ("trial", 2)}
    challenger = pipeline.version("challenger")
    parent = challenger.tags["search_run_id"]
    assert pipeline.client.get_run(parent).info.status == "FINISHED"
    trials = trial_runs(pipeline, parent)
    assert [t.data.tags["search.status"] for t in trials] == ["failed", "ok", "ok"]
    assert "max_iter=7 is refused by this test model" in trials[0].data.tags["search.error"]
    assert trials[0].info.status == "FAILED" and "cv_rmse" in trials[1].data.metrics
    best = min(trials[1:], key=lambda t: t.data.metrics["cv_rmse"])
    assert challenger.tags["search_best_params"] == f'{{"max_iter": {best.data.params["max_iter"]}}}'
    model_run = pipeline.client.get_run(challenger.run_id)
    assert model_run.data.params["search.best.max_iter"] == best.data.params["max_iter"]
    # Holdout rows never reach a trial: each trial read the training set, which shares no key with the holdout.
    from airflow.sdk import ObjectStoragePath

    holdout = read_partition(ObjectStoragePath(challenger.tags["holdout_uri"]).parent)
    for trial in trials:
        data = read_partition(ObjectStoragePath(trial.data.tags["search.train_folder"]))
        assert not set(data["listing_id"]) & set(holdout["listing_id"]) and len(data) > len(holdout)
    artifacts = {a.path for a in pipeline.client.list_artifacts(parent, "search")}
    assert artifacts >= {"search/trials.json", "search/trials.png"}
    # What `mlops-pack reproduce` re-trains from: the search's best params, the user code's identity, the window.
    import mlflow.artifacts

    inputs = mlflow.artifacts.load_dict(f"runs:/{challenger.run_id}/reproduce/inputs.json")
    assert inputs["search_best_params"] == {"max_iter": int(best.data.params["max_iter"])}
    assert inputs["code"]["code.sha256"] == challenger.tags["code.sha256"]
    assert inputs["model"]["pipeline"] == "tests.user_code.price_models:picky_pipeline"
    assert [p["key"] for p in inputs["partitions"]] == challenger.tags["data_partitions"].split(",")


def test_a_rerun_reuses_the_finished_trials_of_the_same_study(pipeline):
    run = pipeline.run("train")
    assert run.state == "success"
    trials = trial_runs(pipeline, pipeline.version("challenger").tags["search_run_id"])
    assert [t.data.tags["search.reused"] for t in trials] == ["false", "true", "true"]  # the failed one runs again


def test_a_search_whose_trials_all_fail_fails_with_their_reasons(pipeline):
    before = pipeline.version("challenger").version
    pipeline.edit("space: {max_iter: [7, 20, 40]}", "space: {max_iter: [7]}")
    run = pipeline.run("train")
    assert run.state == "failed"
    assert pipeline.version("challenger").version == before  # nothing registered
    [parent] = pipeline.client.search_runs(
        [pipeline.client.get_experiment_by_name(NAME).experiment_id],
        filter_string="tags.`search.method` = 'grid'", order_by=["attributes.start_time DESC"], max_results=1)
    assert parent.info.status == "FAILED"
    assert "all 1 search trials failed" in parent.data.tags["search.error"]
    assert "max_iter=7 is refused by this test model" in parent.data.tags["search.error"]
