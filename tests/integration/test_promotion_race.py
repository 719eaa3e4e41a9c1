"""Two promoters race against an MLflow tracking server with a Postgres backend: exactly one champion,
both decisions recorded. Also: a registry that is down, and a champion whose model cannot be loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from tests.support.env import REPO
from tests.support.ports import free_port
from tests.support.specs import write_spec
from tests.support.waiting import DEADLINE

pytestmark = pytest.mark.integration

PROMOTE = r"""
import os, sys, json, types
sys.path[:0] = [{plugins!r}, {repo!r}]
os.environ["AIRFLOW__MLOPS__MLFLOW_TRACKING_URI"] = {uri!r}
from mlops_pack.operators.promote import MlflowPromoteOperator
op = MlflowPromoteOperator(task_id="promote", spec_path={spec!r}, storage_root={root!r},
                           challenger_version={version!r}, mlflow_conn_id="mlflow_race")
context = {{"dag": types.SimpleNamespace(dag_id="race__train"), "run_id": "race_v" + {version!r}}}
print("RESULT=" + json.dumps(op.execute(context)))
"""


@pytest.fixture(scope="module")
def registry(mlflow_server, tmp_path_factory, monkeypatch_module):
    """Champion v1 (300 rows) and challengers v2, v3 (two days, identical) in the server's registry."""
    from demo_site.generator import SiteState, day_records
    from mlops_pack.core.spec import load_spec
    from mlops_pack.core.storage import write_partition
    from mlops_pack.core.train import fit
    from mlops_pack.hooks.mlflow import MlflowHook

    monkeypatch_module.setenv("AIRFLOW__MLOPS__MLFLOW_TRACKING_URI", mlflow_server)
    tmp = tmp_path_factory.mktemp("race")
    spec_path = write_spec(tmp, "http://127.0.0.1:9", name="race")
    spec, root = load_spec(spec_path), f"file://{tmp / 'data'}"
    days = [pd.DataFrame(day_records(SiteState(day=d, records_per_day=1500))) for d in (1, 2)]
    hook = MlflowHook("mlflow_race")
    versions = []
    for i, frame in enumerate([days[0].head(300), pd.concat(days), pd.concat(days)], start=1):
        trained = fit(frame, spec.model)
        folder = ObjectStoragePath(f"{root}/race/training/v{i}")
        result = hook.log_training_run(spec, trained, train_manifest=write_partition(folder / "train", trained.train),
                                       holdout_manifest=write_partition(folder / "holdout", trained.holdout),
                                       tags={"airflow.run_id": f"setup_{i}"})
        versions.append(result["version"])
    hook.client.set_registered_model_alias("race", "champion", versions[0])  # a champion from before the test
    hook.tag_version("race", versions[0], {"decision": "promoted"})
    return {"hook": hook, "spec": str(spec_path), "root": root, "uri": mlflow_server, "versions": versions}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def promoter(registry, version: str, uri: str | None = None) -> subprocess.Popen:
    code = PROMOTE.format(plugins=str(REPO / "plugins"), repo=str(REPO), uri=uri or registry["uri"],
                          spec=registry["spec"], root=registry["root"], version=version)
    env = {**os.environ, "AIRFLOW__CORE__UNIT_TEST_MODE": "True"}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_two_racing_promoters_leave_exactly_one_champion_and_two_records(registry):
    hook, (v1, v2, v3) = registry["hook"], registry["versions"]
    racers = [promoter(registry, v2), promoter(registry, v3)]
    outputs = [p.communicate(timeout=DEADLINE) for p in racers]
    assert [p.returncode for p in racers] == [0, 0], [err[-3000:] for _, err in outputs]
    records = [json.loads(out.split("RESULT=")[1]) for out, _ in outputs]
    winners = [r for r in records if r["decision"] == "promoted"]
    assert len(winners) == 1, [r["reason"] for r in records]
    [winner] = winners
    [loser] = [r for r in records if r is not winner]
    assert winner["champion_before"] == v1
    # the loser was judged again, against the new champion, and lost to its identical twin
    assert loser["decision"] == "rejected" and loser["champion_before"] == winner["version"]
    assert hook.alias_version("race", "champion") == winner["version"]
    assert hook.alias_version("race", "previous") == v1
    for record in records:
        tags = hook.version_tags("race", record["version"])
        assert tags["decision"] == record["decision"] and tags["reason"] == record["reason"][:4000]
    log = ObjectStoragePath(f"{registry['root']}/race/promotions")
    assert sorted(json.loads(p.read_text())["version"] for p in log.iterdir()) == sorted([v2, v3])
    assert all(json.loads(p.read_text())["attempt"] in p.name for p in log.iterdir())
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):  # the lock is released
        hook.client.get_registered_model("race.promotion-lock")


def test_registry_down_fails_clearly(registry):
    """Nothing reachable to tag; the record still lands in storage and the RegistryError is not masked.
    (That it gives up rather than hangs is the communicate() deadline's to show, not a timed assertion.)"""
    dead = f"http://127.0.0.1:{free_port()}"
    proc = promoter(registry, registry["versions"][2], uri=dead)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode != 0
    assert dead in err and "RegistryError" in err
    log = ObjectStoragePath(f"{registry['root']}/race/promotions")
    [failed] = [p for p in log.iterdir() if p.name.endswith(".json") and "RegistryError" in p.read_text()]
    record = json.loads(failed.read_text())
    assert record["decision"] == "error" and record["version"] == registry["versions"][2]
    assert (log / "untagged" / failed.name).exists()  # its tags wait for the registry

    from mlops_pack.operators.promote import MlflowPromoteOperator

    op = MlflowPromoteOperator(task_id="promote", spec_path=registry["spec"], storage_root=registry["root"],
                               challenger_version=registry["versions"][2], mlflow_conn_id="mlflow_race")
    import types

    # what the next promote, rollback or champion sync does first, under the lock
    op.promotion({"dag": types.SimpleNamespace(dag_id="race__train"), "run_id": "retag"}).retag_pending()
    tags = registry["hook"].version_tags("race", registry["versions"][2])
    assert tags["decision"] == "error" and tags["reason"] == record["reason"][:4000]
    assert not list((log / "untagged").iterdir())


def test_a_model_that_cannot_be_loaded_fails_and_moves_no_alias(registry):
    hook, versions = registry["hook"], registry["versions"]
    champion, previous = hook.alias_version("race", "champion"), hook.alias_version("race", "previous")
    real = hook.client.get_model_version("race", versions[2])
    missing = hook.client.get_run(real.run_id).info.artifact_uri + "/no-such-model"
    broken = hook.client.create_model_version("race", source=missing, run_id=real.run_id)
    real_tags = hook.version_tags("race", versions[2])  # a version the pack trained, whose model file is gone
    hook.tag_version("race", broken.version, {k: real_tags[k] for k in ("holdout_uri", "train_uri")})
    proc = promoter(registry, str(broken.version))
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode != 0
    assert f"cannot load model race version {broken.version}" in err
    assert (hook.alias_version("race", "champion"), hook.alias_version("race", "previous")) == (champion, previous)
    tags = hook.version_tags("race", str(broken.version))  # the failed attempt is recorded, then re-raised
    assert tags["decision"] == "error" and f"cannot load model race version {broken.version}" in tags["reason"]
    records = [json.loads(p.read_text()) for p in ObjectStoragePath(f"{registry['root']}/race/promotions").iterdir()
               if p.name.endswith(".json")]  # promotions/untagged/ holds tags waiting for the registry
    assert [r["decision"] for r in records if r["version"] == str(broken.version)] == ["error"]
