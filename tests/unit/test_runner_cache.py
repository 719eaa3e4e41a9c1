"""The suite's cache of freshly made SQLite stores (``MLOPS_AIRFLOW_DB_CACHE``, mlops_pack.cli.runner): a new
home's MLflow store is a copy of the cached one, with no process started."""

from __future__ import annotations

from importlib import metadata

from mlops_pack.cli import runner


def test_a_new_homes_mlflow_store_is_a_copy_of_the_cached_one(tmp_path, monkeypatch):
    cache, home = tmp_path / "cache", tmp_path / "home"
    cache.mkdir()
    home.mkdir()
    (cache / f"mlflow-{metadata.version('mlflow')}.db").write_bytes(b"the store made once")
    monkeypatch.setenv("MLOPS_AIRFLOW_DB_CACHE", str(cache))
    proc = runner.init_mlflow(home, wait=False)
    assert proc is None  # nothing to wait for
    runner.finish_init(proc)
    assert (home / "mlflow.db").read_bytes() == b"the store made once"


def test_without_the_cache_nothing_is_copied(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_AIRFLOW_DB_CACHE", raising=False)
    assert runner._cached_db("mlflow") is None and runner._cached_db("airflow") is None
