"""Live services for the source tests: a moto server (S3, SQS), a PostgreSQL database, Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.ports import free_port, require_service

AWS_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    """``moto_server`` (from the venv) on a free loopback port; yields its URL."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/moto-api/", timeout=2)
            break
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited: see {log.name}") from None
            time.sleep(0.3)
    else:
        proc.kill()
        raise TimeoutError(f"moto_server did not answer in 60 s: see {log.name}")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def aws_connection(moto_url: str) -> str:
    """An Airflow AWS connection (JSON, for AIRFLOW_CONN_*) pointed at the moto server."""
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                       "extra": {"endpoint_url": moto_url, "region_name": "us-east-1"}})


def boto_client(service: str, moto_url: str):
    import boto3

    return boto3.client(service, endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture(scope="session")
def source_db():
    """A fresh database on the local PostgreSQL (trust auth), dropped afterwards; yields (dsn, conn URI)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg2

    name = f"h13_src_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    yield {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": name}, \
        f"postgres://postgres@127.0.0.1:5432/{name}"
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def require_s3fs() -> None:
    """ObjectStoragePath reaches s3:// through s3fs (apache-airflow-providers-amazon[s3fs])."""
    import importlib.util

    from tests.support.ports import SERVICES_REQUIRED

    if importlib.util.find_spec("s3fs") is None:
        message = "s3fs is not installed: ObjectStoragePath cannot open s3:// (apache-airflow-providers-amazon[s3fs])"
        if SERVICES_REQUIRED:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def redis_up():
    require_service("Redis", "127.0.0.1", 6379)


def set_env(values: dict[str, str]) -> dict[str, str | None]:
    """Set environment variables; returns the old values for restore_env."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    return old


def restore_env(old: dict[str, str | None]) -> None:
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
