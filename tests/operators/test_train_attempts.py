"""The MLflow hook's crash hygiene against a real registry (MLflow on SQLite): a retry marks what an
earlier try left, an orphaned try that finds a later one marks its own leftovers and stops, and an
abandoned version never becomes challenger. The killed-process version of this is tests/e2e/test_train_crash.py."""

from __future__ import annotations

import pytest
from mlops_pack.hooks.mlflow_attempts import abandon_stale_attempts
from mlops_pack.hooks.mlflow_lock import promotion_lock

MODEL = "attempts"


def attempt(try_number: int):
    from mlops_pack.core.attempts import Attempt

    return Attempt(f"{MODEL}__train", "manual__2026-12-03T09:00:00+00:00", "train", try_number)


@pytest.fixture(scope="module")
def registry(airflow_db):
    from mlops_pack.hooks.mlflow import MlflowHook

    hook = MlflowHook()
    hook.client.create_registered_model(MODEL)
    experiment = hook.experiment_id(MODEL)

    def made_by(try_number: int, *, end: bool) -> tuple[str, str]:
        """A run and a version tagged at creation with ``try_number``, as log_training_run makes them."""
        tags = attempt(try_number).tags()
        run = hook.client.create_run(experiment, tags=tags).info.run_id
        version = hook.client.create_model_version(MODEL, f"runs:/{run}/model", run_id=run, tags=tags).version
        if end:
            hook.client.set_terminated(run, "FINISHED")
        return run, str(version)

    return hook, made_by


def test_a_retry_marks_the_killed_trys_version_and_run_and_deletes_nothing(registry):
    hook, made_by = registry
    killed_run, killed_version = made_by(1, end=False)  # killed inside its run, after registering
    marked = abandon_stale_attempts(hook, MODEL, attempt(2))
    assert sorted((s.item.kind, s.item.key) for s in marked) == [("run", killed_run), ("version", killed_version)]
    tags = hook.version_tags(MODEL, killed_version)
    assert tags["attempt_status"] == "abandoned"
    assert tags["superseded_by"] == f"{MODEL}__train/manual__2026-12-03T09:00:00+00:00/train try 2"
    run = hook.client.get_run(killed_run)
    assert run.info.status == "KILLED" and run.data.tags["attempt_status"] == "abandoned"
    assert abandon_stale_attempts(hook, MODEL, attempt(2)) == []  # marked once


def test_an_orphan_finishing_after_the_retry_marks_itself_and_cannot_become_challenger(registry):
    from mlops_pack.hooks.mlflow import VersionAbandoned

    hook, made_by = registry
    _, retry_version = made_by(2, end=True)
    orphan_run, orphan_version = made_by(1, end=True)  # the orphaned first try registers after the retry did
    with pytest.raises(VersionAbandoned, match=r"try 1 is an orphan: .*try 2 of the same task"):
        abandon_stale_attempts(hook, MODEL, attempt(1))
    assert hook.version_tags(MODEL, orphan_version)["attempt_status"] == "abandoned"
    assert hook.client.get_run(orphan_run).info.status == "FINISHED"  # ended by itself: tagged, not killed
    assert hook.client.get_run(orphan_run).data.tags["attempt_status"] == "abandoned"
    assert "attempt_status" not in hook.version_tags(MODEL, retry_version)

    with promotion_lock(hook, MODEL, "test", kind="challenger") as lease:
        with pytest.raises(VersionAbandoned, match=rf"{MODEL} version {orphan_version} is tagged "
                                                   "attempt_status=abandoned"):
            lease.set_challenger(orphan_version)
        lease.set_challenger(retry_version)
    assert hook.alias_version(MODEL, "challenger") == retry_version
