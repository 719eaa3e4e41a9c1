from __future__ import annotations

import pytest
from mlops_pack.core.spec import SpecError, estimator_path_problem, load_spec

from tests.support.env import REPO
from tests.support.specs import write_spec


def test_demo_spec_is_valid():
    spec = load_spec(REPO / "include" / "pipelines" / "listings.yaml")
    assert spec.name == "listings"
    assert spec.model.target == "price"
    assert spec.drift_columns == ["area_m2", "rooms", "age_years", "distance_km", "city", "condition"]


@pytest.mark.parametrize(("old", "new", "field", "message"), [
    ("owner: mlops", "owner: mlops\ncolour: blue", "colour", "unknown key"),
    ("  target: price", "  target: asking_price", "model.target", "'asking_price' is not a scraped column"),
    ("sklearn.ensemble.HistGradientBoostingRegressor", "sklearn.ensemble.GradientBoostedTreesRegressor",
     "model.estimator", "has no 'GradientBoostedTreesRegressor'"),
    ("sklearn.ensemble.HistGradientBoostingRegressor", "sklearn.nowhere.Forest", "model.estimator",
     "module 'sklearn.nowhere' is not installed"),
    ("sklearn.ensemble.HistGradientBoostingRegressor", "sklearnx.ensemble.Forest", "model.estimator",
     "module 'sklearnx.ensemble' is not allowed for model code"),
    ("  holdout_fraction: 0.2", "  holdout_fraction: 1.5", "model.holdout_fraction", "less than 1"),
])
def test_spec_errors_name_file_and_field(tmp_path, old, new, field, message):
    path = write_spec(tmp_path, "http://127.0.0.1:9", **{old: new})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    assert str(path) in text
    assert f"  {field}" in text
    assert message in text


def test_spec_name_must_match_file(tmp_path):
    path = write_spec(tmp_path, "http://127.0.0.1:9")
    path.rename(tmp_path / "other.yaml")
    with pytest.raises(SpecError, match="must equal the file name 'other'"):
        load_spec(tmp_path / "other.yaml")


def test_estimator_check_does_not_import_sklearn():
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, 'plugins');"
            "from mlops_pack.core.spec import estimator_path_problem as p;"
            "assert p('sklearn.linear_model.Ridge') is None, p('sklearn.linear_model.Ridge');"
            "assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    assert estimator_path_problem("Ridge") is not None


LABELS_FILES = ("schedule:\n", "labels:\n  kind: files\n  url: file:///data/labels\n  pattern: '*.csv'\n"
                "  decay: {floors: {r2: 0.6}, max_relative_drop: 0.2}\nschedule:\n")


def test_labels_from_files_default_to_the_promotion_metrics_and_the_source_columns(tmp_path):
    spec = load_spec(write_spec(tmp_path, "http://127.0.0.1:9", **{"schedule:\n": LABELS_FILES[1]}))
    assert spec.labels.kind == "files" and spec.labels.url == "file:///data/labels/"
    assert spec.outcome_metrics == ["rmse", "r2"] and spec.labels.min_labelled == 100
    assert spec.labels.decay.floors == {"r2": 0.6} and spec.labels.cron == "0 * * * *"
    assert load_spec(write_spec(tmp_path, "http://127.0.0.1:9")).labels is None


@pytest.mark.parametrize(("labels", "retrain", "field", "message"), [
    ("labels: {kind: mail}\n", "", "labels", "labels.kind must be one of ['later_partitions', 'files', 'sql', 'events']"),
    ("labels: {kind: files, url: 'http://x/'}\n", "", "labels.url", "must be a file:// or s3:// folder URL"),
    ("labels: {kind: files, url: 'file:///l', pattern: '../x'}\n", "", "labels.pattern",
     "relative to labels.url"),
    ("labels: {kind: later_partitions, metrics: [accuracy]}\n", "", "", "'accuracy' is not a regression metric"),
    ("labels: {kind: later_partitions, decay: {floors: {mae: 3}}}\n", "", "", "'mae' is not a realized metric"),
    ("", "retrain: {triggers: [performance]}\n", "", "'performance' needs a labels section"),
    ("", "retrain: {triggers: [drift], require_decay_for_drift: true}\n", "", "needs a labels section"),
    ("labels: {kind: later_partitions}\n", "retrain: {triggers: [performance], require_decay_for_drift: true}\n",
     "", "does not include 'drift'"),
])
def test_labels_errors_name_the_field(tmp_path, labels, retrain, field, message):
    path = write_spec(tmp_path, "http://127.0.0.1:9", **{"schedule:\n": labels + retrain + "schedule:\n"})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert message in str(err.value)
    if field:
        assert f"  {field}:" in str(err.value)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("  estimator: sklearn.ensemble.HistGradientBoostingRegressor\n", "",
     "model: give either estimator (the pack's preprocessing + that estimator) or pipeline (your own function), "
     "not neither"),
    ("  estimator: sklearn.ensemble.HistGradientBoostingRegressor\n",
     "  estimator: sklearn.ensemble.HistGradientBoostingRegressor\n  pipeline: sklearn.pipeline:make_pipeline\n",
     "not both"),
    ("  estimator: sklearn.ensemble.HistGradientBoostingRegressor\n", "  pipeline: my_models.price.build\n",
     "model.pipeline: pipeline 'my_models.price.build' must be 'package.module:function'"),
])
def test_model_names_one_estimator_or_one_pipeline_function(tmp_path, old, new, message):
    with pytest.raises(SpecError) as refused:
        load_spec(write_spec(tmp_path, "http://127.0.0.1:9", **{old: new}))
    assert message in str(refused.value)


def test_a_pipeline_function_is_not_imported_when_the_spec_is_read(tmp_path):
    import sys

    spec = load_spec(write_spec(tmp_path, "http://127.0.0.1:9", **{
        "  estimator: sklearn.ensemble.HistGradientBoostingRegressor\n": "  pipeline: nowhere_pkg.models:build\n"}),
        ["nowhere_pkg"])  # a configured package: allowed, and still not imported
    assert spec.model.pipeline == "nowhere_pkg.models:build" and "nowhere_pkg" not in sys.modules

@pytest.mark.parametrize(("scoring", "labels", "message"), [
    ("", "labels: {kind: later_partitions}\n", "production_evidence needs scoring.shadow: true"),
    ("  shadow: true\n", "", "production_evidence needs a labels section"),
])
def test_production_evidence_needs_shadow_scoring_and_labels(tmp_path, scoring, labels, message):
    evidence = {"\npromotion:\n": "\npromotion:\n  production_evidence: {min_rows: 50}\n"}
    ok = write_spec(tmp_path / "ok", "http://127.0.0.1:9", **evidence, **{
        "schedule:\n": "labels: {kind: later_partitions}\nschedule:\n", "chunk_rows: 200000": "chunk_rows: 150\n  shadow: true"})
    assert load_spec(ok).promotion.production_evidence.min_rows == 50
    path = write_spec(tmp_path / "refused", "http://127.0.0.1:9", **evidence, **{
        "schedule:\n": labels + "schedule:\n", "  chunk_rows: 200000\n": "  chunk_rows: 200000\n" + scoring})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert message in str(err.value)
