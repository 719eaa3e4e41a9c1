"""The MLflow server dies in the middle of a promotion attempt: the attempt still leaves its record (the
JSON object in storage comes before the registry tags), the record names the failure, the tags that
could not be written wait in ``promotions/untagged/``, and the next attempt, once the server is back,
applies them under the lock. docs/promotion.md promises one record per attempt."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from airflow.sdk import ObjectStoragePath

from tests.support.env import REPO
from tests.support.mlflow_server import server_on_new_database, train_versions
from tests.support.specs import write_spec
from tests.support.waiting import DEADLINE, wait_until

pytestmark = pytest.mark.integration

PROMOTE = r"""
import os, sys, json, types
sys.path[:0] = [{plugins!r}, {repo!r}]
from mlops_pack.operators.promote import MlflowPromoteOperator
op = MlflowPromoteOperator(task_id="promote", spec_path={spec!r}, storage_root={root!r},
                           challenger_version={version!r}, mlflow_conn_id="mlflow_outage")
context = {{"dag": types.SimpleNamespace(dag_id="outage__train"), "run_id": "outage_v" + {version!r}}}
print("RESULT=" + json.dumps(op.execute(context)))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with server_on_new_database("mlops_outage", tmp_path_factory.mktemp("outage-server")) as srv:
        yield srv


def promoter(server, spec: str, root: str, version: str, **env: str) -> subprocess.Popen:
    code = PROMOTE.format(plugins=str(REPO / "plugins"), repo=str(REPO), spec=spec, root=root, version=version)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
                                 "AIRFLOW__MLOPS__MLFLOW_TRACKING_URI": server.url, **env})


def records(log: ObjectStoragePath) -> list[dict]:
    return [json.loads(p.read_text()) for p in log.iterdir() if p.name.endswith(".json")]


def test_server_lost_while_judging_leaves_the_record_and_the_next_attempt_tags_it(server, tmp_path, monkeypatch):
    from mlops_pack.hooks.mlflow import MlflowHook

    monkeypatch.setenv("AIRFLOW__MLOPS__MLFLOW_TRACKING_URI", server.url)
    spec, root = str(write_spec(tmp_path, "http://127.0.0.1:9", name="outage")), f"file://{tmp_path / 'data'}"
    hook = MlflowHook("mlflow_outage")
    v1, v2, v3 = train_versions(hook, spec, root, [300, 0, 0])
    hook.client.set_registered_model_alias("outage", "champion", v1)  # a champion from before the test
    hook.tag_version("outage", v1, {"decision": "promoted"})

    # v3's attempt stops just before it judges; the server is killed while it waits there
    trace = tmp_path / "trace.jsonl"
    first = promoter(server, spec, root, v3, MLOPS_FAULT_POINT="judge.before:sleep:15", MLOPS_LOCK_TRACE=str(trace))
    wait_until(lambda: trace.exists() and "judge.before" in trace.read_text(), "the promoter reached judge.before",
               poll=0.1, check=lambda: first.poll() is None or pytest.fail(first.communicate()[1][-3000:]))
    server.kill()
    _, err = first.communicate(timeout=DEADLINE)
    assert first.returncode != 0 and "RegistryError" in err and server.url in err

    log = ObjectStoragePath(f"{root}/outage/promotions")
    [failed] = records(log)  # the attempt is recorded although nothing in the registry could be read or written
    assert failed["version"] == v3 and failed["decision"] == "error" and not failed["promote"]
    assert failed["reason"].startswith("RegistryError") and server.url in failed["reason"]
    name = next(p.name for p in log.iterdir() if p.name.endswith(".json"))
    assert failed["attempt"] in name
    pending = json.loads((log / "untagged" / name).read_text())  # the tags it could not write, and why
    assert pending["record"] == name and pending["version"] == v3 and server.url in pending["error"]
    assert pending["tags"]["decision"] == "error" and pending["tags"]["decision_attempt"] == failed["attempt"]

    server.start()  # the registry is back: the next attempt (another version) applies the waiting tags first
    second = promoter(server, spec, root, v2)
    out, err = second.communicate(timeout=DEADLINE)
    assert second.returncode == 0, err[-3000:]
    judged = json.loads(out.split("RESULT=")[1])
    assert judged["version"] == v2 and judged["decision"] == "promoted"
    tags = hook.version_tags("outage", v3)
    assert (tags["decision"], tags["decision_attempt"], tags["reason"]) == ("error", failed["attempt"],
                                                                          failed["reason"][:4000])
    assert not list((log / "untagged").iterdir())
    assert sorted(r["attempt"] for r in records(log)) == sorted([failed["attempt"], judged["attempt"]])
    assert hook.version_tags("outage", v2)["decision"] == "promoted"
