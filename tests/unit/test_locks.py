"""The image's lock (requirements-runtime.lock) is requirements.lock without the dev tools: same versions."""

from __future__ import annotations

import re

from tests.support.env import REPO

PIN = re.compile(r"^([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)==([^\s;]+)", re.MULTILINE)
DEV_TOOLS = {"pytest", "pytest-xdist", "pytest-timeout", "ruff", "playwright", "moto", "aiosmtpd", "hypothesis",
             "scrapy"}


def pins(name: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for m in PIN.finditer((REPO / name).read_text())}


def test_the_runtime_lock_pins_the_same_versions_as_the_full_lock():
    full, runtime = pins("requirements.lock"), pins("requirements-runtime.lock")
    assert runtime, "requirements-runtime.lock has no pins"
    differing = {name: (version, full.get(name)) for name, version in runtime.items() if full.get(name) != version}
    assert differing == {}, f"run `make lock`: runtime and full locks disagree (runtime, full): {differing}"
    for name in ("apache-airflow", "apache-airflow-providers-celery", "apache-airflow-providers-amazon",
                 "psycopg2-binary", "mlflow", "s3fs"):
        assert name in runtime, f"{name} missing from requirements-runtime.lock"


def test_the_image_carries_no_test_or_lint_tools():
    assert DEV_TOOLS & set(pins("requirements-runtime.lock")) == set()
    assert DEV_TOOLS <= set(pins("requirements.lock"))  # the tests still get them


def test_the_dockerfile_builds_from_the_runtime_lock_with_a_pinned_build_backend():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=apache/airflow:3.3.2-python3.11" in dockerfile
    assert "-r /opt/mlops/requirements-runtime.lock" in dockerfile and " requirements.lock " not in dockerfile
    assert "hatchling" in pins("requirements-build.lock")
