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


TPE = ("  pipeline: tests.user_code.price_models:picky_pipeline\n  params: {max_iter: 60}\n"
       "  search:\n    method: tpe\n    space:\n      max_iter: {low: 10, high: 60, integer: true}\n"
       "      learning_rate: {low: 0.03, high: 0.3, log: true}\n    max_trials: 4\n    seed: 3\n    cv: 2\n"
       "    parallelism: 2\n")


def test_a_tpe_search_keeps_its_study_in_a_database_and_the_best_is_refit_gated_and_shown(pipeline):
    """method: tpe through the real DAG: each mapped trial asks the study (SQLite file under the Airflow
    home, which workers on one machine share) for its params; trials are child runs of one parent; the
    best is refit, gated, linked from the version, and its params are on the health page."""
    import json

    import optuna
    from airflow.sdk import ObjectStoragePath
    from mlops_pack import settings
    from mlops_pack.core.storage import read_partition
    from mlops_pack.ui.health import gather, render

    model = next(m for m in (SEARCH.replace("[7, 20, 40]", "[7]"), SEARCH, OWN_MODEL)
                 if m in pipeline.spec_path.read_text())  # whichever model the tests before left
    pipeline.edit(model, TPE)
    run = pipeline.run("train")
    assert run.state == "success"
    assert sorted(ti.map_index for ti in run.get_task_instances() if ti.task_id == "trial") == [0, 1, 2, 3]
    challenger = pipeline.version("challenger")
    tags = challenger.tags
    assert (tags["search_method"], tags["search_trials"], tags["search_failed_trials"]) == ("tpe", "4", "0")
    parent = pipeline.client.get_run(tags["search_run_id"])
    assert parent.data.tags["search.method"] == "tpe" and parent.info.status == "FINISHED"
    trials = trial_runs(pipeline, parent.info.run_id)
    assert [t.data.tags["search.slot"] for t in trials] == ["0", "1", "2", "3"]
    assert {t.data.tags["search.status"] for t in trials} == {"ok"}
    best = min(trials, key=lambda t: t.data.metrics["cv_rmse"])
    won = json.loads(tags["search_best_params"])
    assert {k: str(v) for k, v in won.items()} == {k: best.data.params[k] for k in ("learning_rate", "max_iter")}
    assert float(tags["search_cv_score"]) == pytest.approx(best.data.metrics["cv_rmse"])
    # The study is in a real database file, every trial in it with the params its child run logged.
    url = settings.search_storage()
    assert url.startswith("sqlite:///") and (HOME / "search.db").exists() and url.endswith("/search.db")
    study = optuna.load_study(study_name=tags["search_study"], storage=url)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["slot"] for t in complete) == [0, 1, 2, 3]
    assert len({(t.params["max_iter"], round(t.params["learning_rate"], 9)) for t in complete}) == 4
    stored = len(study.trials)
    # Gated as without a search; the version links to the search's run (tags and description).
    records = gather(NAME, ObjectStoragePath(f"file://{HOME / 'data'}/{NAME}"))["promotions"]
    [record] = [r for r in records if r.get("version") == str(challenger.version)]
    assert record["decision"] in ("promoted", "rejected") and record["search"]["best_params"] == won
    description = pipeline.client.get_model_version(NAME, challenger.version).description
    assert f"#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}" in description
    assert {a.path for a in pipeline.client.list_artifacts(parent.info.run_id, "search")} >= {
        "search/trials.json", "search/trials.png"}
    html = render(gather(NAME, ObjectStoragePath(f"file://{HOME / 'data'}/{NAME}")))
    assert "<h2>Hyperparameter search</h2>" in html
    assert f"max_iter = {won['max_iter']}" in html and "<td>tpe</td><td>4</td><td>rmse</td>" in html
    # No holdout key in any trial's data.
    holdout = read_partition(ObjectStoragePath(tags["holdout_uri"]).parent)
    for trial in trials:
        data = read_partition(ObjectStoragePath(trial.data.tags["search.train_folder"]))
        assert not set(data["listing_id"]) & set(holdout["listing_id"])

    # A re-run asks the study for nothing new: every slot's finished trial is reused.
    again = pipeline.run("train")
    assert again.state == "success"
    rerun = pipeline.version("challenger").tags
    assert rerun["search_run_id"] != parent.info.run_id and rerun["search_study"] == tags["search_study"]
    assert [t.data.tags["search.reused"] for t in trial_runs(pipeline, rerun["search_run_id"])] == ["true"] * 4
    assert len(optuna.load_study(study_name=tags["search_study"], storage=url).trials) == stored
    assert json.loads(rerun["search_best_params"]) == won
