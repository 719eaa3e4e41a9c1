"""Live services for integration tests: PostgreSQL on 127.0.0.1:5432 and an MLflow tracking server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.support.ports import free_port, require_service
from tests.support.waiting import DEADLINE


@pytest.fixture(scope="session")
def postgres_db():
    """A fresh database on the local PostgreSQL (trust auth), dropped afterwards; yields its URL."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg2

    name = f"mlops_it_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture(scope="session")
def mlflow_server(postgres_db, tmp_path_factory):
    """``mlflow server`` with the Postgres backend store and proxied file artifacts; yields its URL."""
    port = free_port()
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    log = (artifacts.parent / "mlflow-server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres_db,
         "--artifacts-destination", f"file://{artifacts}", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # stop its workers with it
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no job runner: less CPU
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: see {log.name}")
        time.sleep(1)
    else:
        proc.kill()
        raise TimeoutError(f"mlflow server did not start in 180 s: see {log.name}")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
