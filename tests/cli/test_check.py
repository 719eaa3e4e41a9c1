"""`mlops-pack check`: a spec explained (DAGs, schedules, assets, every default) or refused, naming the field."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlops_pack.core.spec import SpecError, load_spec

from tests.cli.dataset_site import spec_yaml
from tests.support.env import REPO
from tests.support.waiting import DEADLINE

FEATURES = ["alcohol", "malic_acid", "ash"]


def write(tmp_path, name="wine", **kwargs):
    args = {"metrics": "    roc_auc: {min_delta: 0.0}", "retrain": "[drift]", **kwargs}
    path = tmp_path / f"{name}.yaml"
    path.write_text(spec_yaml(name, FEATURES, "127.0.0.1:9", **args))
    return path


def mlops_pack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlops_pack.cli.main", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=DEADLINE)


def test_check_explains_dags_schedules_assets_and_defaults(tmp_path):
    result = mlops_pack("check", str(write(tmp_path)))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "wine__train                  on (wine.validated | wine.drift); tasks: train, promote" in out
    assert "wine__ingest                 manual only" in out
    assert "x-mlops://wine/drift" in out and "emitted by wine__monitor" in out
    assert "gate metrics: roc_auc (higher is better); primary roc_auc" in out
    assert "  * model.holdout_fraction = 0.2" in out  # a default, marked
    assert "    model.estimator = 'sklearn.ensemble.RandomForestClassifier'" in out  # set in the YAML


def test_check_of_a_scheduled_retrain_shows_the_cron(tmp_path):
    path = write(tmp_path, retrain="[drift, schedule]\n  cron: '0 3 * * 1'")
    out = mlops_pack("check", str(path)).stdout
    assert "wine__train                  cron '0 3 * * 1' (UTC) or on (wine.validated | wine.drift)" in out


def test_check_refuses_a_bad_spec_naming_the_field(tmp_path):
    result = mlops_pack("check", str(write(tmp_path, metrics="    rmse: {min_delta: 0.0}")))
    assert result.returncode == 1
    assert "promotion.metrics.rmse: 'rmse' measures a regression model but model.task is 'classification'" in (
        result.stderr)
    assert "['accuracy', 'balanced_accuracy', 'f1', 'log_loss', 'roc_auc']" in result.stderr


@pytest.mark.parametrize(("kwargs", "field", "message"), [
    ({"retrain": "[schedule]"}, "retrain", "retrain.cron: triggers include 'schedule' but no cron is given"),
    ({"retrain": "[rain]"}, "retrain.triggers.0", "Input should be 'new_data', 'drift', 'schedule' or 'performance'"),
    ({"metrics": "    auc: {min: 0.5}"}, "promotion.metrics", "unknown metric 'auc', use one of"),
])
def test_retrain_policy_and_metric_names_are_checked_at_load(tmp_path, kwargs, field, message):
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, **kwargs))
    assert field in str(err.value) and message in str(err.value)


def test_stratify_needs_a_classifier(tmp_path):
    path = write(tmp_path, stratify=True)
    path.write_text(path.read_text().replace("task: classification", "task: regression").replace(
        "roc_auc: {min_delta: 0.0}", "rmse: {min_delta: 0.0}"))
    with pytest.raises(SpecError, match="model.stratify: a stratified holdout needs model.task 'classification'"):
        load_spec(path)


def test_check_of_a_spec_with_labels_shows_the_outcome_dags_and_the_decay_rule(tmp_path):
    labels = "[drift, performance]\n  require_decay_for_drift: true\nlabels:\n  kind: later_partitions\n" \
             "  metrics: [roc_auc, brier_score]\n  decay: {floors: {roc_auc: 0.8}}"
    out = mlops_pack("check", str(write(tmp_path, retrain=labels))).stdout
    assert "wine__train                  on (wine.validated | wine.drift | wine.performance)" in out
    assert "wine__outcomes               on (wine.labels | wine.predictions); tasks: realized_performance" in out
    assert "x-mlops://wine/performance" in out and "emitted by wine__outcomes" in out
    assert "retrain on: drift, performance; drift only with decay evidence" in out
    assert ("labels: later validated partitions (their target); realized roc_auc, brier_score with at least 100 "
            "labelled rows; decay: roc_auc worse than 0.8 or CI worse than the holdout by more than 10%") in out


OWN_CODE = {"  estimator: sklearn.ensemble.HistGradientBoostingRegressor\n  params: {max_iter: 150, learning_rate: 0.1, "
            "random_state: 0}": "  pipeline: {ref}\n  params: {params}"}


def own_code_spec(tmp_path, ref, params="{}"):
    from tests.support.specs import write_spec

    [(old, new)] = OWN_CODE.items()
    return write_spec(tmp_path, "http://127.0.0.1:9", **{old: new.format(ref=ref, params=params)})


def test_check_calls_the_users_pipeline_function_and_names_its_code(tmp_path):
    result = mlops_pack("check", str(own_code_spec(tmp_path, "tests.user_code.price_models:price_pipeline",
                                                   "{max_iter: 20}")))
    assert result.returncode == 0, result.stderr
    assert "features with tests.user_code.price_models:price_pipeline" in result.stdout
    assert "model code: tests.user_code.price_models:price_pipeline returns a Pipeline" in result.stdout
    assert "tests/user_code/price_models.py sha256 " in result.stdout and ", git " in result.stdout


@pytest.mark.parametrize(("ref", "params", "reason"), [
    ("tests.user_code.nowhere:build", "{}", "module 'tests.user_code.nowhere' cannot be imported: "
     "ModuleNotFoundError"),
    ("tests.user_code.price_models:build", "{}", "module 'tests.user_code.price_models' has no 'build'"),
    ("tests.user_code.price_models:not_a_model", "{}", "returned a builtins.list; it must return a scikit-learn "
     "estimator or Pipeline"),
    ("tests.user_code.price_models:price_pipeline", "{depth: 3}", "failed when called with numeric=, categorical= "
     "and model.params ['depth']: TypeError"),
    ("tests/user_code/price_models.py", "{}", "must be 'package.module:function'"),
    ("tests.user_code.price_models:price_pipeline\n  search: {space: {depth: [2, 3]}}", "{}",
     "model.search.space: ['depth'] are not parameters of the model; it has ["),
])
def test_check_refuses_a_pipeline_function_naming_it_and_the_reason(tmp_path, ref, params, reason):
    from mlops_pack.cli.explain import explain  # what `check` prints or refuses, without a process per case

    with pytest.raises(SpecError) as refused:
        explain(own_code_spec(tmp_path, ref, params))
    assert "model.pipeline" in str(refused.value) and reason in str(refused.value)


def test_check_reads_each_spec_file_once(tmp_path):
    """Issue 27: `check` of a folder of many specs read each one twice (explaining it, then building its DAGs)."""
    code = ("import sys, collections\n"
            "from mlops_pack.cli.explain import explain\n"
            "reads = collections.Counter()\n"
            "sys.addaudithook(lambda e, a: reads.update([str(a[0])]) if e == 'open' and str(a[0]).endswith('.yaml') "
            "else None)\n"
            f"paths = {[str(write(tmp_path, name=f'w{i}')) for i in range(3)]!r}\n"
            "texts = [explain(p) for p in paths]\n"
            "assert all('valid pipeline spec' in t for t in texts)\n"
            "print(sorted(reads[p] for p in paths))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["[1,", "1,", "1]"]
