"""The promotion service's record against a real registry (MLflow on SQLite) and a registry that does not
answer (a loopback port nobody listens on): the record object always lands, tags that cannot be written
wait with their error, and the next holder applies them (letting go of a version deleted meanwhile)."""

from __future__ import annotations

import json
import logging

import pytest
from mlops_pack.core.promotion.decision import failure

from tests.support.ports import free_port

MODEL = "service"
LOG = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def registry(airflow_db):
    from mlops_pack.hooks.mlflow import MlflowHook

    hook = MlflowHook()
    hook.client.create_registered_model(MODEL)
    run = hook.client.create_run(hook.experiment_id(MODEL)).info.run_id
    versions = [str(hook.client.create_model_version(MODEL, f"runs:/{run}/model", run_id=run).version)
                for _ in range(2)]
    return hook, versions


def service(hook, root):
    from airflow.sdk import ObjectStoragePath
    from mlops_pack.promotion_service import PromotionService

    return PromotionService(hook, ObjectStoragePath(f"file://{root}/promotions"), MODEL, dag_id=f"{MODEL}__train",
                            run_id="manual__1", log=LOG)


def test_tags_wait_for_a_registry_that_is_down_and_the_next_holder_applies_them(registry, tmp_path, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlops_pack.hooks.mlflow import MlflowHook

    hook, (v1, v2) = registry
    dead = f"http://127.0.0.1:{free_port()}"
    with monkeypatch.context() as env:
        env.setenv("AIRFLOW__MLOPS__MLFLOW_TRACKING_URI", dead)
        down = service(MlflowHook("no_such_connection"), tmp_path)
        for version in (v1, v2):
            error = failure(RuntimeError("the gate could not read the champion"), None, abandoned=False)
            with pytest.raises(MlflowException):  # the tagging error is raised once the record is safe
                down.record(down.decision(version, f"attempt{version}", error))
    promotions = tmp_path / "promotions"
    records = sorted(p.name for p in promotions.glob("*.json"))
    assert len(records) == 2 and sorted(json.loads((promotions / r).read_text())["version"] for r in records) == [v1, v2]
    for name in records:
        entry = json.loads((promotions / "untagged" / name).read_text())
        assert entry["record"] == name and dead in entry["error"] and entry["tags"]["decision"] == "error"

    hook.client.delete_model_version(MODEL, v2)  # deleted while its tags waited: they must not block anyone
    up = service(hook, tmp_path)
    up.retag_pending()
    tags = hook.version_tags(MODEL, v1)
    assert (tags["decision"], tags["decision_attempt"]) == ("error", f"attempt{v1}")
    assert tags["reason"] == "RuntimeError: the gate could not read the champion"
    assert not list((promotions / "untagged").iterdir())
    assert up.recorded(f"attempt{v1}") and up.recorded(f"attempt{v2}") and not up.recorded("attempt")
